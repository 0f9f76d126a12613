/**
 * Cron instants in IANA time zones, maintenance windows and staging times. Pure: every function
 * takes the time it reasons about (ms since the epoch) and, for jitter, its source of randomness.
 *
 * Cron is read by croner (zero dependencies, IANA zones through Intl, DST-correct: a fixed-time
 * job in a skipped hour runs right after the gap, one in a repeated hour runs once). Patterns have
 * exactly five fields (minute hour day-of-month month day-of-week); croner's `L`, `W` and `#`
 * extensions work, and day-of-month and day-of-week combine with OR, as in Vixie cron.
 *
 * A window gates *starting* work on a host, never work already in flight: a host that started
 * inside the window finishes even when the window closes under it (style.md §14).
 */
import { Cron } from 'croner';

/** When downtime is allowed: windows open at each cron instant (in `timezone`) for `durationMs`. */
export interface WindowSpec {
  readonly name: string;
  /** Five-field cron (minute hour day-of-month month day-of-week). */
  readonly cron: string;
  readonly durationMs: number;
  /** IANA time zone, e.g. `Europe/Paris`; `UTC` by default. */
  readonly timezone: string;
  /** No host starts when less than this remains in the window. Default 0. */
  readonly cutoffMs: number;
}

/** When hosts pre-download (`download` phase): at each cron instant, or at once when `cron` is null. */
export interface StagingSpec {
  readonly cron: string | null;
  readonly timezone: string;
  /** A random delay in [0, jitterMs) added to the staging instant, so a fleet does not hit its mirror at once. */
  readonly jitterMs: number;
  /** Hosts staging at the same time. Default 10. */
  readonly concurrency: number;
}

/** Where a window stands at some instant. When closed, `opensAtMs` is the next opening. */
export interface WindowState {
  readonly open: boolean;
  /** When the current occurrence opened (open), or when the next one opens (closed). */
  readonly opensAtMs: number;
  /** When that occurrence closes; overlapping or touching occurrences count as one. */
  readonly closesAtMs: number;
}

/** The verdict of mayStart: the time left in the window, or why not and when to ask again. */
export type StartDecision =
  | { readonly ok: true; readonly remainingMs: number }
  | { readonly ok: false; readonly reason: string; readonly retryAtMs: number };

// Occurrences that overlap are merged into one window; this bounds the merging for patterns such
// as `* * * * *` with a two-hour duration, which would otherwise never close. Each step costs a
// croner lookup (up to ~0.8 ms with a time zone) and the engine asks on every tick, so the bound
// is small: past it the window is reported to close earlier than it does, which only makes the
// cutoff more careful, never lets a host start late.
const MERGE_LIMIT = 48;
// A pattern that has no instant after this has none at all (five fields have no year).
const PROBE_FROM = new Date(Date.UTC(2000, 0, 1));

/** Why a string is not a five-field cron expression croner can run, or null when it is one. */
export function cronProblem(cron: string): string | null {
  const fields = cron
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '').length;
  const what = 'a five-field cron expression (minute hour day-of-month month day-of-week)';
  if (fields !== 5)
    return `must be ${what}, got ${fields} field${fields === 1 ? '' : 's'} (${JSON.stringify(cron)})`;
  let job: Cron;
  try {
    job = new Cron(cron, { paused: true, mode: '5-part', timezone: 'UTC' });
  } catch (err) {
    const detail = (err as Error).message.replace(/^CronPattern:\s*/, '');
    return `must be ${what}: ${detail} (${JSON.stringify(cron)})`;
  }
  return job.nextRun(PROBE_FROM) === null ? `never fires (${JSON.stringify(cron)})` : null;
}

/** Why a string is not an IANA time zone (as Intl knows them), or null when it is one. */
export function timeZoneProblem(timezone: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return null;
  } catch {
    return `must be an IANA time zone such as Europe/Paris or UTC (got ${JSON.stringify(timezone)})`;
  }
}

/** A paused job, used only to compute instants: it never arms a timer. Throws on a bad pattern. */
function cronJob(cron: string, timezone: string): Cron {
  return new Cron(cron, { paused: true, mode: '5-part', timezone });
}

function nextAfter(job: Cron, afterMs: number): number {
  const next = job.nextRun(new Date(afterMs));
  // Patterns are checked at load (cronProblem), so this is a bug, not an operator's mistake.
  if (next === null)
    throw new Error(`cron ${JSON.stringify(job.getPattern())} has no instant after ${afterMs}`);
  return next.getTime();
}

/** The first instant of `cron` in `timezone` strictly after `afterMs`. */
export function nextCronTime(cron: string, timezone: string, afterMs: number): number {
  return nextAfter(cronJob(cron, timezone), afterMs);
}

/**
 * When hosts should stage (download) after `afterMs`: at once when there is no cron, else the next
 * cron instant plus a jitter in [0, jitterMs) drawn from `random` (which returns [0, 1)).
 */
export function stagingTime(spec: StagingSpec, afterMs: number, random: () => number): number {
  if (spec.cron === null) return afterMs;
  const at = nextCronTime(spec.cron, spec.timezone, afterMs);
  if (spec.jitterMs <= 0) return at;
  // Clamped so that a random source returning 1 cannot reach the excluded upper bound.
  return at + Math.min(spec.jitterMs - 1, Math.max(0, Math.floor(random() * spec.jitterMs)));
}

/**
 * Whether the window is open at `nowMs`: open when some instant s has s <= now < s + duration,
 * and the earliest such s is the first instant strictly after now - duration.
 */
export function windowState(w: WindowSpec, nowMs: number): WindowState {
  const job = cronJob(w.cron, w.timezone);
  const opensAtMs = nextAfter(job, nowMs - w.durationMs);
  return { open: opensAtMs <= nowMs, opensAtMs, closesAtMs: mergedEnd(job, opensAtMs, w.durationMs) };
}

/** The end of the occurrence opening at `startMs`, extended by the occurrences that overlap it. */
function mergedEnd(job: Cron, startMs: number, durationMs: number): number {
  let end = startMs + durationMs;
  let at = startMs;
  for (let i = 0; i < MERGE_LIMIT; i++) {
    // Only an occurrence after end - duration extends the window: skip the ones before it.
    at = nextAfter(job, Math.max(at, end - durationMs));
    if (at > end) break;
    end = at + durationMs;
  }
  return end;
}

/**
 * Whether a host whose work is estimated at `estimateMs` may start at `nowMs`: the window must be
 * open, at least `cutoffMs` must remain, and the estimate must fit what remains. When it may not,
 * `retryAtMs` is the next time it could: the next opening (after the current occurrence, if open).
 */
export function mayStart(w: WindowSpec, nowMs: number, estimateMs: number): StartDecision {
  const state = windowState(w, nowMs);
  if (!state.open) {
    const reason = `window ${w.name} opens at ${formatInZone(state.opensAtMs, w.timezone)}`;
    return { ok: false, reason, retryAtMs: state.opensAtMs };
  }
  const remainingMs = state.closesAtMs - nowMs;
  const refuse = (reason: string): StartDecision => ({
    ok: false,
    reason,
    retryAtMs: nextCronTime(w.cron, w.timezone, state.closesAtMs - 1),
  });
  if (remainingMs < w.cutoffMs) {
    return refuse(
      `only ${formatSpan(remainingMs)} left in window ${w.name}, cutoff is ${formatSpan(w.cutoffMs)}`,
    );
  }
  if (estimateMs > remainingMs) {
    return refuse(
      `estimated ${formatSpan(estimateMs)} does not fit the ${formatSpan(remainingMs)} left in window ${w.name}`,
    );
  }
  return { ok: true, remainingMs };
}

/** `2026-11-29T03:00:00+01:00`: the local time in `timezone` with its offset, to the second. */
export function formatInZone(ms: number, timezone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (type: Intl.DateTimeFormatPartTypes): number =>
    Number(parts.find((p) => p.type === type)?.value ?? Number.NaN);
  const [y, mo, d, h, mi, s] = [
    get('year'),
    get('month'),
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  ];
  const local = Date.UTC(y, mo - 1, d, h, mi, s);
  const offsetMin = Math.round((local - Math.floor(ms / 1000) * 1000) / 60_000);
  const two = (n: number): string => String(n).padStart(2, '0');
  const sign = offsetMin < 0 ? '-' : '+';
  const offset = `${sign}${two(Math.floor(Math.abs(offsetMin) / 60))}:${two(Math.abs(offsetMin) % 60)}`;
  return `${String(y).padStart(4, '0')}-${two(mo)}-${two(d)}T${two(h)}:${two(mi)}:${two(s)}${offset}`;
}

/** `2h`, `1h30m`, `12m`, `45s`, `500ms`: a span as operators write durations, rounded down to the second. */
export function formatSpan(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.floor(ms))}ms`;
  const total = Math.floor(ms / 1000);
  const units: [number, string][] = [
    [Math.floor(total / 3600), 'h'],
    [Math.floor((total % 3600) / 60), 'm'],
    [total % 60, 's'],
  ];
  return units
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join('');
}
