/** CLI output helpers: aligned tables for people, JSON for scripts, one-line failures. */
import { ConvoyError } from '../../shared/errors';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Columns padded to the widest cell; cells are shown verbatim (names are data). */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write([line(headers), ...rows.map(line)].join('\n') + '\n');
}

export function ago(ms: number, now = Date.now()): string {
  if (ms <= 0) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Exit codes: 1 an operation failed, 2 the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Prints `convoy: CODE: reason` (or the JSON form) and sets the exit code. */
export function reportFailure(err: unknown, json: boolean): void {
  const code = err instanceof ConvoyError ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  if (json) process.stdout.write(JSON.stringify({ error: { code, message } }) + '\n');
  process.stderr.write(`convoy: ${code}: ${message.split('\n')[0] ?? ''}\n`);
  process.exitCode =
    err instanceof ConvoyError && err.code === 'INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
}
