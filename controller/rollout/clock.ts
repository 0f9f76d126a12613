/**
 * The clock rollouts are scheduled by (staging times, windows, timed pauses). It is the wall
 * clock unless the controller was started with `--clock-start` (it then runs from that instant)
 * and `--clock-warp` (when nothing is in flight, it jumps to the next scheduled instant).
 * Those two exist for the demo and for tests of off-hours schedules; signatures, expiry and
 * audit timestamps always use the real clock.
 */
export class SchedulerClock {
  private offsetMs: number;

  constructor(
    startAtMs: number | undefined = undefined,
    readonly warp = false,
    private readonly real: () => number = Date.now,
  ) {
    this.offsetMs = startAtMs === undefined ? 0 : startAtMs - real();
  }

  now(): number {
    return this.real() + this.offsetMs;
  }

  /** Moves the clock forward to `atMs` (never back); only in warp mode. */
  warpTo(atMs: number): boolean {
    if (!this.warp || atMs <= this.now()) return false;
    this.offsetMs += atMs - this.now();
    return true;
  }
}
