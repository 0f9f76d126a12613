/**
 * A fleet definition (`fleet.yaml`) after validation: deployments of an application over hosts
 * with roles, each with its policy, maintenance window, staging schedule, batches and target.
 * Durations are milliseconds; everything is plain data so that it can be stored as JSON.
 */
import type { Labels } from '../labels';
import type { StagingSpec, WindowSpec } from '../schedule';
import type { UpgradePolicy } from '../semver-policy';

// Defined with the schedule code that reads them; re-exported as the fleet file's own sections.
export type { StagingSpec, WindowSpec };

/** A number of hosts, or a percentage of the deployment's hosts. */
export type Amount =
  { readonly kind: 'count'; readonly value: number } | { readonly kind: 'percent'; readonly value: number };

export type BatchPause =
  { readonly kind: 'none' } | { readonly kind: 'manual' } | { readonly kind: 'timed'; readonly ms: number };

export interface BatchSpec {
  /** Hosts upgraded alone first. Default 1 (0: no canary). */
  readonly canary: number;
  /** Hosts per batch after the canary. Default 1. */
  readonly concurrency: Amount;
  /**
   * Failed hosts tolerated per rollout: the rollout halts when failures exceed it. Default
   * count 0 (the first failure halts). Hosts already in flight finish either way.
   */
  readonly errorThreshold: Amount;
  /** What happens between batches. Default none. */
  readonly pause: BatchPause;
}

/** Hosts by id or by label selector (exactly one), with the role they play in the deployment. */
export interface HostEntry {
  readonly id?: string;
  readonly select?: Labels;
  /** The role (`core`); defaults to the host's `role` label. */
  readonly role?: string;
  /** Recipe var overrides for these hosts only (over the deployment's). */
  readonly vars: Readonly<Record<string, string>>;
}

export interface DeploymentSpec {
  /** `mail-prod`: letters, digits, `.`, `_`, `-`. */
  readonly name: string;
  /** A built-in recipe name (`bluemind`) or a file path, relative to the fleet file. */
  readonly recipe: string;
  /** `latest` or a version. */
  readonly target: string;
  readonly vars: Readonly<Record<string, string>>;
  readonly hosts: readonly HostEntry[];
  /** Merged over the recipe's own policy. */
  readonly policy: UpgradePolicy;
  /** The name of one of the fleet's windows. */
  readonly window: string;
  readonly staging: StagingSpec;
  readonly batches: BatchSpec;
}

export interface FleetSpec {
  readonly windows: Readonly<Record<string, WindowSpec>>;
  readonly deployments: readonly DeploymentSpec[];
}
