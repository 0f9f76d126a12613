/**
 * BlueMind rollouts late in the night window, and what operators and failures do to them, end to
 * end (scripts/fixtures/bluemind-fleet.ts): a controller process, an agent process per host, real
 * apt roots and package repositories, a fake BlueMind per host. The scheduler clock starts at 04:50
 * Paris and does not warp: the night window (03:00-05:00, cutoff 15m) has only 10 minutes left,
 * and an "open" window (04:00-06:00) lets hosts start at once.
 *
 * One fleet of three hosts, shared by the tests in order: each leaves no unfinished rollout (an
 * afterEach aborts what is left and republishes what a test broke); later tests publish newer
 * versions.
 */
import type { RolloutView } from '../../controller/rollout/view';
import { BlueMindFleet, type FleetHost } from '../../scripts/fixtures/bluemind-fleet';
import { publishBmCore, publishFailingBmCore } from '../helpers/bluemind-releases';
import {
  eventId,
  hostEventKinds,
  hostStatuses,
  installedBmCore,
  isResting,
  letEngineTick,
  rolloutEvents,
  rolloutHost,
  rolloutStatus,
  startRollout,
  storedRollout,
  waitForReasonRewrites,
  waitForStoredRollout,
} from '../helpers/rollout-probe';
import { queryStore } from '../helpers/store-query';

jest.setTimeout(120_000);

/** Open from 04:00 to 06:00 Paris: the fleet's hosts may start at once. */
const OPEN_WINDOW = '{ cron: "0 4 * * *", duration: 2h, timezone: Europe/Paris }';
const STAGE_AT_ONCE = '{ concurrency: 10 }';
const APPLY_MS = 300;
/** A canary this slow is still upgrading when a pause or an abort lands. */
const SLOW_APPLY_MS = 3000;

let fleet: BlueMindFleet;

beforeAll(async () => {
  fleet = await BlueMindFleet.create({
    hosts: 3,
    applyMs: APPLY_MS,
    // A generous heartbeat timeout: a loaded machine must not turn hosts offline mid-test.
    controllerArgs: ['--clock-start', '2026-12-01T04:50:00+01:00', '--heartbeat-timeout', '10s'],
  });
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
});

describe('rollout › late in the window on three BlueMind hosts, scheduler clock from 04:50 Paris, not warped', () => {
  /** Undone after each test, pass or fail: broken packages republished whole. */
  const repairs: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const r of await fleet.cliJson<RolloutView[]>('rollout', 'list', '--unfinished')) {
      if (r.state !== 'aborting') await fleet.cliOk('rollout', 'abort', r.id);
      await waitForStoredRollout(fleet, r.id, 'aborted', (x) => x.state === 'aborted');
    }
    for (const repair of repairs.splice(0)) await repair();
  });

  async function applyFleet(opts: { window?: string; batches?: string } = {}): Promise<void> {
    await fleet.cliOk('apply', fleet.writeFleet(fleet.fleetYaml({ staging: STAGE_AT_ONCE, ...opts })));
  }

  it('stages at once, but starts no host when less than the cutoff remains in the window', async () => {
    await applyFleet();
    const id = await startRollout(fleet);
    const staged = await waitForStoredRollout(
      fleet,
      id,
      'staged and waiting for the window',
      (r) => r.state === 'staged' && r.reason.includes('window'),
    );
    // Right after staging, before any upgrade could run: every cache holds the new package.
    for (const h of fleet.hosts) {
      expect(h.apt.cachedDebs()).toContain('bm-core_4.1.2_all.deb');
      expect(await installedBmCore(h)).toBe('4.1.0');
    }
    expect(staged.reason).toMatch(/only \S+ left in window night, cutoff is 15m/);
    // Each look of the engine judges the window again and writes the shorter countdown into the
    // reason: three more looks, and each one decided to wait again.
    const still = await waitForReasonRewrites(fleet, id, 3);
    expect(still.reason).toMatch(/only \S+ left in window night, cutoff is 15m/);
    expect(still.state).toBe('staged');
    expect(still.windowOpenedAt).toBeNull();
    expect(still.hosts.map((h) => h.state)).toEqual(['staged', 'staged', 'staged']);
    const kinds = (await rolloutEvents(fleet, id)).map((e) => e.kind);
    expect(kinds).not.toContain('rollout.upgrading');
    expect(kinds).not.toContain('rollout.host.upgrading');
    for (const h of fleet.hosts) expect(await installedBmCore(h)).toBe('4.1.0');
  });

  it('halts when the canary fails, rolls the canary back and starts no other host', async () => {
    const [canary, ...rest] = fleet.hosts as [FleetHost, ...FleetHost[]];
    await publishFailingBmCore(fleet, canary, '4.1.2');
    repairs.push(() => publishBmCore(fleet, canary, '4.1.2'));
    await applyFleet({ window: OPEN_WINDOW });
    const id = await startRollout(fleet);
    const r = await waitForStoredRollout(fleet, id, 'to settle', isResting);
    expect(r.state).toBe('halted');
    expect(r.reason).toContain(canary.hostId);
    expect(r.reason).toContain('error threshold of 0');
    // dpkg undid the failed unpack: the canary still runs 4.1.0, and the recipe's rollback
    // (restore-system) succeeded.
    expect(rolloutHost(r, canary)).toMatchObject({ state: 'rolled-back', phase: null, installed: '4.1.0' });
    expect(rolloutHost(r, canary).reason).toContain('apply-packages');
    expect(await installedBmCore(canary)).toBe('4.1.0');
    const phases = await queryStore<{ phase: string; state: string }>(
      fleet.stateDir,
      'SELECT phase, state FROM phase_runs WHERE run_id = ? AND host_id = ? ORDER BY started_at',
      [`${id}-u`, canary.hostId],
    );
    expect(phases).toEqual([
      { phase: 'upgrade', state: 'failed' },
      { phase: 'rollback', state: 'succeeded' },
    ]);
    for (const h of rest) {
      expect(rolloutHost(r, h)).toMatchObject({ state: 'staged', installed: '4.1.0' });
      expect(await installedBmCore(h)).toBe('4.1.0');
    }
    const events = await rolloutEvents(fleet, id);
    for (const h of rest) expect(hostEventKinds(events, h)).not.toContain('rollout.host.upgrading');
    const failure = events.find(
      (e) => e.kind === 'rollout.host.upgrading.failed' && e.hostId === canary.hostId,
    );
    expect(failure?.data['reason']).toEqual(expect.stringContaining('apply-packages'));
    expect(fleet.setupCalls()).toBe(0);
    const status = await hostStatuses(fleet);
    for (const h of fleet.hosts) {
      expect(h.bluemind.state().maintenance).toBe(false);
      expect(status.find((x) => x.id === h.hostId)?.app?.maintenance).toBe(false);
    }
  });

  it('with errorThreshold 1 goes past one failed host, then holds: finalize needs every host', async () => {
    const [canary, failing, other] = fleet.hosts as [FleetHost, FleetHost, FleetHost];
    await publishFailingBmCore(fleet, failing, '4.1.2');
    repairs.push(() => publishBmCore(fleet, failing, '4.1.2'));
    await applyFleet({ window: OPEN_WINDOW, batches: '{ canary: 1, concurrency: 2, errorThreshold: 1 }' });
    const id = await startRollout(fleet);
    const r = await waitForStoredRollout(fleet, id, 'to settle', isResting);
    expect(r.maxFailures).toBe(1);
    expect(r.state).toBe('held');
    expect(r.reason).toContain('finalize needs every host upgraded');
    expect(r.reason).toContain(failing.hostId);
    expect(r.progress['failed']).toBe(1);
    expect(rolloutHost(r, failing)).toMatchObject({ state: 'rolled-back', installed: '4.1.0' });
    expect(rolloutHost(r, failing).reason).toContain('apply-packages');
    for (const h of [canary, other]) {
      expect(rolloutHost(r, h)).toMatchObject({ state: 'upgraded', installed: '4.1.2' });
      expect(await installedBmCore(h)).toBe('4.1.2');
    }
    expect(await installedBmCore(failing)).toBe('4.1.0');
    const kinds = (await rolloutEvents(fleet, id)).map((e) => e.kind);
    expect(kinds).not.toContain('rollout.halted');
    expect(kinds).not.toContain('rollout.finalize.sent');
    expect(fleet.setupCalls()).toBe(0);
  });

  it('starts no host while paused, and goes on to success when resumed', async () => {
    const [canary, ...rest] = fleet.hosts as [FleetHost, ...FleetHost[]];
    // A slow canary: the pause lands long before the canary could finish and release batch 1.
    for (const h of fleet.hosts)
      await publishBmCore(fleet, h, '4.1.3', { applyMs: h === canary ? SLOW_APPLY_MS : APPLY_MS });
    await applyFleet({ window: OPEN_WINDOW });
    const versionsBefore = await Promise.all(rest.map(installedBmCore));
    const id = await startRollout(fleet);
    const paused = await fleet.cliJson<RolloutView>('rollout', 'pause', id);
    expect(paused.paused).toBe(true);
    // Whatever was in flight when the pause landed finishes (staging, maybe the canary); then
    // nothing moves: three more engine ticks later, batch 1 has not started.
    await waitForStoredRollout(fleet, id, 'idle while paused', (r) =>
      r.hosts.every((h) => h.phase === null && ['staged', 'upgraded'].includes(h.state)),
    );
    await letEngineTick(fleet, id, 3);
    const idle = await rolloutStatus(fleet, id);
    expect(idle.paused).toBe(true);
    expect(idle.state).not.toBe('succeeded');
    const events = await rolloutEvents(fleet, id);
    const pauseAt = eventId(events, 'rollout.pause');
    expect(events.filter((e) => e.kind === 'rollout.host.upgrading' && e.id > pauseAt)).toEqual([]);
    for (const [i, h] of rest.entries()) {
      expect(rolloutHost(idle, h).state).toBe('staged');
      expect(await installedBmCore(h)).toBe(versionsBefore[i]);
    }
    await fleet.cliOk('rollout', 'resume', id);
    const r = await waitForStoredRollout(fleet, id, 'to settle', isResting);
    expect(r.state).toBe('succeeded');
    for (const h of fleet.hosts) expect(await installedBmCore(h)).toBe('4.1.3');
    expect(fleet.setupCalls()).toBe(1);
  });

  it('on abort starts no new host, lets the one in flight finish, and ends aborted', async () => {
    const [canary, ...rest] = fleet.hosts as [FleetHost, ...FleetHost[]];
    for (const h of fleet.hosts)
      await publishBmCore(fleet, h, '4.1.4', { applyMs: h === canary ? SLOW_APPLY_MS : APPLY_MS });
    const id = await startRollout(fleet);
    await waitForStoredRollout(
      fleet,
      id,
      'with the canary upgrading',
      (r) => rolloutHost(r, canary).phase === 'upgrade',
    );
    const aborting = await fleet.cliJson<RolloutView>('rollout', 'abort', id);
    expect(aborting.state).toBe('aborting');
    const r = await waitForStoredRollout(fleet, id, 'aborted', (x) => x.state === 'aborted');
    expect(rolloutHost(r, canary)).toMatchObject({ state: 'upgraded', phase: null, installed: '4.1.4' });
    expect(await installedBmCore(canary)).toBe('4.1.4');
    const events = await rolloutEvents(fleet, id);
    expect(eventId(events, 'rollout.abort')).toBeLessThan(
      eventId(events, 'rollout.host.verifying.ok', canary.hostId),
    );
    for (const h of rest) {
      expect(rolloutHost(r, h)).toMatchObject({ state: 'staged', installed: '4.1.3' });
      expect(hostEventKinds(events, h)).not.toContain('rollout.host.upgrading');
      expect(await installedBmCore(h)).toBe('4.1.3');
    }
    expect(fleet.setupCalls()).toBe(1);
    // Seed 001: a host stays in maintenance from its package upgrade until /setup. An abort after
    // the canary's packages and before finalize leaves it waiting for /setup (or a rollback).
    expect(canary.bluemind.state()).toMatchObject({
      maintenance: true,
      update: { installed: '4.1.4', setupVersion: '4.1.3', pending: true },
    });
  });

  it('on abort lets a finalize in flight finish, and the rollout ends aborted, not finalized on', async () => {
    const [core] = fleet.hosts as [FleetHost];
    for (const h of fleet.hosts) await publishBmCore(fleet, h, '4.1.5');
    // A manual pause after the canary (the core host) holds the rollout before finalize can
    // start, so the core's service is frozen in time however fast the other batch goes.
    await applyFleet({
      window: OPEN_WINDOW,
      batches: '{ canary: 1, concurrency: 2, errorThreshold: 0, pause: manual }',
    });
    const setupsBefore = fleet.setupCalls();
    const id = await startRollout(fleet);
    await waitForStoredRollout(
      fleet,
      id,
      'paused with the core host upgraded',
      (r) => r.paused && rolloutHost(r, core).state === 'upgraded',
    );
    // The core host's service is needed again only by finalize: frozen, /setup hangs in flight.
    const service = core.bluemind.child.pid ?? -1;
    process.kill(service, 'SIGSTOP');
    try {
      await fleet.cliOk('rollout', 'resume', id);
      await waitForStoredRollout(fleet, id, 'finalizing', (r) => r.finalizeState === 'sent');
      const aborting = await fleet.cliJson<RolloutView>('rollout', 'abort', id);
      expect(aborting.state).toBe('aborting');
      // Three engine ticks later, the finalize it waits for is still in flight, and so is the abort.
      await letEngineTick(fleet, id, 3);
      expect(await storedRollout(fleet, id)).toMatchObject({ state: 'aborting', finalizeState: 'sent' });
    } finally {
      process.kill(service, 'SIGCONT');
    }
    const r = await waitForStoredRollout(fleet, id, 'aborted', (x) => x.state === 'aborted');
    expect(r.finalize.state).toBe('succeeded');
    expect(fleet.setupCalls()).toBe(setupsBefore + 1);
    // Two engine ticks later it is still aborted: the finalize's answer did not move it on.
    await letEngineTick(fleet, id, 2);
    expect((await storedRollout(fleet, id))?.state).toBe('aborted');
    const events = await rolloutEvents(fleet, id);
    const abortAt = eventId(events, 'rollout.abort');
    expect(events.filter((e) => e.id > abortAt).map((e) => e.kind)).not.toContain('rollout.verifying');
    expect(events.map((e) => e.kind)).not.toContain('rollout.host.final-verifying');
  });
});
