/**
 * Running programs on the host: argv arrays only (never a shell), a timeout that escalates from
 * SIGTERM to SIGKILL, output kept to a bounded tail, secrets masked before anything leaves.
 */
import { spawn } from 'node:child_process';

export interface ExecRequest {
  readonly argv: readonly string[];
  /** Added to the agent's environment (APT_CONFIG, PATH for test wrappers, ...). */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Written to stdin, then stdin is closed; how secrets reach a child without argv or env. */
  readonly stdin?: string;
  readonly timeoutMs: number;
  /** Bytes of stdout and of stderr kept (the tail). Default 64 KiB each. */
  readonly maxOutputBytes?: number;
  readonly signal?: AbortSignal;
  /** Run as this uid and gid (the agent runs as root); HOME and USER come through `env`. */
  readonly uid?: number;
  readonly gid?: number;
}

export interface ExecResult {
  /** Exit code, or null when the process died by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
  /** True when output beyond the bound was dropped (the head, not the tail). */
  readonly truncated: boolean;
}

/** What steps use to run programs; tests may wrap it, never replace it with a fake. */
export type Exec = (request: ExecRequest) => Promise<ExecResult>;

const KILL_GRACE_MS = 2000;

export const execOnHost: Exec = (request) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = request.argv;
    if (file === undefined || file === '') return reject(new Error('exec needs a non-empty argv'));
    const max = request.maxOutputBytes ?? 64 * 1024;
    const started = process.hrtime.bigint();
    const child = spawn(file, args, {
      cwd: request.cwd,
      env: { ...process.env, ...request.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: request.signal,
      ...(request.uid === undefined ? {} : { uid: request.uid }),
      ...(request.gid === undefined ? {} : { gid: request.gid }),
    });
    const out = new TailBuffer(max);
    const err = new TailBuffer(max);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined); // a child that exits without reading stdin is not our error
    child.stdin.end(request.stdin ?? '');
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, request.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({
        code,
        signal,
        stdout: out.text(),
        stderr: err.text(),
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        timedOut,
        truncated: out.dropped || err.dropped,
      });
    });
  });

/** Keeps the last `max` bytes written to it. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = false;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.max && this.chunks.length > 0) {
      const first = this.chunks[0] as Buffer;
      const excess = this.size - this.max;
      this.dropped = true;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
