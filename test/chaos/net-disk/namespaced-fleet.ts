/**
 * The BlueMind fleet of test/e2e/rollout-netns.test.ts (three hosts and the controller, each in its
 * own network namespace), tuned for partitions: agents retry a lost controller every 2 s at most
 * (the 30 s default would dominate every heal), and each host's package repository is
 * bandwidth-limited so that a package with a payload takes seconds to stage.
 */
import type { SpawnOptions } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BlueMindFleet, type FleetHost, type Spawner } from '../../../scripts/fixtures/bluemind-fleet';
import { createNetns, uniqueNetnsPrefix, type Netns, type NetnsHost } from '../../../scripts/fixtures/netns';

export { publishBmCore } from '../../helpers/bluemind-releases';

/** The demo's clock: staging at 02:00 and the 03:00 window come within seconds. */
const WARPED_CLOCK = ['--clock-start', '2026-12-01T01:59:00+01:00', '--clock-warp'];
const RECONNECT_MAX_MS = 2000;

export interface NamespacedFleet {
  readonly netns: Netns;
  readonly fleet: BlueMindFleet;
}

export function spawnerIn(netns: Netns, ns: NetnsHost): Spawner {
  return (cmd: string, args: string[], opts: SpawnOptions) => netns.spawnIn(ns, cmd, args, opts);
}

export function nsOf(netns: Netns, index: number): NetnsHost {
  const ns = netns.hosts[index];
  if (ns === undefined) throw new Error(`no namespace for host ${index}`);
  return ns;
}

export async function createNamespacedFleet(opts: { bytesPerSecond: number }): Promise<NamespacedFleet> {
  const netns = await createNetns(uniqueNetnsPrefix(), 3);
  try {
    const fleet = await BlueMindFleet.create({
      hosts: 3,
      bytesPerSecond: opts.bytesPerSecond,
      listen: `${netns.ctl.address}:0`,
      spawnController: spawnerIn(netns, netns.ctl),
      spawnOnHost: (i) => spawnerIn(netns, nsOf(netns, i)),
      controllerArgs: WARPED_CLOCK,
    });
    for (const host of fleet.hosts) {
      const file = path.join(host.agentDir, 'agent.yaml');
      const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...config, reconnectMaxMs: RECONNECT_MAX_MS }), { mode: 0o600 });
      await fleet.killAgent(host);
      fleet.startAgent(host);
    }
    await fleet.waitOnline(3, 60_000);
    return { netns, fleet };
  } catch (err) {
    await netns.destroy();
    throw err;
  }
}

export function hostById(fleet: BlueMindFleet, hostId: string): FleetHost {
  const host = fleet.hosts.find((h) => h.hostId === hostId);
  if (host === undefined) throw new Error(`${hostId} is not a fleet host`);
  return host;
}

export async function teardownNamespacedFleet(built: NamespacedFleet | undefined): Promise<void> {
  await built?.fleet.stop();
  await built?.netns.destroy();
}
