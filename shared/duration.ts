/** Durations as operators write them: `500ms`, `30s`, `15m`, `1h`, `2d`, or combined, largest unit first (`1h30m`). */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+)(ms|s|m|h|d)/gy;

/** Milliseconds for a duration string, or null when it is not one (or is zero). */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  let total = 0;
  PART.lastIndex = 0;
  let consumed = 0;
  // Each unit at most once, largest first (`1h30m`): `1h1h` or `30m1h` is more likely a typo
  // than a duration, and a typo in a maintenance window should be refused, not summed.
  let previousUnitMs = Number.POSITIVE_INFINITY;
  for (let m = PART.exec(trimmed); m !== null; m = PART.exec(trimmed)) {
    const unitMs = UNIT_MS[m[2] ?? ''] ?? Number.NaN;
    if (!(unitMs < previousUnitMs)) return null;
    previousUnitMs = unitMs;
    total += Number(m[1]) * unitMs;
    consumed = PART.lastIndex;
  }
  if (consumed !== trimmed.length || !Number.isSafeInteger(total) || total <= 0) return null;
  return total;
}

/** A short human form: `850 ms`, `12.3 s`, `4m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${minutes}m${String(seconds).padStart(2, '0')}s`;
}
