/**
 * The rollout document the controller answers with (`rollout status --json`, docs/rollouts.md):
 * one type for the controller that builds it, the CLI that prints it and the tests that read it,
 * built by one pure function from the stored rows and the scheduler's time.
 */
import { windowState } from '../../shared/schedule';
import type { HostState, RolloutHostRecord, RolloutRecord, RolloutState } from './model';
import { heldOf, type HeldPoint } from './held-host';
import { isRebootingReason } from './reboot-wait';

const isRebooting = (h: RolloutHostRecord): boolean => h.phase !== null && isRebootingReason(h.reason);

/** One host of a rollout as `rollout status` shows it: its stored row, named. */
export type RolloutHostView = Pick<
  RolloutHostRecord,
  | 'hostId'
  | 'role'
  | 'batch'
  | 'state'
  | 'phase'
  | 'installed'
  | 'staged'
  | 'unknown'
  | 'reason'
  | 'startedAt'
  | 'finishedAt'
  | 'downtimeMs'
> & {
  readonly hostname: string;
  /** Inside a `reboot` step, waiting for the host to come back (reboot-wait.ts). */
  readonly rebooting: boolean;
  /** Held past the point of no return: the step, the backup and the manual procedure; else null. */
  readonly held: HeldPoint | null;
};

export interface RolloutView {
  readonly id: string;
  readonly deployment: string;
  readonly state: RolloutState;
  readonly reason: string;
  readonly paused: boolean;
  readonly recipe: string;
  readonly target: string;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly stageAt: number;
  readonly stagedAt: number | null;
  readonly windowOpenedAt: number | null;
  readonly finishedAt: number | null;
  readonly finalize: {
    readonly state: string | null;
    readonly host: string | null;
    readonly role: string | null;
  };
  readonly window: {
    readonly name: string;
    readonly open: boolean;
    readonly opensAt: number;
    readonly closesAt: number;
  };
  /** hosts, staged, upgraded, verified, current, failed, inFlight, unknown, rebooting, held. */
  readonly progress: Readonly<Record<string, number>>;
  readonly batches: number;
  readonly currentBatch: number | null;
  readonly elapsedMs: number;
  readonly estimatedRemainingMs: number | null;
  readonly estimateMsPerHost: number | null;
  /** Failed hosts the rollout tolerates: the spec's threshold plus what resumed halts accepted. */
  readonly maxFailures: number;
  /** The recipe's cautions for this jump that the operator acknowledged at start. */
  readonly cautions: readonly string[];
  /** The scheduler's clock (warped in the demo and tests), which windows are judged on. */
  readonly schedulerNow: number;
  /**
   * How many times this controller's engine has looked at the unfinished rollouts since it
   * started; it grows while the engine is alive (a check that "nothing moved" waits on it).
   */
  readonly engineTicks: number;
  readonly hosts: readonly RolloutHostView[];
}

/** Host states whose upgrade is behind them, for good or ill: the current batch is among the rest. */
const PAST_UPGRADE: readonly HostState[] = [
  'upgraded',
  'verified',
  'current',
  'rolled-back',
  'rollback-failed',
  'held',
];

/**
 * The view of `r` and its `hosts`; `schedulerNow` judges the window, `now` (the wall clock)
 * the elapsed time, `engineTicks` is the engine's look count.
 */
export function buildRolloutView(
  r: RolloutRecord,
  hosts: readonly RolloutHostRecord[],
  clocks: { readonly schedulerNow: number; readonly now: number; readonly engineTicks: number },
): RolloutView {
  const { schedulerNow, now, engineTicks } = clocks;
  const names = new Map(r.spec.hosts.map((h) => [h.hostId, h.hostname]));
  const count = (...states: HostState[]): number => hosts.filter((h) => states.includes(h.state)).length;
  const pending = hosts.filter((h) => !PAST_UPGRADE.includes(h.state));
  const w = windowState(r.spec.window, schedulerNow);
  return {
    id: r.id,
    deployment: r.deployment,
    state: r.state,
    reason: r.reason,
    paused: r.paused,
    recipe: r.spec.recipeName,
    target: r.spec.target,
    createdAt: r.createdAt,
    createdBy: r.createdBy,
    stageAt: r.stageAt,
    stagedAt: r.stagedAt,
    windowOpenedAt: r.windowOpenedAt,
    finishedAt: r.finishedAt,
    finalize: { state: r.finalizeState, host: r.finalizeHost, role: r.spec.finalizeRole },
    window: { name: r.spec.window.name, open: w.open, opensAt: w.opensAtMs, closesAt: w.closesAtMs },
    progress: {
      hosts: hosts.length,
      staged: hosts.filter((h) => h.staged !== '').length,
      upgraded: count('upgraded', 'final-verifying', 'verified', 'verify-failed'),
      verified: count('verified'),
      current: count('current'),
      failed: count('stage-failed', 'rolled-back', 'rollback-failed', 'verify-failed', 'held'),
      held: count('held'),
      inFlight: hosts.filter((h) => h.phase !== null).length,
      unknown: hosts.filter((h) => h.unknown).length,
      rebooting: hosts.filter(isRebooting).length,
    },
    batches: new Set(hosts.filter((h) => h.batch >= 0).map((h) => h.batch)).size,
    currentBatch: pending.length === 0 ? null : Math.min(...pending.map((h) => h.batch)),
    elapsedMs: (r.finishedAt ?? now) - r.createdAt,
    // Batches still to run times the per-host estimate (hosts of a batch run side by side).
    estimatedRemainingMs:
      r.spec.estimateMsPerHost === null || r.finishedAt !== null
        ? null
        : new Set(pending.filter((h) => h.batch >= 0).map((h) => h.batch)).size * r.spec.estimateMsPerHost,
    estimateMsPerHost: r.spec.estimateMsPerHost,
    maxFailures: r.spec.maxFailures + r.toleratedFailures,
    cautions: r.spec.cautions ?? [],
    schedulerNow,
    engineTicks,
    hosts: hosts.map((h) => ({
      hostId: h.hostId,
      hostname: names.get(h.hostId) ?? '',
      role: h.role,
      batch: h.batch,
      state: h.state,
      phase: h.phase,
      installed: h.installed,
      staged: h.staged,
      unknown: h.unknown,
      reason: h.reason,
      startedAt: h.startedAt,
      finishedAt: h.finishedAt,
      downtimeMs: h.downtimeMs,
      rebooting: isRebooting(h),
      held: h.state === 'held' ? (heldOf(h.reason) ?? null) : null,
    })),
  };
}
