/**
 * Two bounds on sending a host's phase again, as pure decisions (flights.ts does the I/O):
 *
 * - The loop guard (Mender's loop detection): a phase interrupted (the agent died in it, or the
 *   answer was lost) is re-sent so that the agent's resume table can carry it on. A step that kills
 *   the agent every time would be re-sent forever, so after MAX_PHASE_RESENDS re-sends of one phase
 *   the host fails with PHASE_LOOP instead (an upgrade then rolls back, as any failure does).
 * - PHASE_BUSY: the agent refused because it runs another phase. Sending again at once only asks
 *   the same question in a loop; the flight waits with an exponential, jittered backoff (bounded
 *   per wait and in count), and a host still busy after the last wait fails with PHASE_BUSY.
 *   Busy answers are not interruptions: they never count against the loop guard.
 */

/** Re-sends of one phase of one host (or of a rollout's finalize) before the host fails. */
export const MAX_PHASE_RESENDS = 3;

export type ResendDecision = { readonly kind: 'resend' } | { readonly kind: 'give-up'; readonly why: string };

/** Whether a phase already re-sent `resends` times may be sent once more. */
export function decideResend(resends: number, phase: string): ResendDecision {
  if (resends < MAX_PHASE_RESENDS) return { kind: 'resend' };
  return {
    kind: 'give-up',
    why: `PHASE_LOOP: ${phase} was interrupted or re-sent ${resends} times (the loop guard allows ${MAX_PHASE_RESENDS})`,
  };
}

/** How a PHASE_BUSY answer is waited out. Defaults: BUSY_BACKOFF. */
export interface BusyBackoff {
  /** The first wait, ms (before jitter); each later one doubles. */
  readonly baseMs: number;
  /** No single wait is longer, ms. */
  readonly capMs: number;
  /** Busy answers waited out before the host fails with PHASE_BUSY. */
  readonly maxWaits: number;
}

/** 0.5 s, 1 s, 2 s ... at most 60 s a wait, 12 waits: about six minutes of a busy agent. */
export const BUSY_BACKOFF: BusyBackoff = Object.freeze({ baseMs: 500, capMs: 60_000, maxWaits: 12 });

export type BusyDecision =
  { readonly kind: 'wait'; readonly ms: number } | { readonly kind: 'give-up'; readonly why: string };

/**
 * After the `waits`-th busy answer in a row (0 for the first): wait, or give up. The wait is
 * "equal jitter": half the exponential step, plus a random part of the other half, so agents
 * busy at once are not all asked again at the same instant. `random` returns [0, 1).
 */
export function decideBusyWait(
  waits: number,
  random: () => number,
  b: BusyBackoff = BUSY_BACKOFF,
): BusyDecision {
  if (waits >= b.maxWaits)
    return {
      kind: 'give-up',
      why: `PHASE_BUSY: the agent was still running another phase after ${waits} waits`,
    };
  const step = Math.min(b.capMs, b.baseMs * 2 ** waits);
  return { kind: 'wait', ms: Math.round(step / 2 + (step / 2) * random()) };
}
