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
 *   rolling-back     ok ─▶ rolled-back                failed ─▶ rollback-failed
 *
 * An answer that never came (lost, or the agent busy with another phase) leaves the host where it
 * is, marked unknown, for reconcile to settle with the agent's journal.
 */
import { PHASE_OF_STATE, type HostState, type RolloutHostRecord } from './model';
import type { HostAppPatch, HostPatch } from './rollout-store';
import type { PhaseHostState } from './transitions';

/** How a phase ended, as far as the rollout cares. */
export type PhaseOutcome =
  | { readonly kind: 'ok'; readonly backupId?: string }
  | { readonly kind: 'failed'; readonly why: string }
  /** No answer, or refused because the agent is busy: the phase may still be running there. */
  | { readonly kind: 'unknown'; readonly why: string };

interface ResultRow {
  /** The state the host takes. */
  readonly to: HostState;
  /** True when `to` sends its phase in the same transaction (the host is never between phases). */
  readonly chained: boolean;
  /** What status learns about the host's application. */
  readonly app: (c: { target: string; now: number; why: string; backupId?: string }) => HostAppPatch;
}

const NOTHING = (): HostAppPatch => ({});
const HEALTHY_ON_TARGET = ({ target, now }: { target: string; now: number }): HostAppPatch => ({
  installed: target,
  lastHealth: 'ok',
  lastHealthAt: now,
});
const UNHEALTHY = ({ why, now }: { why: string; now: number }): HostAppPatch => ({
  lastHealth: `failed: ${why}`,
  lastHealthAt: now,
});

export const HOST_RESULTS: Record<PhaseHostState, { readonly ok: ResultRow; readonly failed: ResultRow }> = {
  staging: {
    ok: { to: 'staged', chained: false, app: ({ target }) => ({ staged: target }) },
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
    ok: { to: 'upgraded', chained: false, app: (c) => ({ ...HEALTHY_ON_TARGET(c), maintenance: false }) },
    failed: { to: 'rolling-back', chained: true, app: UNHEALTHY },
  },
  'final-verifying': {
    ok: { to: 'verified', chained: false, app: HEALTHY_ON_TARGET },
    failed: { to: 'verify-failed', chained: false, app: UNHEALTHY },
  },
  'rolling-back': {
    ok: { to: 'rolled-back', chained: false, app: () => ({ maintenance: false }) },
    // A failed rollback leaves maintenance on: the host needs an operator.
    failed: { to: 'rollback-failed', chained: false, app: NOTHING },
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
}

/**
 * The effect of an answered phase on host `h` (whose state has a phase in flight). `now` is the
 * wall clock; `nextPhaseRunId` names the chained phase's run when there is one.
 */
export function decideHostResult(
  h: RolloutHostRecord,
  outcome: Exclude<PhaseOutcome, { kind: 'unknown' }>,
  c: { readonly target: string; readonly now: number; readonly nextPhaseRunId: string },
): HostResult {
  const from = phaseHostState(h.state);
  const ok = outcome.kind === 'ok';
  const why = ok ? '' : outcome.why;
  const row = HOST_RESULTS[from][ok ? 'ok' : 'failed'];
  const hostPatch: HostPatch = {
    state: row.to,
    phase: null,
    phaseRunId: null,
    unknown: false,
    // A rolled-back host keeps why its upgrade or verify failed: status must still say why.
    reason: ok ? (from === 'rolling-back' ? h.reason : '') : why,
  };
  if (from === 'staging' && ok) hostPatch.staged = c.target;
  if (from === 'verifying' && ok) hostPatch.installed = c.target;
  if (from === 'upgrading') hostPatch.downtimeMs = Math.max(0, c.now - (h.startedAt ?? c.now));
  const backupId = ok ? outcome.backupId : undefined;
  const appPatch = row.app({ target: c.target, now: c.now, why, ...(backupId ? { backupId } : {}) });
  const event = `rollout.host.${from}.${ok ? 'ok' : 'failed'}`;
  if (!row.chained)
    return { event, hostPatch: { ...hostPatch, finishedAt: c.now }, appPatch, ...(ok ? {} : { why }) };
  const state = phaseHostState(row.to);
  const phase = PHASE_OF_STATE[state] as string;
  return {
    event,
    hostPatch: { ...hostPatch, phase, phaseRunId: c.nextPhaseRunId },
    appPatch,
    chained: { state, phase },
    ...(ok ? {} : { why }),
  };
}

/** The host state as one that has a phase in flight; anything else answering is a bug. */
export function phaseHostState(state: HostState): PhaseHostState {
  if (!(state in HOST_RESULTS)) throw new Error(`a host in state ${state} has no phase to answer`);
  return state as PhaseHostState;
}
