/**
 * The machine's own packaging state, which tests acting on fake hosts must never touch: take it
 * before a suite and compare after (`expect(hostState(paths)).toBe(before)`).
 */
import { lstatSync } from 'node:fs';

/** Where the machine's own apt and aptitude keep state (fixtures.md §1). */
export const MACHINE_APT_PATHS = [
  '/var/lib/dpkg/status',
  '/var/log/dpkg.log',
  '/var/lib/aptitude/pkgstates',
  '/var/log/aptitude',
] as const;

/** Where a bare rpm or dnf would write on this machine (fixtures.md §2). */
export const MACHINE_RPM_PATHS = [
  '/root/.rpmdb',
  '/var/log/hawkey.log',
  '/var/log/dnf.log',
  '/var/cache/dnf',
  '/var/lib/dnf',
] as const;

/**
 * Each path with its modification time, or 'absent'. A link counts as itself, not followed: a
 * link whose target exists only inside a fake root is still there.
 */
export function hostState(paths: readonly string[]): string {
  return JSON.stringify(paths.map((p) => [p, lstatSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 'absent']));
}
