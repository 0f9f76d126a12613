/**
 * Rollouts end to end on BlueMind-like fleets (scripts/fixtures/bluemind-fleet.ts): a controller
 * process, an agent process per host, real apt roots and package repositories, a fake BlueMind per
 * host. Assertions read the store, the hosts' dpkg databases and apt caches, and the fake services.
 *
 * Two fleets of three hosts, built at once and shared by the tests in order:
 *  - "warped": scheduler clock from 01:59 Paris with warp (staging at 02:00, window at 03:00);
 *  - "at 04:50": scheduler clock from 04:50 Paris, no warp: the night window (03:00-05:00,
 *    cutoff 15m) only has 10 minutes left, and an "open" window (04:00-06:00) lets hosts start.
 * Each test leaves its fleet with no unfinished rollout; later tests publish newer versions.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { verifyEventChain } from '../../controller/store/events';
import type { SqlValue, Tx } from '../../controller/store/sqlite';
import { BlueMindFleet, sleep, type FleetHost, type RunResult } from '../../scripts/fixtures/bluemind-fleet';
import { bmCorePublishOptions } from '../../scripts/fixtures/bluemind-packages';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const PARIS = (hhmm: string): number => Date.parse(`2026-12-01T${hhmm}:00+01:00`);
const FINISHED = ['succeeded', 'aborted', 'rolled-back', 'failed'];
const NEEDS_OPERATOR = ['held', 'halted'];
/** Open from 04:00 to 06:00 Paris: the "at 04:50" fleet's hosts may start at once. */
const OPEN_WINDOW = '{ cron: "0 4 * * *", duration: 2h, timezone: Europe/Paris }';
const STAGE_AT_ONCE = '{ concurrency: 10 }';
const APPLY_MS = 300;
/** A canary this slow is still upgrading when a pause or an abort lands. */
const SLOW_APPLY_MS = 3000;

interface HostDoc {
  hostId: string;
  batch: number;
  state: string;
  phase: string | null;
  installed: string;
  staged: string;
  reason: string;
}

interface RolloutDoc {
  id: string;
  deployment: string;
  state: string;
  reason: string;
  paused: boolean;
  target: string;
  stageAt: number;
  stagedAt: number | null;
  windowOpenedAt: number | null;
  finalize: { state: string | null; host: string | null; role: string | null };
  progress: Record<string, number>;
  maxFailures: number;
  hosts: HostDoc[];
}

interface EventDoc {
  id: number;
  actor: string;
  kind: string;
  hostId: string | null;
  data: Record<string, unknown>;
}

interface StatusDoc {
  hosts: {
    id: string;
    app: {
      deployment: string;
      application: string;
      installed: string;
      staged: string;
      maintenance: boolean;
      lastBackupId: string;
      lastHealth: string;
      rollout: string | null;
    } | null;
  }[];
}

let warped: BlueMindFleet;
let at0450: BlueMindFleet;
const built: BlueMindFleet[] = [];

beforeAll(async () => {
  const create = async (clock: string[]): Promise<BlueMindFleet> => {
    // A generous heartbeat timeout: a loaded machine must not turn hosts offline mid-test.
    const controllerArgs = [...clock, '--heartbeat-timeout', '10s'];
    const fleet = await BlueMindFleet.create({ hosts: 3, applyMs: APPLY_MS, controllerArgs });
    built.push(fleet);
    return fleet;
  };
  const [a, b] = await Promise.allSettled([
    create(['--clock-start', '2026-12-01T01:59:00+01:00', '--clock-warp']),
    create(['--clock-start', '2026-12-01T04:50:00+01:00']),
  ]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  [warped, at0450] = [a.value, b.value];
}, 120_000);

afterAll(async () => {
  await Promise.all(built.map((f) => f.stop()));
});

// ---- helpers --------------------------------------------------------------------------------

async function startRollout(fleet: BlueMindFleet, ...args: string[]): Promise<string> {
  return (await fleet.cliOk('rollout', 'start', 'mail-prod', ...args)).trim();
}

function rolloutDoc(fleet: BlueMindFleet, id: string): Promise<RolloutDoc> {
  return fleet.cliJson<RolloutDoc>('rollout', 'status', id);
}

/** What the store says of a rollout: enough to wait on, far cheaper to poll than a CLI process. */
interface RolloutRow {
  id: string;
  state: string;
  reason: string;
  paused: boolean;
  finalizeState: string | null;
  hosts: HostDoc[];
}

async function rolloutRow(fleet: BlueMindFleet, id: string): Promise<RolloutRow | undefined> {
  const [r] = await queryStore<{
    state: string;
    reason: string;
    paused: number;
    finalize_state: string | null;
  }>(fleet.stateDir, 'SELECT state, reason, paused, finalize_state FROM rollouts WHERE id = ?', [id]);
  if (r === undefined) return undefined;
  const hosts = await queryStore<HostDoc & { hostId: string }>(
    fleet.stateDir,
    `SELECT host_id AS hostId, batch, state, phase, installed, staged, reason
       FROM rollout_hosts WHERE rollout_id = ? ORDER BY position`,
    [id],
  );
  return {
    id,
    state: r.state,
    reason: r.reason,
    paused: r.paused === 1,
    finalizeState: r.finalize_state,
    hosts,
  };
}

/**
 * Polls the store until `done` holds, then answers with `rollout status --json`; on timeout the
 * error carries the last row seen and the processes' logs.
 */
async function waitRollout(
  fleet: BlueMindFleet,
  id: string,
  what: string,
  done: (r: RolloutRow) => boolean,
  timeoutMs = 60_000,
): Promise<RolloutDoc> {
  let last: RolloutRow | undefined;
  try {
    await waitFor(
      `rollout ${id} ${what}`,
      async () => {
        last = await rolloutRow(fleet, id);
        return last !== undefined && done(last);
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${JSON.stringify(last, null, 1)}\n${fleet.dump()}`);
  }
  return rolloutDoc(fleet, id);
}

const settled = (r: RolloutRow): boolean => FINISHED.includes(r.state) || NEEDS_OPERATOR.includes(r.state);

function rolloutEvents(fleet: BlueMindFleet, id: string): Promise<EventDoc[]> {
  return fleet.cliJson<EventDoc[]>('events', '--rollout', id, '--limit', '100000');
}

/** The hosts of the rollout's doc by fleet index. */
function hostDoc(r: { id: string; hosts: readonly HostDoc[] }, h: FleetHost): HostDoc {
  const found = r.hosts.find((x) => x.hostId === h.hostId);
  if (found === undefined) throw new Error(`host ${h.name} is not in rollout ${r.id}`);
  return found;
}

function hostKinds(events: readonly EventDoc[], h: FleetHost): string[] {
  return events.filter((e) => e.hostId === h.hostId && e.kind.startsWith('rollout.host.')).map((e) => e.kind);
}

function eventId(events: readonly EventDoc[], kind: string, hostId: string | null = null): number {
  const e = events.find((x) => x.kind === kind && (hostId === null || x.hostId === hostId));
  if (e === undefined) throw new Error(`no ${kind} event${hostId === null ? '' : ` for ${hostId}`}`);
  return e.id;
}

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

const flagOf = (fleet: BlueMindFleet, h: FleetHost): string =>
  path.join(fleet.root, h.name, 'maintenance.flag');

/** Publishes a working bm-core VERSION on the host's own repository (its postinst "applies" for applyMs). */
function publishBmCore(
  fleet: BlueMindFleet,
  h: FleetHost,
  version: string,
  applyMs = APPLY_MS,
): Promise<void> {
  return h.apt.publish('bm-core', version, bmCorePublishOptions(flagOf(fleet, h), applyMs));
}

/**
 * A bm-core VERSION whose preinst puts the service in maintenance and then fails: dpkg undoes the
 * unpack (the old postinst's abort-upgrade takes maintenance off) and the old version stays.
 */
function publishFailingBmCore(fleet: BlueMindFleet, h: FleetHost, version: string): Promise<void> {
  const flag = flagOf(fleet, h).replace(/'/g, `'\\''`);
  return h.apt.publish('bm-core', version, {
    ...bmCorePublishOptions(flagOf(fleet, h), APPLY_MS),
    preinst: `: > '${flag}'\necho 'bm-core: pre-upgrade check failed' >&2\nexit 1\n`,
  });
}

function installed(h: FleetHost): Promise<string | undefined> {
  return h.apt.installedVersion('bm-core');
}

function errorCode(r: RunResult): string {
  return /^convoy: ([A-Z_]+):/m.exec(r.stderr)?.[1] ?? `(exit ${r.code}: ${r.stderr.trim()})`;
}

async function countRows(fleet: BlueMindFleet, sql: string, params: unknown[] = []): Promise<number> {
  return (await queryStore<{ n: number }>(fleet.stateDir, sql, params))[0]?.n ?? -1;
}

// ---- the warped fleet -----------------------------------------------------------------------

describe('rollout › BlueMind fleet, scheduler clock from 01:59 Paris with warp', () => {
  let id = '';
  let done: RolloutDoc;

  beforeAll(async () => {
    await warped.cliOk('apply', warped.writeFleet(warped.fleetYaml()));
    id = await startRollout(warped);
    done = await waitRollout(warped, id, 'to settle', settled);
  });

  it('upgrades every host canary first, finalizes once on the core host and verifies every host', async () => {
    expect(done.state).toBe('succeeded');
    expect(done.target).toBe('4.1.2');
    const [core] = warped.hosts;
    expect(done.finalize).toEqual({ state: 'succeeded', host: core?.hostId, role: 'core' });
    expect(warped.setupCalls()).toBe(1);
    expect(core?.bluemind.state().setupCalls).toEqual([{ at: expect.any(Number), authorized: true }]);
    for (const h of warped.hosts) {
      expect(hostDoc(done, h)).toMatchObject({ state: 'verified', installed: '4.1.2', staged: '4.1.2' });
      expect(await installed(h)).toBe('4.1.2');
      const service = h.bluemind.state();
      expect(service.maintenance).toBe(false);
      // The upgrade did put the service in maintenance, and took it out.
      expect(service.maintenanceSpans.length).toBeGreaterThanOrEqual(1);
      expect(service.maintenanceSpans.every((s) => s.off !== null)).toBe(true);
    }
  });

  it('shows installed and staged versions, maintenance off, the backup and health in convoy status', async () => {
    const status = await warped.cliJson<StatusDoc>('status');
    const backups = await queryStore<{ host_id: string; backup_id: string }>(
      warped.stateDir,
      `SELECT pr.host_id, sr.backup_id FROM phase_runs pr JOIN step_results sr ON sr.phase_run_id = pr.id
        WHERE pr.run_id = ? AND pr.phase = 'upgrade' AND sr.step_id = 'backup-config' AND sr.ok = 1`,
      [`${id}-u`],
    );
    for (const h of warped.hosts) {
      const app = status.hosts.find((x) => x.id === h.hostId)?.app;
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
    const events = await rolloutEvents(warped, id);
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
    for (const h of warped.hosts) {
      expect(hostKinds(events, h)).toEqual([
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
    const [canary, ...rest] = warped.hosts;
    const canaryOk = eventId(events, 'rollout.host.verifying.ok', canary?.hostId);
    for (const h of rest) expect(canaryOk).toBeLessThan(eventId(events, 'rollout.host.upgrading', h.hostId));
    const finalize = eventId(events, 'rollout.finalize.sent');
    for (const h of warped.hosts) {
      expect(eventId(events, 'rollout.host.verifying.ok', h.hostId)).toBeLessThan(finalize);
      expect(finalize).toBeLessThan(eventId(events, 'rollout.host.final-verifying', h.hostId));
    }
    expect(await countRows(warped, 'SELECT COUNT(*) AS n FROM events')).toBeGreaterThan(events.length);
    expect(await verifyEventChain(readOnlyTx(warped.stateDir))).toBeNull();
    // The check is not vacuous: a copy of the store with one event edited fails at that event.
    const copy = mkdtempSync(path.join(os.tmpdir(), 'convoy-chain-'));
    try {
      await queryStore(warped.stateDir, 'VACUUM INTO ?', [path.join(copy, 'convoy.db')]);
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
    const events = await rolloutEvents(warped, id);
    const upgrading = eventId(events, 'rollout.upgrading');
    for (const h of warped.hosts)
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
      warped.stateDir,
      `SELECT pr.host_id, pr.phase, pr.state, pr.started_at, pr.finished_at, sr.step_id, sr.ok, sr.versions_json
         FROM phase_runs pr JOIN step_results sr ON sr.phase_run_id = pr.id
        WHERE pr.run_id IN (?, ?) AND sr.step_id IN ('stage-packages', 'apply-packages')`,
      [`${id}-s`, `${id}-u`],
    );
    for (const h of warped.hosts) {
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
    for (const h of warped.hosts) await publishBmCore(warped, h, '4.1.3');
    const before = await countRows(
      warped,
      "SELECT COUNT(*) AS n FROM rollouts WHERE deployment = 'mail-prod'",
    );
    const runs = await Promise.all(
      Array.from({ length: 20 }, () => warped.cli('rollout', 'start', 'mail-prod')),
    );
    const winners = runs.filter((r) => r.code === 0);
    expect(winners).toHaveLength(1);
    const losers = runs.filter((r) => r.code !== 0);
    expect(losers.map(errorCode)).toEqual(Array<string>(19).fill('ROLLOUT_EXISTS'));
    const winner = winners[0]?.stdout.trim() ?? '';
    const listed = await warped.cliJson<RolloutDoc[]>('rollout', 'list', '--deployment', 'mail-prod');
    expect(listed.map((r) => r.id).filter((x) => x !== id)).toEqual([winner]);
    expect(await countRows(warped, "SELECT COUNT(*) AS n FROM rollouts WHERE deployment = 'mail-prod'")).toBe(
      before + 1,
    );
    expect(
      await countRows(
        warped,
        "SELECT COUNT(*) AS n FROM events WHERE kind = 'rollout.created' AND rollout_id = ?",
        [winner],
      ),
    ).toBe(1);
    expect((await rolloutDoc(warped, winner)).target).toBe('4.1.3');
    // Clean up for the next tests. With the warped clock the rollout may already have finished
    // (nothing waits between its transitions): then abort is refused as not applicable.
    const abort = await warped.cli('rollout', 'abort', winner);
    if (abort.code !== 0) expect(errorCode(abort)).toBe('ROLLOUT_STATE');
    await waitRollout(warped, winner, 'aborted or finished', (r) =>
      ['aborted', 'succeeded'].includes(r.state),
    );
  });

  describe('refuses bad input', () => {
    it('exits 2 on a fleet file with errors, naming the file and each path, and stores nothing', async () => {
      const file = path.join(warped.root, 'bad-fleet.yaml');
      const good = warped.fleetYaml({ name: 'mail-other' });
      const bad = warped
        .fleetYaml({ name: 'mail-bad', batches: '{ canary: 1, concurrency: lots }' })
        .replace('window: night', 'window: weekend')
        .split('deployments:\n')[1];
      writeFileSync(file, `${good}${bad}`);
      const deploymentsBefore = await queryStore(warped.stateDir, 'SELECT * FROM deployments ORDER BY name');
      const eventsBefore = await countRows(warped, 'SELECT COUNT(*) AS n FROM events');
      const r = await warped.cli('apply', file);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toContain('deployments[1].batches.concurrency');
      expect(r.stderr).toContain('deployments[1].window');
      expect(await queryStore(warped.stateDir, 'SELECT * FROM deployments ORDER BY name')).toEqual(
        deploymentsBefore,
      );
      expect(await countRows(warped, 'SELECT COUNT(*) AS n FROM events')).toBe(eventsBefore);
    });

    it('refuses an unknown deployment, a downgrade, and a resume of a finished rollout', async () => {
      const rollouts = await countRows(warped, 'SELECT COUNT(*) AS n FROM rollouts');
      const unknown = await warped.cli('rollout', 'start', 'no-such-deployment');
      expect(unknown.code).toBe(1);
      expect(errorCode(unknown)).toBe('DEPLOYMENT_UNKNOWN');
      const downgrade = await warped.cli('rollout', 'start', 'mail-prod', '--to', '4.1.0');
      expect(downgrade.code).toBe(1);
      expect(errorCode(downgrade)).toBe('POLICY_REFUSED');
      expect(await countRows(warped, 'SELECT COUNT(*) AS n FROM rollouts')).toBe(rollouts);
      const resume = await warped.cli('rollout', 'resume', id);
      expect(resume.code).toBe(1);
      expect(errorCode(resume)).toBe('ROLLOUT_STATE');
      expect((await rolloutDoc(warped, id)).state).toBe('succeeded');
    });

    it('needs --approve for a major upgrade, and starts it with --approve', async () => {
      for (const h of warped.hosts) await publishBmCore(warped, h, '5.0.0');
      const rollouts = await countRows(warped, 'SELECT COUNT(*) AS n FROM rollouts');
      const refused = await warped.cli('rollout', 'start', 'mail-prod');
      expect(refused.code).toBe(1);
      expect(errorCode(refused)).toBe('APPROVAL_REQUIRED');
      expect(await countRows(warped, 'SELECT COUNT(*) AS n FROM rollouts')).toBe(rollouts);
      const major = await startRollout(warped, '--approve');
      const spec = await queryStore<{ spec_json: string }>(
        warped.stateDir,
        'SELECT spec_json FROM rollouts WHERE id = ?',
        [major],
      );
      expect(JSON.parse(spec[0]?.spec_json ?? '{}')).toMatchObject({ target: '5.0.0', approved: true });
      const r = await waitRollout(warped, major, 'to settle', settled);
      expect(r.state).toBe('succeeded');
      for (const h of warped.hosts) expect(await installed(h)).toBe('5.0.0');
    });
  });
});

// ---- the fleet at 04:50, no warp ------------------------------------------------------------

describe('rollout › BlueMind fleet, scheduler clock from 04:50 Paris without warp', () => {
  const fleet = (): BlueMindFleet => at0450;
  /** Undone after each test, pass or fail: broken packages republished whole. */
  const repairs: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const r of await fleet().cliJson<RolloutDoc[]>('rollout', 'list', '--unfinished')) {
      if (r.state !== 'aborting') await fleet().cliOk('rollout', 'abort', r.id);
      await waitRollout(fleet(), r.id, 'aborted', (x) => x.state === 'aborted');
    }
    for (const repair of repairs.splice(0)) await repair();
  });

  async function applyFleet(opts: { window?: string; batches?: string } = {}): Promise<void> {
    await fleet().cliOk('apply', fleet().writeFleet(fleet().fleetYaml({ staging: STAGE_AT_ONCE, ...opts })));
  }

  it('stages at once, but starts no host when less than the cutoff remains in the window', async () => {
    await applyFleet();
    const id = await startRollout(fleet());
    const staged = await waitRollout(
      fleet(),
      id,
      'staged and waiting for the window',
      (r) => r.state === 'staged' && r.reason.includes('window'),
    );
    // Right after staging, before any upgrade could run: every cache holds the new package.
    for (const h of fleet().hosts) {
      expect(h.apt.cachedDebs()).toContain('bm-core_4.1.2_all.deb');
      expect(await installed(h)).toBe('4.1.0');
    }
    expect(staged.reason).toMatch(/only \S+ left in window night, cutoff is 15m/);
    await sleep(1500); // three engine ticks
    const still = await rolloutDoc(fleet(), id);
    expect(still.state).toBe('staged');
    expect(still.windowOpenedAt).toBeNull();
    expect(still.hosts.map((h) => h.state)).toEqual(['staged', 'staged', 'staged']);
    const kinds = (await rolloutEvents(fleet(), id)).map((e) => e.kind);
    expect(kinds).not.toContain('rollout.upgrading');
    expect(kinds).not.toContain('rollout.host.upgrading');
    for (const h of fleet().hosts) expect(await installed(h)).toBe('4.1.0');
  });

  it('halts when the canary fails, rolls the canary back and starts no other host', async () => {
    const [canary, ...rest] = fleet().hosts as [FleetHost, ...FleetHost[]];
    await publishFailingBmCore(fleet(), canary, '4.1.2');
    repairs.push(() => publishBmCore(fleet(), canary, '4.1.2'));
    await applyFleet({ window: OPEN_WINDOW });
    const id = await startRollout(fleet());
    const r = await waitRollout(fleet(), id, 'to settle', settled);
    expect(r.state).toBe('halted');
    expect(r.reason).toContain(canary.hostId);
    expect(r.reason).toContain('error threshold of 0');
    // dpkg undid the failed unpack: the canary still runs 4.1.0, and the recipe's rollback
    // (restore-config) succeeded.
    expect(hostDoc(r, canary)).toMatchObject({ state: 'rolled-back', phase: null, installed: '4.1.0' });
    expect(hostDoc(r, canary).reason).toContain('apply-packages');
    expect(await installed(canary)).toBe('4.1.0');
    const phases = await queryStore<{ phase: string; state: string }>(
      fleet().stateDir,
      'SELECT phase, state FROM phase_runs WHERE run_id = ? AND host_id = ? ORDER BY started_at',
      [`${id}-u`, canary.hostId],
    );
    expect(phases).toEqual([
      { phase: 'upgrade', state: 'failed' },
      { phase: 'rollback', state: 'succeeded' },
    ]);
    for (const h of rest) {
      expect(hostDoc(r, h)).toMatchObject({ state: 'staged', installed: '4.1.0' });
      expect(await installed(h)).toBe('4.1.0');
    }
    const events = await rolloutEvents(fleet(), id);
    for (const h of rest) expect(hostKinds(events, h)).not.toContain('rollout.host.upgrading');
    const failure = events.find(
      (e) => e.kind === 'rollout.host.upgrading.failed' && e.hostId === canary.hostId,
    );
    expect(failure?.data['reason']).toEqual(expect.stringContaining('apply-packages'));
    expect(fleet().setupCalls()).toBe(0);
    const status = await fleet().cliJson<StatusDoc>('status');
    for (const h of fleet().hosts) {
      expect(h.bluemind.state().maintenance).toBe(false);
      expect(status.hosts.find((x) => x.id === h.hostId)?.app?.maintenance).toBe(false);
    }
  });

  it('with errorThreshold 1 goes past one failed host, then holds: finalize needs every host', async () => {
    const [canary, failing, other] = fleet().hosts as [FleetHost, FleetHost, FleetHost];
    await publishFailingBmCore(fleet(), failing, '4.1.2');
    repairs.push(() => publishBmCore(fleet(), failing, '4.1.2'));
    await applyFleet({ window: OPEN_WINDOW, batches: '{ canary: 1, concurrency: 2, errorThreshold: 1 }' });
    const id = await startRollout(fleet());
    const r = await waitRollout(fleet(), id, 'to settle', settled);
    expect(r.maxFailures).toBe(1);
    expect(r.state).toBe('held');
    expect(r.reason).toContain('finalize needs every host upgraded');
    expect(r.reason).toContain(failing.hostId);
    expect(r.progress['failed']).toBe(1);
    expect(hostDoc(r, failing)).toMatchObject({ state: 'rolled-back', installed: '4.1.0' });
    expect(hostDoc(r, failing).reason).toContain('apply-packages');
    for (const h of [canary, other]) {
      expect(hostDoc(r, h)).toMatchObject({ state: 'upgraded', installed: '4.1.2' });
      expect(await installed(h)).toBe('4.1.2');
    }
    expect(await installed(failing)).toBe('4.1.0');
    const kinds = (await rolloutEvents(fleet(), id)).map((e) => e.kind);
    expect(kinds).not.toContain('rollout.halted');
    expect(kinds).not.toContain('rollout.finalize.sent');
    expect(fleet().setupCalls()).toBe(0);
  });

  it('starts no host while paused, and goes on to success when resumed', async () => {
    const [canary, ...rest] = fleet().hosts as [FleetHost, ...FleetHost[]];
    // A slow canary: the pause lands long before the canary could finish and release batch 1.
    for (const h of fleet().hosts)
      await publishBmCore(fleet(), h, '4.1.3', h === canary ? SLOW_APPLY_MS : APPLY_MS);
    await applyFleet({ window: OPEN_WINDOW });
    const versionsBefore = await Promise.all(rest.map(installed));
    const id = await startRollout(fleet());
    const paused = await fleet().cliJson<RolloutDoc>('rollout', 'pause', id);
    expect(paused.paused).toBe(true);
    // Whatever was in flight when the pause landed finishes (staging, maybe the canary); then
    // nothing moves: three more engine ticks later, batch 1 has not started.
    await waitRollout(fleet(), id, 'idle while paused', (r) =>
      r.hosts.every((h) => h.phase === null && ['staged', 'upgraded'].includes(h.state)),
    );
    await sleep(1500);
    const idle = await rolloutDoc(fleet(), id);
    expect(idle.paused).toBe(true);
    expect(idle.state).not.toBe('succeeded');
    const events = await rolloutEvents(fleet(), id);
    const pauseAt = eventId(events, 'rollout.pause');
    expect(events.filter((e) => e.kind === 'rollout.host.upgrading' && e.id > pauseAt)).toEqual([]);
    for (const [i, h] of rest.entries()) {
      expect(hostDoc(idle, h).state).toBe('staged');
      expect(await installed(h)).toBe(versionsBefore[i]);
    }
    await fleet().cliOk('rollout', 'resume', id);
    const r = await waitRollout(fleet(), id, 'to settle', settled);
    expect(r.state).toBe('succeeded');
    for (const h of fleet().hosts) expect(await installed(h)).toBe('4.1.3');
    expect(fleet().setupCalls()).toBe(1);
  });

  it('on abort starts no new host, lets the one in flight finish, and ends aborted', async () => {
    const [canary, ...rest] = fleet().hosts as [FleetHost, ...FleetHost[]];
    for (const h of fleet().hosts)
      await publishBmCore(fleet(), h, '4.1.4', h === canary ? SLOW_APPLY_MS : APPLY_MS);
    const id = await startRollout(fleet());
    await waitRollout(
      fleet(),
      id,
      'with the canary upgrading',
      (r) => hostDoc(r, canary).phase === 'upgrade',
    );
    const aborting = await fleet().cliJson<RolloutDoc>('rollout', 'abort', id);
    expect(aborting.state).toBe('aborting');
    const r = await waitRollout(fleet(), id, 'aborted', (x) => x.state === 'aborted');
    expect(hostDoc(r, canary)).toMatchObject({ state: 'upgraded', phase: null, installed: '4.1.4' });
    expect(await installed(canary)).toBe('4.1.4');
    const events = await rolloutEvents(fleet(), id);
    expect(eventId(events, 'rollout.abort')).toBeLessThan(
      eventId(events, 'rollout.host.verifying.ok', canary.hostId),
    );
    for (const h of rest) {
      expect(hostDoc(r, h)).toMatchObject({ state: 'staged', installed: '4.1.3' });
      expect(hostKinds(events, h)).not.toContain('rollout.host.upgrading');
      expect(await installed(h)).toBe('4.1.3');
    }
    expect(fleet().setupCalls()).toBe(1);
    expect(canary.bluemind.state().maintenance).toBe(false);
  });

  it('on abort lets a finalize in flight finish, and the rollout ends aborted, not finalized on', async () => {
    const [core] = fleet().hosts as [FleetHost];
    for (const h of fleet().hosts) await publishBmCore(fleet(), h, '4.1.5');
    // A manual pause after the canary (the core host) holds the rollout before finalize can
    // start, so the core's service is frozen in time however fast the other batch goes.
    await applyFleet({
      window: OPEN_WINDOW,
      batches: '{ canary: 1, concurrency: 2, errorThreshold: 0, pause: manual }',
    });
    const setupsBefore = fleet().setupCalls();
    const id = await startRollout(fleet());
    await waitRollout(
      fleet(),
      id,
      'paused with the core host upgraded',
      (r) => r.paused && hostDoc(r, core).state === 'upgraded',
    );
    // The core host's service is needed again only by finalize: frozen, /setup hangs in flight.
    const service = core.bluemind.child.pid ?? -1;
    process.kill(service, 'SIGSTOP');
    try {
      await fleet().cliOk('rollout', 'resume', id);
      await waitRollout(fleet(), id, 'finalizing', (r) => r.finalizeState === 'sent');
      const aborting = await fleet().cliJson<RolloutDoc>('rollout', 'abort', id);
      expect(aborting.state).toBe('aborting');
      await sleep(1500);
      expect(await rolloutRow(fleet(), id)).toMatchObject({ state: 'aborting', finalizeState: 'sent' });
    } finally {
      process.kill(service, 'SIGCONT');
    }
    const r = await waitRollout(fleet(), id, 'aborted', (x) => x.state === 'aborted');
    expect(r.finalize.state).toBe('succeeded');
    expect(fleet().setupCalls()).toBe(setupsBefore + 1);
    await sleep(1000);
    expect((await rolloutRow(fleet(), id))?.state).toBe('aborted');
    const events = await rolloutEvents(fleet(), id);
    const abortAt = eventId(events, 'rollout.abort');
    expect(events.filter((e) => e.id > abortAt).map((e) => e.kind)).not.toContain('rollout.verifying');
    expect(events.map((e) => e.kind)).not.toContain('rollout.host.final-verifying');
  });
});
