/**
 * A small tmpfs mounted over a directory (an apt archive cache, an artifact staging directory), to fill a disk on purpose.
 * Every mount is remembered and `unmountAll` (afterAll) removes them even when a case failed;
 * a lazy unmount still succeeds while an agent holds a file open in it.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { assertTools } from '../../scripts/fixtures/tools';

const run = promisify(execFile);
const mounted = new Set<string>();

/** Mounts a tmpfs of `size` (mount(8) syntax: `1m`) at `dir`, hiding what was there. */
export async function mountSmallTmpfs(dir: string, size: string): Promise<void> {
  assertTools('mount');
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'convoy-chaos-tmpfs', dir]);
  mounted.add(dir);
}

export async function unmountAll(): Promise<void> {
  for (const dir of [...mounted]) {
    await run('umount', ['-l', dir]).catch(() => undefined);
    mounted.delete(dir);
  }
}

/** Every regular file below `dir`, relative, with its size: what a failed download left behind. */
export function filesBelow(dir: string): { file: string; bytes: number }[] {
  if (!existsSync(dir)) return [];
  const out: { file: string; bytes: number }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isFile()) out.push({ file: path.relative(dir, full), bytes: statSync(full).size });
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}
