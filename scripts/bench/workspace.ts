/**
 * The benchmark's workspace: temporary directories, log files and long-lived children, torn down
 * once whatever happens (success, failure, SIGINT/SIGTERM or the hard timeout).
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ToSwarm } from './protocol';
import { runningClis } from './proc';

/** Progress for people goes to stderr; stdout carries only the figures. */
export function note(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

/** Every long-lived child and the temp directory, torn down once whatever happens. */
export class Workspace {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-'));
  private readonly dirs = [this.root];
  private readonly children = new Set<ChildProcess>();
  private cleaned: Promise<void> | undefined;

  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** A fresh directory under `parent`, removed at clean-up. */
  tempDir(parent: string): string {
    const dir = mkdtempSync(path.join(parent, 'convoy-bench-'));
    this.dirs.push(dir);
    return dir;
  }

  /**
   * Starts a child that writes to the log file `name` in the workspace. The descriptor is closed
   * here once `start` returns: the child holds its own copy.
   */
  withLogFile<T>(name: string, start: (fd: number) => T): T {
    const fd = openSync(path.join(this.root, name), 'a', 0o600);
    try {
      return start(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The last lines of a log file, for error reports. */
  tail(name: string, lines = 20): string {
    try {
      return readFileSync(path.join(this.root, name), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  cleanup(): Promise<void> {
    this.cleaned ??= this.doCleanup();
    return this.cleaned;
  }

  private async doCleanup(): Promise<void> {
    for (const cli of runningClis) cli.kill('SIGKILL');
    const children = [...this.children];
    await Promise.all(children.map((c) => stopChild(c)));
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** Asks a child to stop (IPC `stop` for swarms, SIGTERM otherwise), SIGKILL after 5 s. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    if (child.connected) child.send({ type: 'stop' } satisfies ToSwarm);
    else child.kill('SIGTERM');
  });
}

/**
 * Cleans up and exits at the hard timeout (1) or on SIGINT/SIGTERM (130), so that an interrupted
 * or stuck run leaves no process or directory behind. Returns what disarms the timeout.
 */
export function cleanUpOnTimeoutOrSignal(ws: Workspace, timeoutMinutes: number): () => void {
  const hardTimeout = setTimeout(() => {
    note(`hard timeout: ${timeoutMinutes} min elapsed; cleaning up`);
    void ws.cleanup().finally(() => process.exit(1));
  }, timeoutMinutes * 60_000);
  const onSignal = (signal: string): void => {
    note(`${signal}: cleaning up`);
    void ws.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => clearTimeout(hardTimeout);
}
