/**
 * `convoy phase run` of a mutating phase goes through the same policy as a rollout, so that the
 * operator cannot go around it by accident: a phase that changes the host (download, upgrade,
 * finalize, rollback) on a host of a deployment is refused when a running rollout holds the host
 * (ROLLOUT_LOCKED, naming it), when the deployment's policy refuses the jump (POLICY_REFUSED: pins,
 * allowedRange, downgrades) or holds it for approval (APPROVAL_REQUIRED without --approve). Going
 * around any of these takes `--override --reason TEXT`, which the audit log records with what it
 * went around. check and verify change nothing and stay free. Pure: operator/run-phase.ts gathers
 * the inputs and writes the audit event.
 */
import type { ErrorCode } from '../../shared/errors';
import type { DeploymentSpec } from '../../shared/fleet/types';
import { matchesSelector, type Labels } from '../../shared/labels';
import { decideUpgrade, type UpgradePolicy } from '../../shared/semver-policy';

/** Phases that change the host; the others (check, verify) are free. */
export const MUTATING_PHASES: ReadonlySet<string> = new Set(['download', 'upgrade', 'finalize', 'rollback']);

/** A deployment the host belongs to, as the policy sees it. */
export interface HostDeployment {
  readonly name: string;
  /** The recipe's policy with the fleet file's over it (plan.ts effectivePolicy). */
  readonly policy: UpgradePolicy;
  /** The version on the host: --installed, else what rollouts read back for this deployment ('' unknown). */
  readonly installed: string;
}

/** An unfinished rollout that has the host among its hosts. */
export interface RolloutHold {
  readonly rolloutId: string;
  readonly deployment: string;
  readonly state: string;
}

export interface PhaseRunAsk {
  readonly phase: string;
  readonly target: string;
  readonly approve: boolean;
  readonly override: boolean;
  readonly reason: string;
  readonly deployments: readonly HostDeployment[];
  readonly holds: readonly RolloutHold[];
}

export type PhaseRunVerdict =
  /** Not a mutating phase, or a host no deployment or rollout has: nothing to check. */
  | { readonly kind: 'free' }
  /** Mutating, and the policy lets it through. */
  | { readonly kind: 'allowed' }
  /** The policy would refuse it; the operator's override (with its reason) goes around `refusals`. */
  | { readonly kind: 'overridden'; readonly refusals: readonly string[] }
  | { readonly kind: 'refused'; readonly code: ErrorCode; readonly message: string };

export function decidePhaseRun(ask: PhaseRunAsk): PhaseRunVerdict {
  if (!MUTATING_PHASES.has(ask.phase)) return { kind: 'free' };
  const hasReason = ask.reason.trim() !== '';
  if (ask.override !== hasReason)
    return {
      kind: 'refused',
      code: 'OVERRIDE_REASON_REQUIRED',
      message: ask.override
        ? '--override needs --reason TEXT: the audit log records why the policy was gone around'
        : '--reason goes with --override',
    };
  const refusals = [...lockRefusals(ask.holds), ...ask.deployments.flatMap((d) => policyRefusals(ask, d))];
  if (refusals.length === 0)
    return ask.deployments.length === 0 && ask.holds.length === 0 ? { kind: 'free' } : { kind: 'allowed' };
  if (ask.override) return { kind: 'overridden', refusals: refusals.map((r) => r.message) };
  const [first] = refusals as [Refusal, ...Refusal[]];
  const all = refusals.map((r) => r.message).join('; ');
  return {
    kind: 'refused',
    code: first.code,
    message: `${all}; or go around it with --override --reason TEXT`,
  };
}

interface Refusal {
  readonly code: ErrorCode;
  readonly message: string;
}

function lockRefusals(holds: readonly RolloutHold[]): Refusal[] {
  return holds.map((h) => ({
    code: 'ROLLOUT_LOCKED',
    message: `rollout ${h.rolloutId} of deployment ${h.deployment} (${h.state}) holds this host: wait for it or abort it`,
  }));
}

/** What the deployment's policy says of the jump this phase makes; a rollback makes none of its own. */
function policyRefusals(ask: PhaseRunAsk, d: HostDeployment): Refusal[] {
  if (ask.phase === 'rollback') return [];
  const where = `deployment ${d.name}`;
  if (ask.target === '')
    return [
      {
        code: 'POLICY_REFUSED',
        message: `${where}: pass --target, the policy checks the version it installs`,
      },
    ];
  if (d.installed === '')
    return [
      {
        code: 'POLICY_REFUSED',
        message: `${where}: the installed version is not known; pass --installed (convoy phase run --phase check reads it)`,
      },
    ];
  const verdict = decideUpgrade(d.installed, ask.target, d.policy);
  if (verdict.decision === 'refused')
    return [{ code: 'POLICY_REFUSED', message: `${where}: ${verdict.reason}` }];
  if (verdict.decision === 'needs-approval' && !ask.approve)
    return [{ code: 'APPROVAL_REQUIRED', message: `${where}: ${verdict.reason}` }];
  return [];
}

/** Whether the deployment's hosts list names the host (by id, or by a selector its labels match). */
export function deploymentHasHost(
  spec: Pick<DeploymentSpec, 'hosts'>,
  host: { readonly id: string; readonly labels: Labels },
): boolean {
  return spec.hosts.some((e) =>
    e.id !== undefined ? e.id === host.id : matchesSelector(host.labels, e.select ?? {}),
  );
}
