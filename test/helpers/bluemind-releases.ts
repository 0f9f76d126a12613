/**
 * New bm-core releases on a BlueMind fleet's hosts (scripts/fixtures/bluemind-fleet.ts): each host
 * has its own package repository, and its bm-core maintainer scripts put the host's fake service in
 * maintenance through a flag file in the host's directory.
 */
import path from 'node:path';
import type { BlueMindFleet, FleetHost } from '../../scripts/fixtures/bluemind-fleet';
import { bmCorePublishOptions } from '../../scripts/fixtures/bluemind-packages';

/** The flag bm-core's preinst raises and its postinst lowers: the host's service in maintenance. */
function maintenanceFlag(fleet: BlueMindFleet, host: FleetHost): string {
  return path.join(fleet.root, host.name, 'maintenance.flag');
}

/**
 * Publishes a working bm-core `version` in the host's repository: its postinst "applies" for
 * `applyMs` (default 300 ms), and a payload makes it heavy to download.
 */
export function publishBmCore(
  fleet: BlueMindFleet,
  host: FleetHost,
  version: string,
  opts: { applyMs?: number; payloadBytes?: number } = {},
): Promise<void> {
  return host.apt.publish(
    'bm-core',
    version,
    bmCorePublishOptions(maintenanceFlag(fleet, host), opts.applyMs ?? 300, opts.payloadBytes ?? 0),
  );
}

/**
 * A bm-core `version` whose preinst puts the service in maintenance and then fails: dpkg undoes the
 * unpack (the old postinst's abort-upgrade takes maintenance off) and the old version stays.
 */
export function publishFailingBmCore(fleet: BlueMindFleet, host: FleetHost, version: string): Promise<void> {
  const flag = maintenanceFlag(fleet, host);
  return host.apt.publish('bm-core', version, {
    ...bmCorePublishOptions(flag, 300),
    preinst: `: > '${flag.replace(/'/g, `'\\''`)}'\necho 'bm-core: pre-upgrade check failed' >&2\nexit 1\n`,
  });
}
