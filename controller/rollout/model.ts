/**
 * What a rollout is, as stored: a spec frozen when it starts (spec_json, never edited) and a
 * status that the engine moves forward one durable transition at a time.
 *
 * Rollout states:
 *
 *   scheduled ─▶ staging ─▶ staged ─▶ upgrading ─▶ finalizing ─▶ verifying ─▶ succeeded
 *                   │                    │              │             │
 *                   └──── halted ◀───────┘            held ◀──────────┘
 *                  (operator: resume | abort)   (operator: retry | rollback ─▶ rolling-back ─▶ rolled-back)
 *
 *   abort from any unfinished state ─▶ aborted (hosts in flight finish their phase first)
 *
 * Host states inside a rollout: pending ─▶ staging ─▶ staged ─▶ upgrading ─▶ verifying ─▶ upgraded
 * ─▶ final-verifying ─▶ verified; a failed upgrade or verify goes rolling-back ─▶ rolled-back
 * (or rollback-failed, which needs an operator). `current` marks hosts already on the target.
 * A rollback the agent refused past the recipe's point of no return leaves the host `held`: it
 * waits for an operator's manual recovery (held-host.ts), and the rollout halts until then.
 */
import type { BatchSpec, StagingSpec, WindowSpec } from '../../shared/fleet/types';

/** States a rollout never leaves: nothing more happens to it. */
export const FINISHED_ROLLOUT_STATES = ['succeeded', 'aborted', 'rolled-back', 'failed'] as const;

/** States in which a rollout waits for an operator (retry, resume, rollback or abort). */
export const NEEDS_OPERATOR_STATES = ['held', 'halted'] as const;

/** States a rollout rests in until someone acts, if ever: finished or waiting for an operator. */
export const RESTING_ROLLOUT_STATES = [...FINISHED_ROLLOUT_STATES, ...NEEDS_OPERATOR_STATES] as const;

/** Every state a rollout can be in (the diagram above); the type derives from it. */
export const ROLLOUT_STATES = [
  'scheduled',
  'staging',
  'staged',
  'upgrading',
  'finalizing',
  'verifying',
  'held',
  'halted',
  'rolling-back',
  'aborting',
  ...FINISHED_ROLLOUT_STATES,
] as const;

export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** Every state a host can be in inside a rollout; the type derives from it. */
export const HOST_STATES = [
  'pending',
  'current',
  'staging',
  'staged',
  'stage-failed',
  'upgrading',
  'verifying',
  'upgraded',
  'final-verifying',
  'verified',
  'verify-failed',
  'rolling-back',
  'rolled-back',
  'rollback-failed',
  'held',
] as const;

export type HostState = (typeof HOST_STATES)[number];

/** Host states that are done with the upgrade part of a rollout (finalize may follow). */
export const UPGRADE_DONE_HOST_STATES = [
  'upgraded',
  'current',
  'rolled-back',
  'rollback-failed',
  'held',
] as const;

/**
 * Host states that count against the rollout's error threshold. A `held` host counts too (it did
 * not upgrade), and besides halts the rollout whatever the threshold (transitions.ts).
 */
export const FAILED_HOST_STATES = ['rolled-back', 'rollback-failed', 'stage-failed', 'held'] as const;

/** Whether `state` is one of `group` (the groupings above are tuples of literals). */
export function isIn<S extends string>(group: readonly S[], state: string): state is S {
  return (group as readonly string[]).includes(state);
}

/** The phase a host state has in flight (written before the command is sent). */
export const PHASE_OF_STATE: Partial<Record<HostState, 'download' | 'upgrade' | 'verify' | 'rollback'>> = {
  staging: 'download',
  upgrading: 'upgrade',
  verifying: 'verify',
  'final-verifying': 'verify',
  'rolling-back': 'rollback',
};

export interface RolloutHostSpec {
  readonly hostId: string;
  readonly hostname: string;
  readonly role: string;
  readonly vars: Readonly<Record<string, string>>;
  /** 0 is the canary batch (when there is one). */
  readonly batch: number;
  readonly installed: string;
}

export interface RolloutSpec {
  readonly deployment: string;
  readonly recipeName: string;
  readonly recipeLabel: string;
  readonly recipeYaml: string;
  readonly requestedTarget: string;
  readonly target: string;
  readonly vars: Readonly<Record<string, string>>;
  readonly window: WindowSpec;
  readonly staging: StagingSpec;
  readonly batches: BatchSpec;
  readonly hosts: readonly RolloutHostSpec[];
  /** Failed hosts the rollout tolerates (the threshold resolved against the host count). */
  readonly maxFailures: number;
  readonly approved: boolean;
  /** From past step timings of this recipe; null when there are none. */
  readonly estimateMsPerHost: number | null;
  /** The role whose host runs `finalize`, when the recipe has one. */
  readonly finalizeRole: string | null;
  /**
   * The recipe's cautions for this jump, acknowledged by the operator at start (absent in
   * rollouts stored before cautions needed an acknowledgement).
   */
  readonly cautions?: readonly string[];
}

export interface RolloutRecord {
  readonly id: string;
  readonly deployment: string;
  readonly spec: RolloutSpec;
  readonly state: RolloutState;
  readonly reason: string;
  readonly paused: boolean;
  readonly pauseUntil: number | null;
  /** The highest batch the operator (or the timed pause) let start. */
  readonly releasedBatch: number;
  /**
   * Failed hosts tolerated beyond the spec's `maxFailures`: a resumed halt accepts the failures it
   * halted on, not more. Status, not spec: the spec is never edited.
   */
  readonly toleratedFailures: number;
  /** How often the finalize in flight was re-sent (the loop guard, loop-guard.ts). */
  readonly finalizeResends: number;
  readonly stageAt: number;
  readonly stagedAt: number | null;
  readonly windowOpenedAt: number | null;
  readonly finalizeState: 'sent' | 'succeeded' | 'failed' | null;
  readonly finalizeHost: string | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
}

export interface RolloutHostRecord {
  readonly rolloutId: string;
  readonly hostId: string;
  readonly position: number;
  readonly batch: number;
  readonly role: string;
  readonly vars: Readonly<Record<string, string>>;
  readonly state: HostState;
  /** The phase sent (or about to be) and not yet answered; null when none is in flight. */
  readonly phase: string | null;
  readonly phaseRunId: string | null;
  readonly installed: string;
  readonly staged: string;
  /** The host went silent with a phase in flight: nothing new starts until it is reconciled. */
  readonly unknown: boolean;
  readonly reason: string;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly downtimeMs: number | null;
  /** How often the phase in flight was re-sent (the loop guard, loop-guard.ts); 0 for a new phase. */
  readonly resends: number;
}

/** Journal run ids on the agent: the upgrade, its verify and its rollback share one run (backups). */
export function agentRunId(
  rolloutId: string,
  kind: 'stage' | 'upgrade' | 'finalize' | 'final-verify',
): string {
  const suffix = { stage: 's', upgrade: 'u', finalize: 'f', 'final-verify': 'v' }[kind];
  return `${rolloutId}-${suffix}`;
}

/**
 * The other runs of the same rollout on a host, whose results a phase may read: the upgrade's
 * binary.replace finds what staging downloaded, a rollback what the upgrade backed up.
 */
export function relatedRunIds(rolloutId: string, own: string): string[] {
  return (['stage', 'upgrade', 'finalize', 'final-verify'] as const)
    .map((k) => agentRunId(rolloutId, k))
    .filter((id) => id !== own);
}
