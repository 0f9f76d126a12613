/**
 * Handles that keep this process's event loop alive: what a test file leaves open (a server, a
 * socket, a child process, a timer) keeps jest from exiting after the run. Counted by type with
 * `process.getActiveResourcesInfo()` against the count before the file ran; the handles behind a
 * count are found with `process._getActiveHandles()` (Node's, undocumented but long-standing) to
 * say what they are and to close them, so that one leaking file cannot hang the whole run.
 */
import { ChildProcess } from 'node:child_process';
import { Server, Socket } from 'node:net';

type Counts = ReadonlyMap<string, number>;

export interface HandleBaseline {
  readonly counts: Counts;
  readonly handles: ReadonlySet<unknown>;
}

function activeHandles(): unknown[] {
  const get = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles;
  return typeof get === 'function' ? get.call(process) : [];
}

function countResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** What is open now. The standard streams are created on first use: touch them so they count as before. */
export function handleBaseline(): HandleBaseline {
  void [process.stdin, process.stdout, process.stderr];
  return { counts: countResources(), handles: new Set(activeHandles()) };
}

/** Resource types with more open now than in the baseline, as `TCPServerWrap x1`. */
export function extraResources(baseline: HandleBaseline): string[] {
  const extra: string[] = [];
  for (const [type, n] of countResources()) {
    const more = n - (baseline.counts.get(type) ?? 0);
    if (more > 0) extra.push(`${type} x${more}`);
  }
  return extra.sort();
}

function describeAddress(address: unknown): string {
  if (address === null || address === undefined) return '(no address)';
  if (typeof address === 'string') return address;
  const a = address as { address?: string; port?: number };
  return `${a.address ?? '?'}:${a.port ?? '?'}`;
}

function describeHandle(h: unknown): string | undefined {
  if (h instanceof ChildProcess)
    return `a child process, pid ${h.pid ?? '?'}: ${h.spawnargs.join(' ').slice(0, 160)}`;
  if (h instanceof Server) return `a server listening on ${describeAddress(h.address())}`;
  if (h instanceof Socket) {
    if (h === process.stdin || h === process.stdout || h === process.stderr) return undefined;
    const remote = h.remoteAddress === undefined ? '(a pipe)' : `${h.remoteAddress}:${h.remotePort ?? '?'}`;
    return `a socket to ${remote}`;
  }
  return `a ${(h as object)?.constructor?.name ?? typeof h}`;
}

/**
 * Describes the handles opened since the baseline and closes those it can (servers, sockets,
 * child processes; a timer cannot be reached from outside). Returns one line per handle.
 */
export function closeNewHandles(baseline: HandleBaseline): string[] {
  const lines: string[] = [];
  for (const h of activeHandles()) {
    if (baseline.handles.has(h)) continue;
    const what = describeHandle(h);
    if (what === undefined) continue;
    lines.push(what);
    try {
      if (h instanceof ChildProcess) h.kill('SIGKILL');
      else if (h instanceof Server) h.close();
      else if (h instanceof Socket) h.destroy();
    } catch {
      // Closing is best effort; the report is what matters.
    }
  }
  return lines;
}
