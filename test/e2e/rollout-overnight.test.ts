/**
 * A BlueMind rollout overnight, end to end (scripts/fixtures/bluemind-fleet.ts): a controller
 * process, an agent process per host, real apt roots and package repositories, a fake BlueMind per
 * host. The scheduler clock starts at 01:59 Paris and warps, so staging at 02:00 and the night
 * window at 03:00 come within seconds. Assertions read the store, the hosts' dpkg databases and apt
 * caches, and the fake services.
 *
 * One fleet of three hosts, shared by the tests in order: the first rollout (to 4.1.2) is judged
 * by the first four; later tests publish newer versions, and each leaves no unfinished rollout.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import type { RolloutView } from '../../controller/rollout/view';
import { verifyEventChain } from '../../controller/store/events';
import type { SqlValue, Tx } from '../../controller/store/sqlite';
import { BlueMindFleet, type RunResult } from '../../scripts/fixtures/bluemind-fleet';
import { publishBmCore } from '../helpers/bluemind-releases';
import {
  eventId,
  hostEventKinds,
  hostStatuses,
  installedBmCore,
  isResting,
  rolloutEvents,
  rolloutHost,
  rolloutStatus,
  startRollout,
  waitForStoredRollout,
} from '../helpers/rollout-probe';
import { queryStore } from '../helpers/store-query';

jest.setTimeout(120_000);

const PARIS = (hhmm: string): number => Date.parse(`2026-12-01T${hhmm}:00+01:00`);

let fleet: BlueMindFleet;

beforeAll(async () => {
  fleet = await BlueMindFleet.create({
    hosts: 3,
    applyMs: 300,
    // A generous heartbeat timeout: a loaded machine must not turn hosts offline mid-test.
    controllerArgs: [
      '--clock-start',
      '2026-12-01T01:59:00+01:00',
      '--clock-warp',
      '--heartbeat-timeout',
      '10s',
    ],
  });
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
});

/** The store as a `Tx` that can only read, for the store's own checks (verifyEventChain). */
function readOnlyTx(stateDir: string): Tx {
  return {
    run: () => Promise.reject(new Error('this transaction is read-only')),
    get: async <T>(sql: string, params: readonly SqlValue[] = []) =>
      (await queryStore<T>(stateDir, sql, [...params]))[0],
    all: <T>(sql: string, params: readonly SqlValue[] = []) => queryStore<T>(stateDir, sql, [...params]),
  };
}

function editStore(stateDir: string, sql: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path.join(stateDir, 'convoy.db'), (openErr) => {
      if (openErr) return reject(openErr);
      db.run(sql, (err) => db.close(() => (err ? reject(err) : resolve())));
    });
  });
}

/** The catalogued code a failed CLI call printed (`convoy: CODE: ...`). */
function errorCode(r: RunResult): string {
  return /^convoy: ([A-Z_]+):/m.exec(r.stderr)?.[1] ?? `(exit ${r.code}: ${r.stderr.trim()})`;
}

async function countRows(sql: string, params: unknown[] = []): Promise<number> {
  return (await queryStore<{ n: number }>(fleet.stateDir, sql, params))[0]?.n ?? -1;
}

describe('rollout › overnight on three BlueMind hosts, scheduler clock from 01:59 Paris, warped', () => {
  let id = '';
  let done: RolloutView;

  beforeAll(async () => {
    await fleet.cliOk('apply', fleet.writeFleet(fleet.fleetYaml()));
    id = await startRollout(fleet);
    done = await waitForStoredRollout(fleet, id, 'to settle', isResting);
  });

  it('upgrades every host canary first, finalizes once on the core host and verifies every host', async () => {
    expect(done.state).toBe('succeeded');
    expect(done.target).toBe('4.1.2');
    const [core] = fleet.hosts;
    expect(done.finalize).toEqual({ state: 'succeeded', host: core?.hostId, role: 'core' });
    expect(fleet.setupCalls()).toBe(1);
    expect(core?.bluemind.state().setupCalls).toEqual([{ at: expect.any(Number), authorized: true }]);
    for (const h of fleet.hosts) {
      expect(rolloutHost(done, h)).toMatchObject({ state: 'verified', installed: '4.1.2', staged: '4.1.2' });
      expect(await installedBmCore(h)).toBe('4.1.2');
      const service = h.bluemind.state();
      expect(service.maintenance).toBe(false);
      // The upgrade did put the service in maintenance, and took it out.
      expect(service.maintenanceSpans.length).toBeGreaterThanOrEqual(1);
      expect(service.maintenanceSpans.every((s) => s.off !== null)).toBe(true);
    }
  });

  it('shows installed and staged versions, maintenance off, the backup and health in convoy status', async () => {
    const status = await hostStatuses(fleet);
    const backups = await queryStore<{ host_id: string; backup_id: string }>(
      fleet.stateDir,
      `SELECT pr.host_id, sr.backup_id FROM phase_runs pr JOIN step_results sr ON sr.phase_run_id = pr.id
        WHERE pr.run_id = ? AND pr.phase = 'upgrade' AND sr.step_id = 'backup-system' AND sr.ok = 1`,
      [`${id}-u`],
    );
    for (const h of fleet.hosts) {
      const app = status.find((x) => x.id === h.hostId)?.app;
      expect(app).toMatchObject({
        deployment: 'mail-prod',
        application: 'bluemind',
        installed: '4.1.2',
        staged: '4.1.2',
        maintenance: false,
        lastHealth: 'ok',
        rollout: null,
      });
      const backupId = backups.find((b) => b.host_id === h.hostId)?.backup_id;
      expect(backupId).toMatch(/\S/);
      expect(app?.lastBackupId).toBe(backupId);
    }
  });

  it('lists the rollout events in order, and the audit hash chain is intact', async () => {
    const events = await rolloutEvents(fleet, id);
    const ids = events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(events.every((e) => e.data['rolloutId'] === id)).toBe(true);
    expect(
      events.map((e) => e.kind).filter((k) => /^rollout\.[a-z-]+$/.test(k) && k !== 'rollout.updated'),
    ).toEqual([
      'rollout.created',
      'rollout.staging',
      'rollout.staged',
      'rollout.upgrading',
      'rollout.finalizing',
      'rollout.verifying',
      'rollout.succeeded',
    ]);
    for (const h of fleet.hosts) {
      expect(hostEventKinds(events, h)).toEqual([
        'rollout.host.staging',
        'rollout.host.staging.ok',
        'rollout.host.upgrading',
        'rollout.host.upgrading.ok',
        'rollout.host.verifying.ok',
        'rollout.host.final-verifying',
        'rollout.host.final-verifying.ok',
      ]);
    }
    // The canary is verified before anyone else starts; finalize comes after every upgrade.
    const [canary, ...rest] = fleet.hosts;
    const canaryOk = eventId(events, 'rollout.host.verifying.ok', canary?.hostId);
    for (const h of rest) expect(canaryOk).toBeLessThan(eventId(events, 'rollout.host.upgrading', h.hostId));
    const finalize = eventId(events, 'rollout.finalize.sent');
    for (const h of fleet.hosts) {
      expect(eventId(events, 'rollout.host.verifying.ok', h.hostId)).toBeLessThan(finalize);
      expect(finalize).toBeLessThan(eventId(events, 'rollout.host.final-verifying', h.hostId));
    }
    expect(await countRows('SELECT COUNT(*) AS n FROM events')).toBeGreaterThan(events.length);
    expect(await verifyEventChain(readOnlyTx(fleet.stateDir))).toBeNull();
    // The check is not vacuous: a copy of the store with one event edited fails at that event.
    const copy = mkdtempSync(path.join(os.tmpdir(), 'convoy-chain-'));
    try {
      await queryStore(fleet.stateDir, 'VACUUM INTO ?', [path.join(copy, 'convoy.db')]);
      const edited = eventId(events, 'rollout.finalize.sent');
      await editStore(copy, `UPDATE events SET data_json = '{"rolloutId":"${id}"}' WHERE id = ${edited}`);
      expect(await verifyEventChain(readOnlyTx(copy))).toBe(edited);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('stages every host off-hours at 02:00 and upgrades only once the 03:00 window opens', async () => {
    expect(done.stageAt).toBe(PARIS('02:00'));
    expect(done.stagedAt).toBeGreaterThanOrEqual(PARIS('02:00'));
    expect(done.stagedAt).toBeLessThan(PARIS('03:00'));
    expect(done.windowOpenedAt).toBeGreaterThanOrEqual(PARIS('03:00'));
    expect(done.windowOpenedAt).toBeLessThan(PARIS('05:00'));
    const events = await rolloutEvents(fleet, id);
    const upgrading = eventId(events, 'rollout.upgrading');
    for (const h of fleet.hosts)
      expect(eventId(events, 'rollout.host.staging.ok', h.hostId)).toBeLessThan(upgrading);
    // The stage phase put bm-core 4.1.2 in every cache; the upgrade ran from that cache alone
    // (aptitude with no download method) after the stage phase had finished.
    const runs = await queryStore<{
      host_id: string;
      phase: string;
      state: string;
      started_at: number;
      finished_at: number;
      step_id: string;
      ok: number;
      versions_json: string;
    }>(
      fleet.stateDir,
      `SELECT pr.host_id, pr.phase, pr.state, pr.started_at, pr.finished_at, sr.step_id, sr.ok, sr.versions_json
         FROM phase_runs pr JOIN step_results sr ON sr.phase_run_id = pr.id
        WHERE pr.run_id IN (?, ?) AND sr.step_id IN ('stage-packages', 'apply-packages')`,
      [`${id}-s`, `${id}-u`],
    );
    for (const h of fleet.hosts) {
      const stage = runs.find((r) => r.host_id === h.hostId && r.step_id === 'stage-packages');
      const apply = runs.find((r) => r.host_id === h.hostId && r.step_id === 'apply-packages');
      expect(stage).toMatchObject({ phase: 'download', state: 'succeeded', ok: 1 });
      expect(stage?.versions_json).toContain('4.1.2');
      expect(apply).toMatchObject({ phase: 'upgrade', state: 'succeeded', ok: 1 });
      expect(stage?.finished_at).toBeLessThanOrEqual(apply?.started_at ?? 0);
      expect(h.apt.cachedDebs()).toContain('bm-core_4.1.2_all.deb');
    }
  });

  it('creates exactly one rollout from 20 concurrent starts for one deployment', async () => {
    for (const h of fleet.hosts) await publishBmCore(fleet, h, '4.1.3');
    const before = await countRows("SELECT COUNT(*) AS n FROM rollouts WHERE deployment = 'mail-prod'");
    const runs = await Promise.all(
      Array.from({ length: 20 }, () => fleet.cli('rollout', 'start', 'mail-prod')),
    );
    const winners = runs.filter((r) => r.code === 0);
    expect(winners).toHaveLength(1);
    const losers = runs.filter((r) => r.code !== 0);
    expect(losers.map(errorCode)).toEqual(Array<string>(19).fill('ROLLOUT_EXISTS'));
    const winner = winners[0]?.stdout.trim() ?? '';
    const listed = await fleet.cliJson<RolloutView[]>('rollout', 'list', '--deployment', 'mail-prod');
    expect(listed.map((r) => r.id).filter((x) => x !== id)).toEqual([winner]);
    expect(await countRows("SELECT COUNT(*) AS n FROM rollouts WHERE deployment = 'mail-prod'")).toBe(
      before + 1,
    );
    expect(
      await countRows("SELECT COUNT(*) AS n FROM events WHERE kind = 'rollout.created' AND rollout_id = ?", [
        winner,
      ]),
    ).toBe(1);
    expect((await rolloutStatus(fleet, winner)).target).toBe('4.1.3');
    // Clean up for the next tests. With the fleet clock the rollout may already have finished
    // (nothing waits between its transitions): then abort is refused as not applicable.
    const abort = await fleet.cli('rollout', 'abort', winner);
    if (abort.code !== 0) expect(errorCode(abort)).toBe('ROLLOUT_STATE');
    await waitForStoredRollout(fleet, winner, 'aborted or finished', (r) =>
      ['aborted', 'succeeded'].includes(r.state),
    );
  });

  describe('refuses bad input', () => {
    it('exits 2 on a fleet file with errors, naming the file and each path, and stores nothing', async () => {
      const file = path.join(fleet.root, 'bad-fleet.yaml');
      const good = fleet.fleetYaml({ name: 'mail-other' });
      const bad = fleet
        .fleetYaml({ name: 'mail-bad', batches: '{ canary: 1, concurrency: lots }' })
        .replace('window: night', 'window: weekend')
        .split('deployments:\n')[1];
      writeFileSync(file, `${good}${bad}`);
      const deploymentsBefore = await queryStore(fleet.stateDir, 'SELECT * FROM deployments ORDER BY name');
      const eventsBefore = await countRows('SELECT COUNT(*) AS n FROM events');
      const r = await fleet.cli('apply', file);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toContain('deployments[1].batches.concurrency');
      expect(r.stderr).toContain('deployments[1].window');
      expect(await queryStore(fleet.stateDir, 'SELECT * FROM deployments ORDER BY name')).toEqual(
        deploymentsBefore,
      );
      expect(await countRows('SELECT COUNT(*) AS n FROM events')).toBe(eventsBefore);
    });

    it('refuses an unknown deployment, a downgrade, and a resume of a finished rollout', async () => {
      const rollouts = await countRows('SELECT COUNT(*) AS n FROM rollouts');
      const unknown = await fleet.cli('rollout', 'start', 'no-such-deployment');
      expect(unknown.code).toBe(1);
      expect(errorCode(unknown)).toBe('DEPLOYMENT_UNKNOWN');
      const downgrade = await fleet.cli('rollout', 'start', 'mail-prod', '--to', '4.1.0');
      expect(downgrade.code).toBe(1);
      expect(errorCode(downgrade)).toBe('POLICY_REFUSED');
      expect(await countRows('SELECT COUNT(*) AS n FROM rollouts')).toBe(rollouts);
      const resume = await fleet.cli('rollout', 'resume', id);
      expect(resume.code).toBe(1);
      expect(errorCode(resume)).toBe('ROLLOUT_STATE');
      expect((await rolloutStatus(fleet, id)).state).toBe('succeeded');
    });

    it('needs --approve for a major upgrade, and starts it with --approve', async () => {
      for (const h of fleet.hosts) await publishBmCore(fleet, h, '5.0.0');
      const rollouts = await countRows('SELECT COUNT(*) AS n FROM rollouts');
      const refused = await fleet.cli('rollout', 'start', 'mail-prod');
      expect(refused.code).toBe(1);
      expect(errorCode(refused)).toBe('APPROVAL_REQUIRED');
      expect(await countRows('SELECT COUNT(*) AS n FROM rollouts')).toBe(rollouts);
      const major = await startRollout(fleet, '--approve');
      const spec = await queryStore<{ spec_json: string }>(
        fleet.stateDir,
        'SELECT spec_json FROM rollouts WHERE id = ?',
        [major],
      );
      expect(JSON.parse(spec[0]?.spec_json ?? '{}')).toMatchObject({ target: '5.0.0', approved: true });
      const r = await waitForStoredRollout(fleet, major, 'to settle', isResting);
      expect(r.state).toBe('succeeded');
      for (const h of fleet.hosts) expect(await installedBmCore(h)).toBe('5.0.0');
    });
  });
});
