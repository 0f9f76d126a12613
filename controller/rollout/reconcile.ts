/**
 * Reconcile, decided: a phase the store says is in flight, that no promise of this controller
 * waits for (it restarted, or the answer was lost), is settled against the agent's journal. The
 * same rule serves a host's phase and the rollout's finalize. Pure: flights.ts does the I/O.
 *
 *   agent offline                         ─▶ offline   (say so; look again later)
 *   no answer to the status query         ─▶ no-answer (look again later)
 *   journal: this run and phase, running  ─▶ running   (wait: the agent finishes it)
 *   journal: this run and phase, ended    ─▶ finished  (take its outcome; never send it again)
 *   journal: another run, running         ─▶ busy      (the agent would refuse PHASE_BUSY: wait
 *                                                      with backoff, loop-guard.ts)
 *   journal: another run, or interrupted  ─▶ resend    (never received, or the agent crashed:
 *                                                      its resume table decides per step)
 */
import type { PhaseJournalSummary } from '../../shared/phase-contract';

/** What the agent's `status` says of its phase journal (the shared contract's summary). */
export type JournalView = Pick<PhaseJournalSummary, 'runId' | 'phase' | 'state' | 'completed'>;

export type ReconcileStep =
  | { readonly kind: 'offline' }
  | { readonly kind: 'no-answer' }
  | { readonly kind: 'running' }
  | { readonly kind: 'finished'; readonly ok: boolean }
  | { readonly kind: 'busy' }
  | { readonly kind: 'resend' };

/**
 * `journal` is undefined when the agent did not answer, null when it has no journal at all.
 */
export function decideReconcile(
  online: boolean,
  journal: JournalView | null | undefined,
  expected: { readonly runId: string; readonly phase: string },
): ReconcileStep {
  if (!online) return { kind: 'offline' };
  if (journal === undefined) return { kind: 'no-answer' };
  if (journal !== null && journal.runId === expected.runId && journal.phase === expected.phase) {
    if (journal.state === 'running') return { kind: 'running' };
    if (journal.state === 'succeeded' || journal.state === 'failed')
      return { kind: 'finished', ok: journal.state === 'succeeded' };
  }
  if (journal !== null && journal.state === 'running') return { kind: 'busy' };
  return { kind: 'resend' };
}
