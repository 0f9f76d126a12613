/**
 * Disk space for the steps that stage downloads (apt, artifact): a preflight against the free
 * space of the target's file system, and one way to tell a full disk from other write errors.
 */
import { statfs } from 'node:fs/promises';
import { StepFailure } from './outcome';

/** DISK_FULL before any byte is written when `needBytes` does not fit in `dir`'s free space. */
export async function preflightFreeSpace(dir: string, needBytes: number, what: string): Promise<void> {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (needBytes <= free) return;
  throw new StepFailure(
    'DISK_FULL',
    `not enough free space in ${dir} to stage ${what}: ${showBytes(needBytes)} to download, ` +
      `${showBytes(free)} free; nothing was downloaded`,
  );
}

/** A write refused because the file system (ENOSPC) or the user's quota (EDQUOT) is full. */
export function isDiskFullError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function showBytes(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}
