/**
 * What a test run may not leave behind, and how to find it: processes that carry a marker in
 * their environment (inherited by every child, grandchild and daemon they start), files under a
 * temporary directory, and handles that keep Node's event loop alive.
 *
 * A run has one temporary root (`convoy-test-*`, made by global-setup.ts), exported as TMPDIR and
 * as CONVOY_TEST_RUN; each test file gets a directory of its own under it, exported as TMPDIR and
 * named in CONVOY_TEST_SUITE while it runs (leak-check-environment.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** The run's temporary root; every process the run starts inherits it. */
export const RUN_MARKER = 'CONVOY_TEST_RUN';
/** The running test file's id (its directory's name under the run root). */
export const SUITE_MARKER = 'CONVOY_TEST_SUITE';
/** The prefix of a run root's name under the machine's temporary directory. */
export const RUN_ROOT_PREFIX = 'convoy-test-';

export interface MarkedProcess {
  readonly pid: number;
  readonly command: string;
}

/**
 * Live processes whose environment holds `name=value`, except `exclude`. A process that changed
 * its own environment after it started is still found: /proc shows the one it was started with.
 */
export function markedProcesses(name: string, value: string, exclude: ReadonlySet<number>): MarkedProcess[] {
  const wanted = `${name}=${value}`;
  const found: MarkedProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (exclude.has(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(wanted)) continue;
      // A zombie has exited already; it only waits for its parent to reap it.
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'))) continue;
      const command = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
      found.push({ pid, command: command.length > 200 ? `${command.slice(0, 200)}...` : command });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

export function killAll(processes: readonly MarkedProcess[]): void {
  for (const { pid } of processes) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** The entries under `dir`, two levels deep, as `name` or `name/child` (directories end with /). */
export function leftoverFiles(dir: string, limit = 12): string[] {
  const out: string[] = [];
  const list = (rel: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(path.join(dir, rel)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (out.length >= limit) return;
      const child = path.join(rel, name);
      let isDir = false;
      try {
        isDir = statSync(path.join(dir, child)).isDirectory();
      } catch {
        // Removed meanwhile, or a dangling link.
      }
      out.push(isDir ? `${child}/` : child);
      if (isDir && depth < 1) list(child, depth + 1);
    }
  };
  list('', 0);
  return out;
}

/** `- line` per item, indented under a heading. */
export function bulletList(items: readonly string[]): string {
  return items.map((i) => `  - ${i}`).join('\n');
}
