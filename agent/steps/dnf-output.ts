/**
 * Parsers of dnf's human output (transaction tables, `list updates`), for the dnf step. Rows
 * whose name filled its column continue on the next line.
 */
import type { RpmPackage } from './dnf-query';

/**
 * `NAME.ARCH  VERSION  REPO` rows under "Available Upgrades" (dnf 4) or "Updated Packages" (yum 3).
 * A name too long for its column pushes the rest of the row onto the next, indented line.
 */
export function parseListUpdates(stdout: string): RpmPackage[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) =>
    /^(Available Upgrades|Updated Packages|Upgraded Packages)\s*$/.test(l),
  );
  if (start < 0) return [];
  const rows = joinWrapped(lines.slice(start + 1));
  const packages: RpmPackage[] = [];
  for (const row of rows) {
    const m = /^(\S+)\.([^.\s]+)\s+(\S+)\s+\S+$/.exec(row.trim());
    if (!m) break;
    packages.push({ name: m[1] ?? '', arch: m[2] ?? '', version: m[3] ?? '' });
  }
  return packages;
}

/** The "Upgrading:" rows of the transaction table: `NAME ARCH VERSION REPO SIZE`. */
export function parseTransaction(output: string): RpmPackage[] {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => /^Upgrading:\s*$/.test(l));
  if (start < 0) return [];
  const packages: RpmPackage[] = [];
  for (const row of joinWrapped(lines.slice(start + 1))) {
    const m = /^\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s+[\d.]+\s*[kMG]?$/.exec(row);
    if (!m) break;
    packages.push({ name: m[1] ?? '', arch: m[2] ?? '', version: m[3] ?? '' });
  }
  return packages;
}

/** The NEVRAs listed under "Upgraded:" once the transaction is done. */
export function parseUpgraded(output: string): RpmPackage[] {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => /^Upgraded:\s*$/.test(l));
  if (start < 0) return [];
  const packages: RpmPackage[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!/^\s+\S/.test(line)) break;
    for (const nevra of line.trim().split(/\s+/)) {
      const m = /^(.+)-([^-]+-[^-]+)\.([^.]+)$/.exec(nevra);
      if (m) packages.push({ name: m[1] ?? '', arch: m[3] ?? '', version: m[2] ?? '' });
    }
  }
  return packages;
}

/** A row whose name filled its column continues on the next line: join them. */
function joinWrapped(lines: readonly string[]): string[] {
  const rows: string[] = [];
  for (const line of lines) {
    const previous = rows[rows.length - 1];
    if (previous !== undefined && /^\s*\S+$/.test(previous) && /^\s+\S/.test(line)) {
      rows[rows.length - 1] = `${previous} ${line.trim()}`;
    } else {
      rows.push(line);
    }
  }
  return rows;
}
