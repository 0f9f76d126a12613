/**
 * Small process helpers for the benchmark: RSS, CPU and mounts from /proc, CLI runs with wall time,
 * waiting for a child's log line, percentiles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** VmRSS of a live process from /proc/PID/status, in kB (what the kernel charges it, not V8's view). */
export function readRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (m?.[1] === undefined) throw new Error(`/proc/${pid}/status has no VmRSS line (process gone?)`);
  return Number(m[1]);
}

export interface RssBreakdown {
  /** VmRSS, kB. */
  readonly rssKb: number;
  /** RssAnon: private heap, stacks, malloc, kB. */
  readonly anonKb: number;
  /** RssFile: resident pages of mapped files (the node binary, shared libraries), kB. */
  readonly fileKb: number;
}

export function readRssBreakdown(pid: number): RssBreakdown {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), anonKb: field('RssAnon'), fileKb: field('RssFile') };
}

/**
 * Latency of the agent journal's durable append (write + fdatasync of one short line) in `dir`:
 * what each real host adds to a command's round trip on its own disk.
 */
export function fdatasyncLatencyMs(dir: string, count = 200): number[] {
  const file = path.join(dir, `fdatasync-probe-${process.pid}`);
  const fd = openSync(file, 'a', 0o600);
  const out: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      writeSync(fd, `${i} ${'0'.repeat(64)}\n`);
      fdatasyncSync(fd);
      out.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return out.sort((a, b) => a - b);
}

/** Filesystem type of `dir` from /proc/mounts (longest mount-point prefix), for the report. */
export function fsType(dir: string): string {
  let best = { mount: '', type: 'unknown' };
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mount, type] = line.split(' ');
    if (mount === undefined || type === undefined) continue;
    const inside = dir === mount || dir.startsWith(mount.endsWith('/') ? mount : mount + '/');
    if (inside && mount.length >= best.mount.length) best = { mount, type };
  }
  return best.type;
}

/** User + system CPU time a live process has used so far, ms (from /proc/PID/stat, 100 Hz ticks). */
export function readCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name, which may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return ticks * 10;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From spawn to exit, ms. */
  readonly wallMs: number;
}

/** Short-lived CLI runs still going, so that clean-up can kill them too. */
export const runningClis = new Set<ChildProcess>();

/** Runs `node <script> args...` to completion without blocking the event loop. */
export function runNode(script: string, args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    runningClis.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      runningClis.delete(child);
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      runningClis.delete(child);
      clearTimeout(timer);
      resolve({ code, stdout, stderr, wallMs: Number(process.hrtime.bigint() - started) / 1e6 });
    });
  });
}

export interface OutputWait<T> {
  /** The value wanted from everything `stream` has printed so far, or undefined to keep waiting. */
  readonly match: (text: string) => T | undefined;
  readonly timeoutMs: number;
  readonly onTimeout: (text: string) => Error;
  readonly onExit: (code: number | null, text: string) => Error;
}

/**
 * Waits until a long-lived child prints what `wait.match` looks for (e.g. its listening address),
 * and fails early if the child exits first rather than waiting out the timeout.
 */
export function waitForOutput<T>(
  child: ChildProcess,
  stream: Readable | null,
  wait: OutputWait<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(wait.onTimeout(text)), wait.timeoutMs);
    stream?.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      const found = wait.match(text);
      if (found !== undefined) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(wait.onExit(code, text));
    });
  });
}

/** Nearest-rank percentile of an already sorted array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? NaN;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
