/**
 * `convoy-agent supervise`: the fallback where systemd does not run. It keeps `convoy-agent run`
 * alive the way the unit's `Restart=always` does: an exit with RESTART_EXIT_CODE (the agent
 * replaced its own bundle) restarts at once and loads the new file; a crash restarts after a
 * backoff that resets once the agent has stayed up a minute. SIGTERM stops the agent, then itself.
 *
 * The supervisor writes its own pid file, so whoever started it (enroll over SSH) and whoever
 * stops it (decommission) agree on the process without racing its start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { ConvoyError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { writeFileAtomic } from '../identity';
import { RESTART_EXIT_CODE } from './systemd-unit';

export interface SuperviseOptions {
  readonly script: string;
  readonly stateDir: string;
  readonly pidFile: string;
  readonly log: Logger;
  /** First delay after a crash, ms (doubles up to maxBackoffMs). */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
}

const STABLE_MS = 60_000;
const STOP_GRACE_MS = 30_000;

/** The pid in `pidFile` when that process is a live supervisor, else undefined. */
export function runningSupervisor(pidFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  try {
    // A recycled pid must not count: the process has to be one of ours, supervising.
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('supervise') ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function supervise(options: SuperviseOptions): Promise<void> {
  const { log } = options;
  const other = runningSupervisor(options.pidFile);
  if (other !== undefined && other !== process.pid) {
    throw new ConvoyError(
      'ALREADY_RUNNING',
      `a supervisor already runs as pid ${other} (${options.pidFile})`,
      {
        file: options.pidFile,
      },
    );
  }
  writeFileAtomic(options.pidFile, `${process.pid}\n`);
  const backoffMs = options.backoffMs ?? 1_000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  let child: ChildProcess | undefined;
  let stopping = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;

  return new Promise<void>((resolve) => {
    const finish = (): void => {
      rmSync(options.pidFile, { force: true });
      log.info('supervisor stopped');
      resolve();
    };
    const start = (): void => {
      timer = undefined;
      const startedAt = Date.now();
      child = spawn(process.execPath, [options.script, 'run', '--state-dir', options.stateDir], {
        stdio: 'inherit',
        env: { ...process.env, CONVOY_SUPERVISED: '1' },
      });
      log.info('agent started', { pid: child.pid ?? 0 });
      child.once('exit', (code, signal) => {
        child = undefined;
        if (stopping) return finish();
        if (Date.now() - startedAt >= STABLE_MS) failures = 0;
        if (code === RESTART_EXIT_CODE) {
          log.info('agent asked for a restart');
          failures = 0;
          return start();
        }
        const delay = Math.min(maxBackoffMs, backoffMs * 2 ** failures);
        failures += 1;
        log.warn('agent exited; restarting', { code: code ?? -1, signal: signal ?? '', delayMs: delay });
        timer = setTimeout(start, delay);
      });
    };
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal });
      if (timer !== undefined) clearTimeout(timer);
      if (child === undefined) return finish();
      child.kill('SIGTERM');
      const current = child;
      setTimeout(() => current.kill('SIGKILL'), STOP_GRACE_MS).unref();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    start();
  });
}
