/**
 * One controller per state directory: a pid file taken with O_EXCL. A lock left by a process
 * that no longer exists (kill -9) is taken over; a live one is refused with its pid.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { ConvoyError } from '../shared/errors';

export interface StateLock {
  release(): Promise<void>;
}

export async function acquireStateLock(stateDir: string): Promise<StateLock> {
  const file = path.join(stateDir, 'controller.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return { release: () => fs.rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new ConvoyError(
          'STATE_DIR_INVALID',
          `${stateDir}: another controller (pid ${holder}) is running`,
          { file },
        );
      }
      await fs.rm(file, { force: true });
    }
  }
  throw new ConvoyError('STATE_DIR_INVALID', `${stateDir}: could not take ${file}`, { file });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
