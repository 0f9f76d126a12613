/**
 * Resetting a fake host between cases: the directories that hold its mutable state (package
 * roots, clones, binaries, the agent's state dir) are copied aside once and copied back before each
 * case, at the same absolute paths, which is much cheaper than building the host again.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

export class Snapshots {
  private readonly taken = new Set<string>();

  constructor(private readonly dirs: readonly string[]) {}

  take(label: string): void {
    for (const dir of this.dirs) {
      const copy = `${dir}.snap-${label}`;
      rmSync(copy, { recursive: true, force: true });
      // cp -a keeps modes, capabilities (xattrs), symlinks and timestamps.
      execFileSync('cp', ['-a', dir, copy]);
    }
    this.taken.add(label);
  }

  restore(label: string): void {
    if (!this.taken.has(label)) throw new Error(`no snapshot ${label}`);
    for (const dir of this.dirs) {
      rmSync(dir, { recursive: true, force: true });
      execFileSync('cp', ['-a', `${dir}.snap-${label}`, dir]);
    }
  }

  discard(): void {
    for (const label of this.taken)
      for (const dir of this.dirs) rmSync(`${dir}.snap-${label}`, { recursive: true, force: true });
    this.taken.clear();
  }
}
