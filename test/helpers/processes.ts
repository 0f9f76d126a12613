/**
 * Real processes for end-to-end tests: the built `convoy` and `convoy-agent` executables (dist/,
 * built by `npm test` before jest runs), each with its output captured for failure dumps.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeWhenFileEnds } from '../setup/temp-dirs';
import { waitFor } from './wait';

export const ROOT = path.resolve(__dirname, '../..');
export const CONVOY_BIN = path.join(ROOT, 'bin/convoy.js');
export const AGENT_BIN = path.join(ROOT, 'bin/convoy-agent.js');

/**
 * A new directory under the test file's temporary directory, removed (with everything in it) when
 * the file ends, after its last afterAll hook: a test may remove it earlier, never needs to.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `convoy-${prefix}-`));
  removeWhenFileEnds(dir);
  return dir;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a CLI to completion (synchronously: tests read clearer and the CLIs are short-lived). */
export function run(bin: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a CLI without blocking the event loop (needed when the test process itself serves gRPC). */
export function runAsync(
  bin: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export class Daemon {
  stdout = '';
  stderr = '';
  readonly child: ChildProcess;
  private exited: Promise<number | null>;

  constructor(bin: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** kill -9: no chance to clean up, as in a crash. */
  async kill9(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  waitForOutput(what: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    return waitFor(
      `${what.source} in process output`,
      () => what.exec(this.stdout + this.stderr) ?? undefined,
      timeoutMs,
    );
  }

  /** JSON log lines the process wrote to stderr. */
  logLines(): Record<string, unknown>[] {
    return this.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
