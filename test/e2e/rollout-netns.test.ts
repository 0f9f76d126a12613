/**
 * A BlueMind rollout on hosts that are network namespaces (fixtures.md §6): the controller runs
 * in `${P}ctl` listening on 10.200.0.1, and each host's agent, package repository server and fake
 * BlueMind run inside that host's namespace, on its own 127.0.0.1 and 10.200.0.(10+i). The CLI
 * runs here and talks to the controller through the unix socket in its state directory.
 *
 * Nothing in the root namespace ever dials a namespace address: the test reads what it checks
 * from files (dpkg databases, the fake BlueMind's state file), the CLI, and `ss` run inside ctl.
 */
import type { SpawnOptions } from 'node:child_process';
import { BlueMindFleet, type Spawner } from '../../scripts/fixtures/bluemind-fleet';
import {
  createNetns,
  netnsUnavailableReason,
  uniqueNetnsPrefix,
  type Netns,
  type NetnsHost,
} from '../../scripts/fixtures/netns';
import {
  hostStatus,
  isResting,
  rolloutEvents,
  rolloutStatus,
  startRollout,
  waitForRollout,
} from '../helpers/rollout-probe';
import { skipReason } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const unavailable = skipReason('rollout on network namespaces', ['ip', 'ss'], netnsUnavailableReason);
const describeNetns = unavailable === undefined ? describe : describe.skip;

/** The demo's clock: staging at 02:00 and the 03:00 window come within seconds. */
const WARPED_CLOCK = ['--clock-start', '2026-12-01T01:59:00+01:00', '--clock-warp'];

function spawnerIn(netns: Netns, ns: NetnsHost): Spawner {
  return (cmd: string, args: string[], opts: SpawnOptions) => netns.spawnIn(ns, cmd, args, opts);
}

function hostAt(netns: Netns, index: number): NetnsHost {
  const host = netns.hosts[index];
  if (host === undefined) throw new Error(`no namespace for host ${index}`);
  return host;
}

interface NamespacedFleet {
  readonly netns: Netns;
  readonly fleet: BlueMindFleet;
}

/** Three namespaced hosts and a namespaced controller; the fleet file is not applied yet. */
async function createNamespacedFleet(applyMs?: number): Promise<NamespacedFleet> {
  const netns = await createNetns(uniqueNetnsPrefix(), 3);
  try {
    const fleet = await BlueMindFleet.create({
      hosts: 3,
      ...(applyMs === undefined ? {} : { applyMs }),
      listen: `${netns.ctl.address}:0`,
      spawnController: spawnerIn(netns, netns.ctl),
      spawnOnHost: (i) => spawnerIn(netns, hostAt(netns, i)),
      controllerArgs: WARPED_CLOCK,
    });
    return { netns, fleet };
  } catch (err) {
    await netns.destroy();
    throw err;
  }
}

/** Stops the processes the fleet started, then whatever is left in the namespaces, and deletes them. */
async function teardown(built: NamespacedFleet | undefined): Promise<void> {
  await built?.fleet.stop();
  await built?.netns.destroy();
}

function need(built: NamespacedFleet | undefined): NamespacedFleet {
  if (built === undefined) throw new Error('the namespaced fleet was not built (see beforeAll)');
  return built;
}

async function hostOnline(fleet: BlueMindFleet, hostId: string): Promise<boolean | undefined> {
  return (await hostStatus(fleet, hostId))?.online;
}

/**
 * Runs a short command inside ctl with no stdin: netns.execIn writes to the child's stdin, and a
 * command that exits first (ss does) makes that write fail with EPIPE, an unhandled stream error.
 */
function runInCtl(
  netns: Netns,
  cmd: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = netns.spawnIn(netns.ctl, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Remote addresses (each once) of TCP connections established to the controller's agent port, seen inside ctl. */
async function agentPeers(netns: Netns, controllerAddress: string): Promise<string[]> {
  const port = controllerAddress.split(':').pop() ?? '';
  const r = await runInCtl(netns, 'ss', ['-Htn', 'state', 'established', `( sport = :${port} )`]);
  if (r.code !== 0) throw new Error(`ss inside ctl exited ${r.code}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 4)
    .map((cols) => (cols[cols.length - 1] ?? '').replace(/:\d+$/, ''))
    .filter((peer, i, all) => all.indexOf(peer) === i)
    .sort();
}

async function installedVersions(fleet: BlueMindFleet): Promise<(string | undefined)[]> {
  return Promise.all(fleet.hosts.map((h) => h.apt.installedVersion('bm-core')));
}

describeNetns('rollout on hosts in network namespaces', () => {
  describe('a full BlueMind rollout on three namespaced hosts', () => {
    let built: NamespacedFleet | undefined;

    beforeAll(async () => {
      built = await createNamespacedFleet();
    });
    afterAll(() => teardown(built));

    it('succeeds with /setup called once and bm-core 4.1.2 on every host, agents dialing from their own addresses', async () => {
      const { netns, fleet } = need(built);
      expect(fleet.address).toMatch(/^10\.200\.0\.1:\d+$/);
      expect(await agentPeers(netns, fleet.address)).toEqual(netns.hosts.map((h) => h.address).sort());
      expect(await installedVersions(fleet)).toEqual(['4.1.0', '4.1.0', '4.1.0']);

      await fleet.cliOk('apply', fleet.writeFleet(fleet.fleetYaml()));
      const id = await startRollout(fleet);
      const doc = await waitForRollout(fleet, id, 'the rollout to finish', isResting);

      expect({ state: doc.state, reason: doc.reason }).toEqual({ state: 'succeeded', reason: '' });
      expect(doc.hosts.map((h) => h.state)).toEqual(['verified', 'verified', 'verified']);
      expect(fleet.setupCalls()).toBe(1);
      expect(fleet.hosts[0]?.bluemind.state().setupCalls).toHaveLength(1);
      expect(await installedVersions(fleet)).toEqual(['4.1.2', '4.1.2', '4.1.2']);
      // Each host fetched its packages from its own repository, inside its namespace.
      for (const h of fleet.hosts)
        expect(h.apt.repo.requests).toContain('GET /pool/bm-core_4.1.2_all.deb 200');
      expect(await agentPeers(netns, fleet.address)).toEqual(netns.hosts.map((h) => h.address).sort());
    });
  });

  describe('a non-canary host partitioned during a manual pause between batches', () => {
    let built: NamespacedFleet | undefined;

    beforeAll(async () => {
      built = await createNamespacedFleet();
    });
    afterAll(() => teardown(built));

    it('is marked offline, gets nothing started until healed, then the rollout completes', async () => {
      const { netns, fleet } = need(built);
      const batches = '{ canary: 1, concurrency: 2, errorThreshold: 0, pause: manual }';
      await fleet.cliOk('apply', fleet.writeFleet(fleet.fleetYaml({ batches })));
      const id = await startRollout(fleet);
      const paused = await waitForRollout(fleet, id, 'the manual pause before batch 1', (d) => d.paused);
      const canary = paused.hosts.filter((h) => h.batch === 0);
      expect(canary.map((h) => h.state)).toEqual(['upgraded']);
      const [other, cut] = paused.hosts.filter((h) => h.batch === 1);
      if (other === undefined || cut === undefined) throw new Error(`batch 1 should hold two hosts`);
      const cutIndex = fleet.hosts.findIndex((h) => h.hostId === cut.hostId);
      const cutHost = fleet.hosts[cutIndex];
      if (cutHost === undefined) throw new Error(`${cut.hostId} is not a fleet host`);

      await netns.partition(cutIndex);
      await waitFor(
        'the controller to see the partitioned host offline',
        async () => (await hostOnline(fleet, cut.hostId)) === false,
        20_000,
        200,
      );
      await fleet.cliOk('rollout', 'resume', id);

      // The reachable host of the batch goes all the way; the partitioned one is not started.
      const waiting = await waitForRollout(
        fleet,
        id,
        'the reachable batch-1 host upgraded, the rollout waiting for the partitioned one',
        (d) =>
          d.hosts.some((h) => h.hostId === other.hostId && h.state === 'upgraded') &&
          d.reason.includes(cut.hostId),
      );
      expect(waiting).toMatchObject({ state: 'upgrading', paused: false });
      expect(waiting.reason).toMatch(/offline/);
      expect(waiting.hosts.find((h) => h.hostId === cut.hostId)).toMatchObject({
        state: 'staged',
        phase: null,
        unknown: false,
      });
      expect(await hostOnline(fleet, cut.hostId)).toBe(false);
      const cutEvents = async (): Promise<string[]> =>
        (await rolloutEvents(fleet, id, cut.hostId))
          .map((e) => e.kind)
          .filter((k) => k.startsWith('rollout.host.'));
      expect(await cutEvents()).toEqual(['rollout.host.staging', 'rollout.host.staging.ok']);
      expect(await cutHost.apt.installedVersion('bm-core')).toBe('4.1.0');
      expect(cutHost.bluemind.state().maintenanceSpans).toEqual([]);

      const healedAt = Date.now();
      await netns.heal(cutIndex);
      const done = await waitForRollout(fleet, id, 'the rollout to finish after heal', isResting);
      expect({ state: done.state, reason: done.reason }).toEqual({ state: 'succeeded', reason: '' });
      expect(done.hosts.map((h) => h.state)).toEqual(['verified', 'verified', 'verified']);
      // Its upgrade began after the heal, so its downtime is the upgrade's, not the partition's.
      expect(done.hosts.find((h) => h.hostId === cut.hostId)?.startedAt).toBeGreaterThanOrEqual(healedAt);
      expect(await cutEvents()).toEqual(
        expect.arrayContaining(['rollout.host.upgrading', 'rollout.host.final-verifying.ok']),
      );
      expect(fleet.setupCalls()).toBe(1);
      expect(await installedVersions(fleet)).toEqual(['4.1.2', '4.1.2', '4.1.2']);
      expect(await agentPeers(netns, fleet.address)).toEqual(netns.hosts.map((h) => h.address).sort());
    });
  });

  describe('the canary partitioned in the middle of its upgrade', () => {
    let built: NamespacedFleet | undefined;

    beforeAll(async () => {
      // bm-core's postinst "applies" for 4 s: long enough to cut the host off while dpkg runs.
      built = await createNamespacedFleet(4_000);
    });
    afterAll(() => teardown(built));

    it('finishes its upgrade cut off, is unknown meanwhile with no new batch started, and reports on reconnect', async () => {
      const { netns, fleet } = need(built);
      await fleet.cliOk('apply', fleet.writeFleet(fleet.fleetYaml()));
      const id = await startRollout(fleet);
      const upgrading = await waitForRollout(fleet, id, 'the canary upgrading', (d) =>
        d.hosts.some((h) => h.batch === 0 && h.state === 'upgrading'),
      );
      const canary = upgrading.hosts.find((h) => h.batch === 0);
      const canaryIndex = fleet.hosts.findIndex((h) => h.hostId === canary?.hostId);
      const canaryHost = fleet.hosts[canaryIndex];
      if (canary === undefined || canaryHost === undefined) throw new Error('no canary');

      await netns.partition(canaryIndex);
      const unknown = await waitForRollout(fleet, id, 'the canary shown unknown', (d) =>
        d.hosts.some((h) => h.hostId === canary.hostId && h.unknown),
      );
      // Nothing else starts while the canary's state is unknown.
      expect(unknown.hosts.filter((h) => h.batch === 1).map((h) => h.state)).toEqual(['staged', 'staged']);
      // Cut off, the agent still finishes the upgrade it was in (dpkg's database says so).
      await waitFor(
        'the partitioned canary to finish applying bm-core',
        async () => (await canaryHost.apt.installedVersion('bm-core')) === '4.1.2',
        30_000,
        200,
      );
      const still = await rolloutStatus(fleet, id);
      expect(still.hosts.filter((h) => h.batch === 1).map((h) => h.state)).toEqual(['staged', 'staged']);

      await netns.heal(canaryIndex);
      const done = await waitForRollout(
        fleet,
        id,
        'the rollout to finish after the canary reconnects',
        isResting,
        90_000,
      );
      expect({ state: done.state, reason: done.reason }).toEqual({ state: 'succeeded', reason: '' });
      expect(done.hosts.map((h) => h.state)).toEqual(['verified', 'verified', 'verified']);
      // The upgrade ran once: one maintenance span on the canary, and the controller took its
      // outcome from the agent's journal instead of sending it again.
      expect(canaryHost.bluemind.state().maintenanceSpans).toHaveLength(1);
      const canaryEvents = (await rolloutEvents(fleet, id, canary.hostId)).map((e) => e.kind);
      expect(canaryEvents.filter((k) => k === 'rollout.host.upgrading')).toHaveLength(1);
      expect(canaryEvents).toContain('rollout.host.unknown');
      expect(canaryEvents).not.toContain('rollout.host.resent');
      expect(fleet.setupCalls()).toBe(1);
      expect(await installedVersions(fleet)).toEqual(['4.1.2', '4.1.2', '4.1.2']);
    });
  });
});
