/**
 * libfaketime for agent processes: a fixed offset on the wall clock (Date.now) while the monotonic
 * clock stays true, so timers, timeouts and backoffs in the skewed process still work.
 */
import { assertTools, LIBFAKETIME } from '../../helpers/require-tool';

export { LIBFAKETIME };

/** Environment that shifts a child's wall clock by `offset` (libfaketime syntax: `+10m`, `-30s`). */
export function faketimeEnv(offset: string): NodeJS.ProcessEnv {
  // Failing, not skipping, even off CI: a chaos suite that quietly drops its clock cases proves nothing.
  assertTools(LIBFAKETIME);
  return { LD_PRELOAD: LIBFAKETIME, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

/**
 * Like faketimeEnv, but the offset is read from `file` (at most a second old), so a test can step
 * the clock of a running process by rewriting it, as NTP or an operator would.
 */
export function steppableFaketimeEnv(file: string): NodeJS.ProcessEnv {
  const env = faketimeEnv('+0s');
  delete env['FAKETIME'];
  return { ...env, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: '1' };
}

/** The offset in ms that a libfaketime spec such as `+10m` or `-30s` stands for. */
export function offsetMs(offset: string): number {
  const m = /^([+-])(\d+)([smh])$/.exec(offset);
  if (m === null) throw new Error(`unsupported faketime offset ${offset}`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000 }[m[3] as 's' | 'm' | 'h'];
  return (m[1] === '-' ? -1 : 1) * Number(m[2]) * unit;
}

/** The wall-clock time (ms) of the first JSON log line whose `msg` is `msg`, or undefined. */
export function logTime(
  lines: readonly Record<string, unknown>[],
  msg: string,
  where: (line: Record<string, unknown>) => boolean = () => true,
): number | undefined {
  const line = lines.find((l) => l['msg'] === msg && where(l));
  return typeof line?.['ts'] === 'string' ? Date.parse(line['ts']) : undefined;
}
