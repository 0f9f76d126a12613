/**
 * What a host's answer to a phase does, as a table: for each host state that has a phase in
 * flight, where an ok and a failed answer take the host (a resting state, or the next phase of
 * its chain: upgrade ─▶ verify, and either failing ─▶ rollback), and what `convoy status` learns
 * about the host's application. Pure: the engine writes the result in one transaction.
 *
 *   staging          ok ─▶ staged                     failed ─▶ stage-failed
 *   upgrading        ok ─▶ verifying (chained)        failed ─▶ rolling-back (chained)
 *   verifying        ok ─▶ upgraded                   failed ─▶ rolling-back (chained)
 *   final-verifying  ok ─▶ verified                   failed ─▶ verify-failed
 *   (a verify ok whose read-back installed version is not the target takes its failed row)
 *   rolling-back     ok ─▶ rolled-back                failed ─▶ rollback-failed
 *                                                     held   ─▶ held (refused past the point of no return)
 *
 * `held` is the failed answer that carries the agent's `pointOfNoReturn`: the rollback was refused
 * because the host is past a step the recipe marks so (held-host.ts). Only a rollback carries it;
 * a failed upgrade or verify chains its rollback, whose answer then holds the host.
 *
 * An answer that never came (lost, or the agent busy with another phase) leaves the host where it
 * is, marked unknown, for reconcile to settle with the agent's journal.
 *
 * Versions are the ones read back (read-back.ts): staged from what the download reported, installed
 * from the report of the verify or rollback. A verify that read back another version than the
 * target is a failed verify (VERSION_MISMATCH), and takes the failed row.
 */
import { PHASE_OF_STATE, type HostState, type RolloutHostRecord } from './model';
import { installedMismatch, stagedVersionOf } from './read-back';
import { heldReason, type HeldPoint } from './held-host';
import type { HostAppPatch, HostPatch } from './rollout-store';
import type { PhaseHostState } from './transitions';

/** How a phase ended, as far as the rollout cares. */
export type PhaseOutcome =
  | {
      readonly kind: 'ok';
      readonly backupId?: string;
      /** The installed version the agent read after the phase, when it read one. */
      readonly installed?: string;
      /** Every version the phase's steps reported (a download: what it staged). */
      readonly versions?: readonly string[];
    }
  | {
      readonly kind: 'failed';
      readonly why: string;
      /** The agent refused the rollback past the point of no return (a rollback answer only). */
      readonly pointOfNoReturn?: HeldPoint;
      /** The steps the phase ran (started), when it answered: a finalize past its point says so. */
      readonly ran?: readonly string[];
    }
  /** No answer, or refused because the agent is busy: the phase may still be running there. */
  | { readonly kind: 'unknown'; readonly why: string; readonly busy?: boolean };

interface ResultRow {
  /** The state the host takes. */
  readonly to: HostState;
  /** True when `to` sends its phase in the same transaction (the host is never between phases). */
  readonly chained: boolean;
  /** What status learns about the host's application. */
  readonly app: (c: AppContext) => HostAppPatch;
}

interface AppContext {
  readonly now: number;
  readonly why: string;
  /** The version read back: staged after a download, installed after a verify or rollback ('' unread). */
  readonly version: string;
  readonly backupId?: string;
}

const NOTHING = (): HostAppPatch => ({});
const HEALTHY_READ_BACK = ({ version, now }: AppContext): HostAppPatch => ({
  installed: version,
  lastHealth: 'ok',
  lastHealthAt: now,
});
const UNHEALTHY = ({ why, now }: AppContext): HostAppPatch => ({
  lastHealth: `failed: ${why}`,
  lastHealthAt: now,
});

export const HOST_RESULTS: Record<
  PhaseHostState,
  { readonly ok: ResultRow; readonly failed: ResultRow; readonly held?: ResultRow }
> = {
  staging: {
    ok: { to: 'staged', chained: false, app: ({ version }) => ({ staged: version }) },
    failed: { to: 'stage-failed', chained: false, app: NOTHING },
  },
  upgrading: {
    ok: {
      to: 'verifying',
      chained: true,
      app: ({ backupId }) => (backupId ? { lastBackupId: backupId } : {}),
    },
    failed: { to: 'rolling-back', chained: true, app: NOTHING },
  },
  verifying: {
    // Maintenance, as status shows it, ends when the host is verified (or rolled back).
    ok: { to: 'upgraded', chained: false, app: (c) => ({ ...HEALTHY_READ_BACK(c), maintenance: false }) },
    failed: { to: 'rolling-back', chained: true, app: UNHEALTHY },
  },
  'final-verifying': {
    ok: { to: 'verified', chained: false, app: HEALTHY_READ_BACK },
    failed: { to: 'verify-failed', chained: false, app: UNHEALTHY },
  },
  'rolling-back': {
    ok: {
      to: 'rolled-back',
      chained: false,
      app: ({ version }) => ({ installed: version, maintenance: false }),
    },
    // A failed rollback leaves maintenance on: the host needs an operator.
    failed: { to: 'rollback-failed', chained: false, app: NOTHING },
    // Refused past the point of no return: nothing was undone, maintenance stays on, the host
    // waits for the manual procedure.
    held: { to: 'held', chained: false, app: UNHEALTHY },
  },
};

export interface HostResult {
  /** The audit event: `rollout.host.<state>.ok|failed`. */
  readonly event: string;
  readonly hostPatch: HostPatch;
  readonly appPatch: HostAppPatch;
  /** The phase to send next in the same transaction, when the answer chains one. */
  readonly chained?: { readonly state: PhaseHostState; readonly phase: string };
  /** The failure, for the event and the host's reason. */
  readonly why?: string;
  /** The version read back that the answer recorded (staged or installed), for the event. */
  readonly readBack?: { readonly staged?: string; readonly installed?: string };
  /** The host is held past the point of no return: the step, backup and procedure, for the event. */
  readonly pointOfNoReturn?: HeldPoint;
}

/**
 * The effect of an answered phase on host `h` (whose state has a phase in flight). `now` is the
 * wall clock; `nextPhaseRunId` names the chained phase's run when there is one.
 */
export function decideHostResult(
  h: RolloutHostRecord,
  answer: Exclude<PhaseOutcome, { kind: 'unknown' }>,
  c: { readonly target: string; readonly now: number; readonly nextPhaseRunId: string },
): HostResult {
  const from = phaseHostState(h.state);
  const outcome = withReadBackChecked(from, answer, c.target);
  const ok = outcome.kind === 'ok';
  const rows = HOST_RESULTS[from];
  const point = outcome.kind === 'failed' && rows.held !== undefined ? outcome.pointOfNoReturn : undefined;
  // A held host's reason is the step, the backup and the procedure: what the operator needs.
  const why = ok ? '' : point !== undefined ? heldReason(point) : outcome.why;
  const row = point !== undefined && rows.held !== undefined ? rows.held : rows[ok ? 'ok' : 'failed'];
  const hostPatch: HostPatch = {
    state: row.to,
    phase: null,
    phaseRunId: null,
    unknown: false,
    // A new phase (chained) or none: the loop guard counts from zero again.
    resends: 0,
    // A rolled-back host keeps why its upgrade or verify failed: status must still say why.
    reason: ok ? (from === 'rolling-back' ? h.reason : '') : why,
  };
  const read = outcome.kind === 'ok' ? readBackOf(from, outcome, c.target) : {};
  const version = read.staged ?? read.installed ?? '';
  if (read.staged !== undefined) hostPatch.staged = read.staged;
  if (read.installed !== undefined) hostPatch.installed = read.installed;
  if (from === 'upgrading') hostPatch.downtimeMs = Math.max(0, c.now - (h.startedAt ?? c.now));
  const backupId = outcome.kind === 'ok' ? outcome.backupId : undefined;
  const appPatch = row.app({ now: c.now, why, version, ...(backupId ? { backupId } : {}) });
  const event = `rollout.host.${from}.${ok ? 'ok' : point !== undefined ? 'held' : 'failed'}`;
  const extra = {
    ...(ok ? {} : { why }),
    ...(Object.keys(read).length > 0 ? { readBack: read } : {}),
    ...(point === undefined ? {} : { pointOfNoReturn: point }),
  };
  if (!row.chained) return { event, hostPatch: { ...hostPatch, finishedAt: c.now }, appPatch, ...extra };
  const state = phaseHostState(row.to);
  const phase = PHASE_OF_STATE[state] as string;
  return {
    event,
    hostPatch: { ...hostPatch, phase, phaseRunId: c.nextPhaseRunId },
    appPatch,
    chained: { state, phase },
    ...extra,
  };
}

/** A verify whose read-back is not the target failed, whatever its steps said. */
function withReadBackChecked(
  from: PhaseHostState,
  outcome: Exclude<PhaseOutcome, { kind: 'unknown' }>,
  target: string,
): Exclude<PhaseOutcome, { kind: 'unknown' }> {
  if (outcome.kind !== 'ok' || (from !== 'verifying' && from !== 'final-verifying')) return outcome;
  const mismatch = installedMismatch(outcome.installed, target);
  return mismatch === undefined ? outcome : { kind: 'failed', why: mismatch };
}

/** What an ok answer read back from the host, by the phase it answers. */
function readBackOf(
  from: PhaseHostState,
  outcome: Extract<PhaseOutcome, { kind: 'ok' }>,
  target: string,
): { staged?: string; installed?: string } {
  if (from === 'staging') return { staged: stagedVersionOf(outcome.versions ?? [], target) };
  if (from === 'verifying' || from === 'final-verifying' || from === 'rolling-back')
    return { installed: outcome.installed ?? '' };
  return {};
}

/** The host state as one that has a phase in flight; anything else answering is a bug. */
export function phaseHostState(state: HostState): PhaseHostState {
  if (!(state in HOST_RESULTS)) throw new Error(`a host in state ${state} has no phase to answer`);
  return state as PhaseHostState;
}
