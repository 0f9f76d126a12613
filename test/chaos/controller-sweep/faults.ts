/**
 * Broken releases of bm-core, as a vendor could ship them: the package's postinst (which runs on
 * the real filesystem, like every maintainer script here) damages what the fault names after
 * doing what a healthy bm-core does (bluemind-packages.ts). The fake BlueMind's health file sits
 * in the configuration directory the recipe backs up (bluemind-fleet.ts `healthFile`), so a
 * restore brings the healthy answer back, as restoring a real overwritten vhost would.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { FleetHost } from '../../../scripts/fixtures/bluemind-fleet';
import { bmCoreScripts } from '../../../scripts/fixtures/bluemind-packages';

export type Fault =
  /** The new release's health page answers 500. */
  | 'health-500'
  /** The new release's health page never answers. */
  | 'health-hang'
  /** Healthy until /setup runs its migration, then 500 (only the finalize host runs it). */
  | 'breaks-on-setup'
  /** The upgrade damages the backup the recipe just took: the restore refuses it. */
  | 'corrupt-backup'
  /** The package is listed in the repository but cannot be downloaded: staging fails. */
  | 'unfetchable';

export interface HostPaths {
  readonly maintenanceFlag: string;
  readonly healthFile: string;
  readonly backupDir: string;
}

export function hostPaths(fleetRoot: string, h: FleetHost): HostPaths {
  const dir = path.join(fleetRoot, h.name);
  return {
    maintenanceFlag: path.join(dir, 'maintenance.flag'),
    healthFile: path.join(dir, 'etc-nginx', 'health'),
    backupDir: path.join(dir, 'backups'),
  };
}

/** Publishes bm-core `version` on one host with these faults. */
export async function publishWithFaults(
  h: FleetHost,
  paths: HostPaths,
  version: string,
  faults: readonly Fault[],
  applyMs = 300,
): Promise<void> {
  const scripts = bmCoreScripts(paths.maintenanceFlag, applyMs);
  const damage = faults.flatMap((f) => postinstLines(f, paths));
  // The damage comes before the line that ends maintenance, inside `configure)`.
  const postinst = scripts.postinst.replace('  configure) ', `  configure) ${damage.join(' ')} `);
  await h.apt.publish('bm-core', version, { preinst: scripts.preinst, postinst });
  if (faults.includes('unfetchable')) {
    // Still in the index (apt plans it), gone from the pool (the download gets 404).
    rmSync(path.join(path.dirname(h.apt.root), 'repo', 'pool', `bm-core_${version}_all.deb`));
  }
}

function postinstLines(fault: Fault, paths: HostPaths): string[] {
  const health = shq(paths.healthFile);
  switch (fault) {
    case 'health-500':
      return [`echo 500 > ${health};`];
    case 'health-hang':
      return [`echo hang > ${health};`];
    case 'breaks-on-setup':
      return [`echo break-on-setup > ${health};`];
    case 'corrupt-backup':
      return [`for f in ${shq(paths.backupDir)}/*/files.tar; do [ -f "$f" ] && echo damaged >> "$f"; done;`];
    case 'unfetchable':
      return [];
  }
}

function shq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
