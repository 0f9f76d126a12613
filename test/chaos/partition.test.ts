/**
 * Chaos: a silent network partition (iptables DROP inside the host's namespace, so the link stays
 * up and nothing is refused, only dropped) during each phase a BlueMind rollout runs on a host:
 * staging (download), upgrading, finalizing (/setup on the core host) and verifying.
 *
 * security.md promises: the agent finishes its step and reports on reconnect; the controller
 * starts nothing new while a host is unknown; after the heal the rollout completes; nothing runs
 * twice; no host is left in maintenance. One fleet serves the four cases, each rolling out the next
 * bm-core version. The phase under test is made long on purpose: a package with a payload behind a
 * 1 MB/s repository (staging), a 5 s postinst (upgrade), a proxy holding /setup or the health page
 * for 8 s (finalize, verify) in front of the core host's fake BlueMind.
 */
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { iptablesUnavailableReason } from '../../scripts/fixtures/netns';
import { skipReason } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait';
import {
  createNamespacedFleet,
  hostById,
  nsOf,
  publishBmCore,
  teardownNamespacedFleet,
  type NamespacedFleet,
} from './net-disk/namespaced-fleet';
import {
  agentJournal,
  dpkgUpgrades,
  hostStatus,
  isResting,
  phaseRuns,
  rolloutEvents,
  rolloutStatus,
  startRollout,
  waitForRollout,
} from '../helpers/rollout-probe';
import { startSlowProxy, type SlowProxy } from './net-disk/slow-proxy';

jest.setTimeout(300_000);

const unavailable = skipReason('partition chaos', ['ip', 'iptables'], iptablesUnavailableReason);
const describeDrop = unavailable === undefined ? describe : describe.skip;

/** How long the proxy holds the request the case cuts the host off in. */
const HOLD_MS = 8000;
const CORE = 0;

describeDrop('chaos › network partition (iptables DROP) during each phase', () => {
  let built: NamespacedFleet | undefined;
  let proxy: SlowProxy | undefined;
  let rolloutId: string | undefined;

  function need(): { built: NamespacedFleet; proxy: SlowProxy } {
    if (built === undefined || proxy === undefined)
      throw new Error('the fleet was not built (see beforeAll)');
    return { built, proxy };
  }

  beforeAll(async () => {
    built = await createNamespacedFleet({ bytesPerSecond: 1_000_000 });
    const { netns, fleet } = built;
    const core = fleet.hosts[CORE];
    if (core?.role !== 'core') throw new Error('host 0 should be the core host');
    proxy = await startSlowProxy(
      (cmd, args) => netns.spawnIn(nsOf(netns, CORE), cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }),
      core.bluemind.url,
      {
        delayFile: path.join(fleet.root, 'proxy-delays.json'),
        logFile: path.join(fleet.root, 'proxy-log.jsonl'),
      },
    );
    // The core host's /setup and health page go through the proxy; staging one host at a time
    // makes "nothing new starts while a host is unknown" observable during staging too.
    let yaml = fleet.fleetYaml({ staging: '{ cron: "0 2 * * *", timezone: Europe/Paris, concurrency: 1 }' });
    for (const p of ['/setup', '/']) {
      const before = `"${core.bluemind.url}${p}"`;
      if (!yaml.includes(before)) throw new Error(`fleet.yaml has no ${before}`);
      yaml = yaml.replace(before, `"${proxy.url}${p}"`);
    }
    await fleet.cliOk('apply', fleet.writeFleet(yaml));
  });

  afterEach(async () => {
    if (built === undefined) return;
    // A failed case must not leave the next one partitioned or blocked by its rollout.
    for (const [i] of built.netns.hosts.entries()) await built.netns.restoreTraffic(i).catch(() => undefined);
    proxy?.setDelays({});
    if (rolloutId !== undefined) {
      const doc = await rolloutStatus(built.fleet, rolloutId).catch(() => undefined);
      if (doc !== undefined && !isResting(doc))
        await built.fleet.cli('rollout', 'abort', rolloutId).catch(() => undefined);
    }
  });

  afterAll(async () => {
    await proxy?.stop();
    await teardownNamespacedFleet(built);
  });

  /** Every version offered from now on, one per case. */
  async function publishAll(
    version: string,
    slow: (index: number) => { applyMs?: number; payloadBytes?: number },
  ) {
    const { fleet } = need().built;
    for (const h of fleet.hosts) await publishBmCore(fleet, h, version, slow(h.index));
  }

  /** The end every case shares: succeeded, every host on `version`, none in maintenance, no resend. */
  async function expectCompleted(id: string, version: string): Promise<RolloutView> {
    const { fleet } = need().built;
    // A reconnect after a silent partition waits out TCP's SYN backoff and gRPC's keepalive.
    const done = await waitForRollout(fleet, id, 'the rollout to finish after the heal', isResting, 150_000);
    expect({ state: done.state, reason: done.reason }).toEqual({ state: 'succeeded', reason: '' });
    expect(done.hosts.map((h) => h.state)).toEqual(['verified', 'verified', 'verified']);
    expect(await Promise.all(fleet.hosts.map((h) => h.apt.installedVersion('bm-core')))).toEqual([
      version,
      version,
      version,
    ]);
    for (const h of fleet.hosts) {
      expect(dpkgUpgrades(h, version)).toBe(1);
      expect(h.bluemind.state().maintenance).toBe(false);
      expect((await hostStatus(fleet, h.hostId))?.app?.maintenance).toBe(false);
    }
    const kinds = (await rolloutEvents(fleet, id)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'rollout.host.resent' || k === 'rollout.finalize.resent')).toEqual([]);
    return done;
  }

  /** Waits until the controller shows the cut host unknown (or, for finalize, offline). */
  async function waitUnknown(id: string, hostId: string): Promise<RolloutView> {
    const { fleet } = need().built;
    return waitForRollout(
      fleet,
      id,
      `${hostId} shown unknown`,
      (d) => d.hosts.some((h) => h.hostId === hostId && h.unknown),
      30_000,
    );
  }

  /** Waits until the agent's own journal says `phase` of `runId` is in `state`. */
  async function waitJournal(
    hostIndex: number,
    runId: string,
    phase: string,
    state = 'succeeded',
  ): Promise<void> {
    const host = need().built.fleet.hosts[hostIndex];
    if (host === undefined) throw new Error(`no host ${hostIndex}`);
    await waitFor(
      `the agent's journal to show ${phase} of ${runId} ${state}`,
      () => {
        const j = agentJournal(host);
        return j?.runId === runId && j.phase === phase && j.state === state;
      },
      60_000,
      100,
    );
  }

  it('staging: the cut host finishes its download alone, no other host starts staging until the heal, one fetch of the package', async () => {
    const { netns, fleet } = need().built;
    await publishAll('4.1.3', (i) => (i === CORE ? { payloadBytes: 6_000_000 } : {}));
    const id = (rolloutId = await startRollout(fleet));
    const staging = await waitForRollout(fleet, id, 'the first host staging', (d) =>
      d.hosts.some((h) => h.state === 'staging'),
    );
    const cut = staging.hosts.find((h) => h.state === 'staging');
    // Staging takes hosts in their stable order, so host 0, the one with the heavy package, is first.
    expect(cut?.hostId).toBe(fleet.hosts[CORE]?.hostId);
    const cutId = cut?.hostId ?? '';
    // Cut only once the agent runs it: a command still on the wire would simply be sent again.
    await waitJournal(CORE, `${id}-s`, 'download', 'running');
    await netns.dropTraffic(CORE);
    const unknown = await waitUnknown(id, cutId);
    expect(unknown.hosts.filter((h) => h.hostId !== cutId).map((h) => h.state)).toEqual([
      'pending',
      'pending',
    ]);
    expect((await hostStatus(fleet, cutId))?.online).toBe(false);
    await waitJournal(CORE, `${id}-s`, 'download');
    const still = await rolloutStatus(fleet, id);
    expect(still.hosts.filter((h) => h.hostId !== cutId).map((h) => h.state)).toEqual(['pending', 'pending']);
    expect((await phaseRuns(fleet, id)).map((r) => [r.host_id, r.phase])).toEqual([[cutId, 'download']]);

    const healedAt = Date.now();
    await netns.restoreTraffic(CORE);
    await expectCompleted(id, '4.1.3');
    const runs = await phaseRuns(fleet, id);
    // Nothing new was started while the host was unknown: the others' staging came after the heal.
    for (const r of runs.filter((x) => x.host_id !== cutId))
      expect(r.started_at).toBeGreaterThanOrEqual(healedAt);
    expect(runs.filter((r) => r.host_id === cutId && r.phase === 'download')).toHaveLength(1);
    const core = hostById(fleet, cutId);
    expect(core.apt.repo.requests.filter((l) => l === 'GET /pool/bm-core_4.1.3_all.deb 200')).toHaveLength(1);
    const kinds = (await rolloutEvents(fleet, id, cutId)).map((e) => e.kind);
    expect(kinds).toContain('rollout.host.unknown');
    expect(kinds.filter((k) => k === 'rollout.host.staging')).toHaveLength(1);
  });

  it('upgrading: the cut canary finishes dpkg alone, batch 1 is not started while it is unknown, one unpack and one maintenance span', async () => {
    const { netns, fleet } = need().built;
    await publishAll('4.1.4', (i) => (i === CORE ? { applyMs: 5000 } : {}));
    const startedAt = Date.now();
    const id = (rolloutId = await startRollout(fleet));
    const upgrading = await waitForRollout(fleet, id, 'the canary upgrading', (d) =>
      d.hosts.some((h) => h.batch === 0 && h.state === 'upgrading'),
    );
    const canary = upgrading.hosts.find((h) => h.batch === 0);
    expect(canary?.hostId).toBe(fleet.hosts[CORE]?.hostId);
    const cutId = canary?.hostId ?? '';
    const host = hostById(fleet, cutId);
    await waitJournal(CORE, `${id}-u`, 'upgrade', 'running');
    await netns.dropTraffic(CORE);
    const unknown = await waitUnknown(id, cutId);
    expect(unknown.hosts.filter((h) => h.batch === 1).map((h) => h.state)).toEqual(['staged', 'staged']);
    expect((await hostStatus(fleet, cutId))?.online).toBe(false);
    await waitFor(
      'dpkg on the cut canary to reach 4.1.4',
      async () => (await host.apt.installedVersion('bm-core')) === '4.1.4',
      60_000,
      200,
    );
    await waitJournal(CORE, `${id}-u`, 'upgrade');
    const still = await rolloutStatus(fleet, id);
    expect(still.hosts.filter((h) => h.batch === 1).map((h) => h.state)).toEqual(['staged', 'staged']);

    const healedAt = Date.now();
    await netns.restoreTraffic(CORE);
    await expectCompleted(id, '4.1.4');
    const runs = await phaseRuns(fleet, id);
    for (const r of runs.filter((x) => x.host_id !== cutId && x.phase !== 'download'))
      expect(r.started_at).toBeGreaterThanOrEqual(healedAt);
    expect(runs.filter((r) => r.host_id === cutId && r.phase === 'upgrade')).toHaveLength(1);
    // One maintenance span since the start: dpkg ran bm-core's scripts once.
    expect(host.bluemind.state().maintenanceSpans.filter((m) => m.on >= startedAt)).toHaveLength(1);
    expect((await rolloutEvents(fleet, id, cutId)).map((e) => e.kind)).toContain('rollout.host.unknown');
  });

  it('finalizing: /setup on the cut core host completes once, no final verify starts until the heal', async () => {
    const { netns, fleet } = need().built;
    const p = need().proxy;
    await publishAll('4.1.5', () => ({}));
    const setupsBefore = fleet.setupCalls();
    p.setDelays({ 'POST /setup': HOLD_MS });
    const startedAt = Date.now();
    const id = (rolloutId = await startRollout(fleet));
    const core = fleet.hosts[CORE];
    await waitFor(
      '/setup held by the proxy on the core host',
      () =>
        p.entries().some((e) => e.key === 'POST /setup' && e.event === 'arrived' && e.at >= startedAt) &&
        fleet.setupCalls() === setupsBefore,
      120_000,
      100,
    );
    const arrivals = (): number =>
      p.entries().filter((e) => e.key === 'POST /setup' && e.event === 'arrived').length;
    const arrivedBefore = arrivals();
    await netns.dropTraffic(CORE);
    const cutAt = Date.now();
    await waitFor(
      'the core host offline',
      async () => (await hostStatus(fleet, core?.hostId ?? ''))?.online === false,
      30_000,
      200,
    );
    const during = await rolloutStatus(fleet, id);
    expect(during.state).toBe('finalizing');
    expect(during.hosts.map((h) => h.state)).toEqual(['upgraded', 'upgraded', 'upgraded']);
    await waitJournal(CORE, `${id}-f`, 'finalize');
    expect(fleet.setupCalls()).toBe(setupsBefore + 1);
    const still = await rolloutStatus(fleet, id);
    expect(still.state).toBe('finalizing');
    expect((await phaseRuns(fleet, id)).filter((r) => r.started_at >= cutAt)).toEqual([]);

    const healedAt = Date.now();
    await netns.restoreTraffic(CORE);
    await expectCompleted(id, '4.1.5');
    // /setup was called once: the controller took its outcome from the journal, not by calling again.
    expect(fleet.setupCalls()).toBe(setupsBefore + 1);
    expect(arrivals()).toBe(arrivedBefore);
    const finalVerifies = (await phaseRuns(fleet, id)).filter(
      (r) => r.phase === 'verify' && r.started_at >= cutAt,
    );
    expect(finalVerifies).toHaveLength(3);
    for (const r of finalVerifies) expect(r.started_at).toBeGreaterThanOrEqual(healedAt);
    expect((await phaseRuns(fleet, id)).filter((r) => r.phase === 'finalize')).toHaveLength(1);
  });

  it('verifying: the cut canary finishes its health check alone, batch 1 is not started while it is unknown', async () => {
    const { netns, fleet } = need().built;
    const p = need().proxy;
    await publishAll('4.1.6', () => ({}));
    p.setDelays({ 'GET /': HOLD_MS });
    const startedAt = Date.now();
    const id = (rolloutId = await startRollout(fleet));
    const verifying = await waitForRollout(
      fleet,
      id,
      'the canary verifying',
      (d) => d.hosts.some((h) => h.batch === 0 && h.state === 'verifying'),
      120_000,
    );
    const cutId = verifying.hosts.find((h) => h.batch === 0)?.hostId ?? '';
    expect(cutId).toBe(fleet.hosts[CORE]?.hostId);
    await waitFor(
      'the canary health check held by the proxy',
      () => p.entries().some((e) => e.key === 'GET /' && e.event === 'arrived' && e.at >= startedAt),
      30_000,
      100,
    );
    await netns.dropTraffic(CORE);
    const unknown = await waitUnknown(id, cutId);
    expect(unknown.hosts.filter((h) => h.batch === 1).map((h) => h.state)).toEqual(['staged', 'staged']);
    await waitJournal(CORE, `${id}-u`, 'verify');
    const still = await rolloutStatus(fleet, id);
    expect(still.hosts.filter((h) => h.batch === 1).map((h) => h.state)).toEqual(['staged', 'staged']);

    const healedAt = Date.now();
    // The final verify goes through the proxy too: no need to hold it.
    p.setDelays({});
    await netns.restoreTraffic(CORE);
    await expectCompleted(id, '4.1.6');
    const runs = await phaseRuns(fleet, id);
    for (const r of runs.filter((x) => x.host_id !== cutId && x.phase !== 'download'))
      expect(r.started_at).toBeGreaterThanOrEqual(healedAt);
    // One verify after the upgrade and one final verify: the cut one was not sent again.
    expect(runs.filter((r) => r.host_id === cutId && r.phase === 'verify')).toHaveLength(2);
    expect((await rolloutEvents(fleet, id, cutId)).map((e) => e.kind)).toContain('rollout.host.unknown');
  });
});
