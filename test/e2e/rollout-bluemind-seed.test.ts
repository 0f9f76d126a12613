/**
 * The built-in bluemind recipe rolled out as seed 001 describes the update, end to end: a
 * controller process, an agent per host, real apt roots, and a fake BlueMind per host that stays in
 * maintenance from the package upgrade until /setup, refuses an unprepared 4.1+ update, disables
 * the nginx vhosts during the update and logs to bm-core.log (scripts/fixtures/fake-bluemind.ts).
 *
 * One fleet of two hosts (core and node), shared in order: a rollout to 4.1.2 that succeeds, then
 * a release that fails on the canary at each upgrade step the fleet can break without the
 * packages' own way back (those are listed in docs/recipes.md, BlueMind rollback table).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { FLEET_MAILBOX, FLEET_VHOSTS } from '../../scripts/fixtures/bluemind-host-files';
import { BlueMindFleet, type FleetHost } from '../../scripts/fixtures/bluemind-fleet';
import { readDeployment } from '../../scripts/fixtures/fake-bluemind-update';
import { publishBmCore, publishFailingBmCore } from '../helpers/bluemind-releases';
import {
  installedBmCore,
  isResting,
  rolloutHost,
  startRollout,
  waitForStoredRollout,
} from '../helpers/rollout-probe';
import { queryStore } from '../helpers/store-query';

jest.setTimeout(120_000);

const OPEN_WINDOW = '{ cron: "0 4 * * *", duration: 2h, timezone: Europe/Paris }';

let fleet: BlueMindFleet;

beforeAll(async () => {
  fleet = await BlueMindFleet.create({
    hosts: 2,
    applyMs: 100,
    controllerArgs: ['--clock-start', '2026-12-01T04:50:00+01:00', '--heartbeat-timeout', '10s'],
  });
  await fleet.cliOk(
    'apply',
    fleet.writeFleet(
      fleet.fleetYaml({
        window: OPEN_WINDOW,
        staging: '{ concurrency: 10 }',
        batches: '{ canary: 1, concurrency: 2, errorThreshold: 0 }',
      }),
    ),
  );
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
});

interface StepRow {
  readonly runId: string;
  readonly stepId: string;
  readonly status: string;
  readonly ok: number | null;
  readonly outputTail: string;
  readonly backupId: string | null;
}

/** What the controller stored of one host's PHASE in a rollout, in the order the steps ran. */
async function steps(rolloutId: string, h: FleetHost, phase: string): Promise<StepRow[]> {
  return queryStore<StepRow>(
    fleet.stateDir,
    `SELECT p.run_id AS runId, s.step_id AS stepId, s.status, s.ok, s.output_tail AS outputTail,
            s.backup_id AS backupId
       FROM step_results s JOIN phase_runs p ON s.phase_run_id = p.id
      WHERE p.host_id = ? AND p.phase = ? AND p.run_id LIKE ?
      ORDER BY p.started_at, s.rowid`,
    [h.hostId, phase, `${rolloutId}-%`],
  );
}

const ranOk = (rows: readonly StepRow[]): string[] =>
  rows.filter((r) => r.status === 'ran' && r.ok === 1).map((r) => r.stepId);
const skipped = (rows: readonly StepRow[]): string[] =>
  rows.filter((r) => r.status === 'skipped').map((r) => r.stepId);
const enabledVhosts = (h: FleetHost): string[] =>
  readdirSync(path.join(h.files.nginxDir, 'sites-enabled')).sort();
const health = async (h: FleetHost): Promise<number> => (await fetch(`${h.bluemind.url}/`)).status;

describe('rollout › bluemind 4.1.0 -> 4.1.2 on a core and a node host, as seed 001 describes it', () => {
  let id = '';
  let done: RolloutView;
  let startedAt = 0;

  beforeAll(async () => {
    startedAt = Date.now();
    id = await startRollout(fleet);
    done = await waitForStoredRollout(fleet, id, 'to settle', isResting);
  });

  it('succeeds, every host verified on 4.1.2 after one /setup on the core host', async () => {
    expect([done.state, done.reason]).toEqual(['succeeded', '']);
    for (const h of fleet.hosts) {
      expect(rolloutHost(done, h)).toMatchObject({ state: 'verified', installed: '4.1.2' });
      expect(await installedBmCore(h)).toBe('4.1.2');
    }
    const [core, node] = fleet.hosts as [FleetHost, FleetHost];
    expect(core.bluemind.state().setupCalls).toEqual([{ at: expect.any(Number), authorized: true }]);
    expect(node.bluemind.state().setupCalls).toEqual([]);
  });

  it('prepared the update with bm-cli on every host, BlueMind target version frozen to the target', async () => {
    expect(readDeployment(core().files.deploymentFile)).toEqual({ setupVersion: '4.1.2', prepared: '4.1.2' });
    for (const h of fleet.hosts) {
      const download = await steps(id, h, 'download');
      expect(download[0]).toMatchObject({ stepId: 'prepare-update', status: 'ran', ok: 1 });
      expect(download[0]?.outputTail).toContain('update prepared: target version 4.1.2');
      expect(h.bluemind.state().update).toMatchObject({ refusedSetups: 0, pending: false });
    }
  });

  it('kept every host in maintenance from its package upgrade until /setup', () => {
    const setupAt = core().bluemind.state().setupCalls[0]?.at ?? Number.NaN;
    for (const h of fleet.hosts) {
      const service = h.bluemind.state();
      const spans = service.maintenanceSpans.filter((s) => s.on >= startedAt);
      // One stretch per host: from bm-core's preinst to /setup, not to the end of dpkg.
      expect(spans).toHaveLength(1);
      expect(spans[0]!.on).toBeLessThan(setupAt);
      expect(spans[0]!.off).toBeGreaterThanOrEqual(setupAt);
      expect(service.maintenance).toBe(false);
    }
  });

  it("checked each host before /setup by its packages and its 'update pending' page, and its health after", async () => {
    for (const h of fleet.hosts) {
      const verify = await steps(id, h, 'verify');
      const perHost = verify.filter((r) => r.runId === `${id}-u`);
      const final = verify.filter((r) => r.runId === `${id}-v`);
      expect([ranOk(perHost), skipped(perHost)]).toEqual([
        ['host-packages', 'host-update-pending'],
        ['health'],
      ]);
      expect([ranOk(final), skipped(final)]).toEqual([['health'], ['host-packages', 'host-update-pending']]);
    }
  });

  it("enabled the site's own vhost again, and BlueMind's came back with /setup", async () => {
    for (const h of fleet.hosts) {
      expect(enabledVhosts(h)).toEqual([...FLEET_VHOSTS].sort());
      const upgrade = await steps(id, h, 'upgrade');
      expect(upgrade.map((r) => [r.stepId, r.ok])).toEqual([
        ['backup-system', 1],
        ['note-vhosts', 1],
        ['apply-packages', 1],
        ['reenable-vhosts', 1],
      ]);
      expect(upgrade[3]?.outputTail).toBe('enabled again: intranet\n');
      const log = readFileSync(path.join(h.files.logDir, 'bm-core.log'), 'utf8');
      expect(log).toMatch(/vhosts disabled: bm-client-access bm-webmail intranet/);
      expect(log).toMatch(/vhosts enabled: bm-client-access bm-webmail/);
    }
  });

  it("took a full backup of each host's nginx, BlueMind configuration and data, named by its backup id", async () => {
    for (const h of fleet.hosts) {
      const backup = (await steps(id, h, 'upgrade')).find((r) => r.stepId === 'backup-system');
      const backupId = backup?.backupId ?? '';
      expect(backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
      const archive = path.join(fleet.backupDir(h), backupId, 'files.tar');
      const listing = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' }).split('\n');
      const rel = (p: string): string => path.relative('/', p);
      expect(listing).toEqual(
        expect.arrayContaining([
          `${rel(h.files.dataDir)}/mail/alice/1.eml`,
          `${rel(h.files.dataDir)}/schema-version`,
          `${rel(h.files.bmConfigDir)}/bm.ini`,
          `${rel(h.files.nginxDir)}/sites-enabled/intranet`,
        ]),
      );
      const mail = execFileSync('tar', ['-xOf', archive, `${rel(h.files.dataDir)}/mail/alice/1.eml`], {
        encoding: 'utf8',
      });
      expect(mail).toBe(FLEET_MAILBOX);
      // The data as it was before /setup migrated it.
      const schema = execFileSync('tar', ['-xOf', archive, `${rel(h.files.dataDir)}/schema-version`], {
        encoding: 'utf8',
      });
      expect(schema).toBe('4.1.0\n');
    }
  });
});

describe('rollout › a bluemind release that fails on the canary ends it old and healthy', () => {
  const repairs: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const r of await fleet.cliJson<RolloutView[]>('rollout', 'list', '--unfinished')) {
      if (r.state !== 'aborting') await fleet.cliOk('rollout', 'abort', r.id);
      await waitForStoredRollout(fleet, r.id, 'aborted', (x) => x.state === 'aborted');
    }
    for (const repair of repairs.splice(0)) await repair();
  });

  /** Runs a rollout to rest, and checks the canary rolled back with its logs collected. */
  async function failOnCanary(failingStep: string): Promise<RolloutView> {
    const id = await startRollout(fleet);
    const r = await waitForStoredRollout(fleet, id, 'to settle', isResting);
    expect([r.state, rolloutHost(r, core()).state]).toEqual(['halted', 'rolled-back']);
    expect(rolloutHost(r, core()).reason).toContain(failingStep);
    // The node host was never started.
    expect(rolloutHost(r, fleet.hosts[1]!).state).toBe('staged');
    const rollback = await steps(id, core(), 'rollback');
    expect(rollback.map((s) => [s.stepId, s.ok])).toEqual([
      ['collect-logs', 1],
      ['restore-packages', 1],
      ['restore-system', 1],
    ]);
    // bm-core's log as it was when the update failed, in the step's output and in a file.
    const logs = path.join(fleet.backupDir(core()), 'logs-at-failure', 'bm-core.log');
    expect(rollback[0]?.outputTail).toContain(`== bm-core (${logs})`);
    expect(rollback[0]?.outputTail).toContain(lastLine(readFileSync(logs, 'utf8')));
    return r;
  }

  async function expectOldAndHealthy(h: FleetHost, installed: string): Promise<void> {
    expect(await installedBmCore(h)).toBe(installed);
    await expect(health(h)).resolves.toBe(200);
    expect(h.bluemind.state()).toMatchObject({ maintenance: false, update: { pending: false } });
    expect(enabledVhosts(h)).toEqual([...FLEET_VHOSTS].sort());
    expect(readFileSync(path.join(h.files.dataDir, 'mail/alice/1.eml'), 'utf8')).toBe(FLEET_MAILBOX);
    expect(readFileSync(path.join(h.files.dataDir, 'schema-version'), 'utf8')).toBe(`${installed}\n`);
  }

  it('at apply-packages (a preinst that fails): dpkg keeps 4.1.2, the rollback restores the rest', async () => {
    for (const h of fleet.hosts) await publishFailingBmCore(fleet, h, '4.1.3');
    repairs.push(async () => {
      for (const h of fleet.hosts) await publishBmCore(fleet, h, '4.1.3');
    });
    await failOnCanary('apply-packages');
    // The update had started: the fake disabled the vhosts, and bm-core.log says so.
    const logs = path.join(fleet.backupDir(core()), 'logs-at-failure', 'bm-core.log');
    expect(readFileSync(logs, 'utf8')).toContain('vhosts disabled: bm-client-access bm-webmail intranet');
    for (const h of fleet.hosts) await expectOldAndHealthy(h, '4.1.2');
  });

  it('at note-vhosts (its list cannot be written): nothing changed yet, the rollback restores the backup', async () => {
    for (const h of fleet.hosts) await publishBmCore(fleet, h, '4.1.4');
    // A directory where the list of enabled vhosts goes: `ls > list` fails.
    const list = path.join(fleet.backupDir(core()), 'vhosts-enabled.before');
    rmSync(list, { force: true });
    mkdirSync(list);
    repairs.push(async () => rmSync(list, { recursive: true, force: true }));
    await failOnCanary('note-vhosts');
    for (const h of fleet.hosts) await expectOldAndHealthy(h, '4.1.2');
  });
});

const lastLine = (text: string): string => text.trimEnd().split('\n').at(-1) ?? '';

function core(): FleetHost {
  return fleet.hosts[0]!;
}
