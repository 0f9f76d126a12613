/**
 * Stalls of our own process, for judging another side's silence fairly.
 *
 * A heartbeat watchdog runs on a timer. When the process itself stops running for a while (a long
 * GC, CPU starvation on a loaded machine, SIGSTOP, a laptop lid), the peer's heartbeats wait in the
 * socket buffer, and after the stall Node runs the overdue timer before it reads them: every peer
 * looks silent at once, and every session would be dropped for a silence that was ours. The ledger
 * learns of a stall from how late its periodic tick came, and a watchdog subtracts the stalls that
 * fall inside a peer's silence before comparing it with the timeout.
 *
 * Pure: the caller owns the timer and the clock.
 */

interface Stall {
  /** When the late tick finally ran. */
  readonly endMs: number;
  /** How long the process was not running, beyond the tick's own period. */
  readonly ms: number;
}

export class StallLedger {
  private lastTickMs: number;
  private readonly stalls: Stall[] = [];

  /**
   * @param periodMs the interval the caller ticks at
   * @param keepMs how far back stalls are remembered (the longest silence the caller judges)
   */
  constructor(
    private readonly periodMs: number,
    private readonly keepMs: number,
    startMs: number,
  ) {
    this.lastTickMs = startMs;
  }

  /**
   * Records a tick of the caller's periodic timer at `nowMs`; returns the stall that delayed it, or 0.
   * Lateness up to one period is ordinary jitter on a busy event loop and is not a stall.
   */
  tick(nowMs: number): number {
    const late = nowMs - this.lastTickMs - this.periodMs;
    this.lastTickMs = nowMs;
    while (this.stalls.length > 0 && (this.stalls[0]?.endMs ?? 0) < nowMs - this.keepMs) this.stalls.shift();
    if (late <= this.periodMs) return 0;
    this.stalls.push({ endMs: nowMs, ms: late });
    return late;
  }

  /** How much of the time since `sinceMs` our process spent stalled. */
  stalledSince(sinceMs: number): number {
    let total = 0;
    for (const s of this.stalls) {
      if (s.endMs <= sinceMs) continue;
      total += Math.min(s.ms, s.endMs - sinceMs);
    }
    return total;
  }

  /** A peer last heard at `lastHeardMs`: how long it has been silent while we were running. */
  silenceOf(lastHeardMs: number, nowMs: number): number {
    return Math.max(0, nowMs - lastHeardMs - this.stalledSince(lastHeardMs));
  }
}
