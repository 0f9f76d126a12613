/**
 * The built-in recipes passbolt, cells and owncloud, compiled from recipes/*.yaml as shipped, run
 * phase by phase (check, download, upgrade, verify, rollback) with the real step registry and a
 * real phase journal on fake hosts that behave as the seeds describe: a git clone of a fake
 * passbolt whose migrate --backup writes a dump and whose /healthcheck checks the database
 * against the code; a signed fake `cells` binary that migrates its data on its first start and
 * refuses it afterwards if older; a fake ownCloud whose occ refuses any user but the owner of
 * config.php, with its database, release server and a pending system update. Each test checks the
 * host itself (HEAD, files, data, capabilities, what the fake tools logged, what the health
 * endpoints answered), not only the step results.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateKeyPair, signDetached, type KeyPair } from '../../shared/ed25519';
import { createGitAppRepo, type GitAppRepo } from '../fixtures/git-repo';
import { HttpRepo } from '../../scripts/fixtures/http-repo';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import { passboltHealthProblems } from '../helpers/app-fleets';
import { cellsBinary as fakeCellsBinary, createFakeCells } from '../helpers/fake-cells';
import {
  builtInRecipe,
  createFakeOwncloud,
  FakeHost,
  logLines,
  owncloudStatus,
  probeAvailable,
  probeInstalled,
  publishOwncloudRelease,
  shq,
  stepSummary,
  WEB_USER,
  writeScript,
} from '../helpers/fake-apps';
import { tempDir } from '../helpers/processes';
import { sendJson, startServer, type TestServer } from './steps-http';

// Real git, tar, apt and agent steps on a machine shared with other suites: seconds each.
jest.setTimeout(60_000);

const passbolt = builtInRecipe('passbolt');
const cells = builtInRecipe('cells');
const owncloud = builtInRecipe('owncloud');

/** Everything a test made, undone after it whatever happened. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo();
});

function scratch(prefix: string): string {
  const dir = tempDir(prefix);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fakeHost(options: ConstructorParameters<typeof FakeHost>[0]): FakeHost {
  const host = new FakeHost(options);
  cleanups.push(() => host.cleanup());
  return host;
}

async function healthServer(status: () => { code: number; body: unknown }): Promise<{
  server: TestServer;
  answered: number[];
}> {
  const answered: number[] = [];
  const server = await startServer((_req, res) => {
    const { code, body } = status();
    answered.push(code);
    sendJson(res, code, body);
  });
  cleanups.push(() => server.close());
  return { server, answered };
}

const ok = (id: string): [string, 'ran', boolean] => [id, 'ran', true];

/** The dumps `cake passbolt migrate --backup` wrote in a fake passbolt. */
function backupsIn(appDir: string): string[] {
  const dir = path.join(appDir, 'tmp/cache/database/backup');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** recipes/passbolt.yaml's upgrade, every step. */
const PASSBOLT_UPGRADE = [
  'mark-rollback-point',
  'forget-last-migration-stamp',
  'site-down',
  'checkout-release',
  'update-libraries',
  'stamp-before-migrate',
  'migrate',
  'clear-cache',
  'site-up',
];

/** recipes/passbolt.yaml's rollback: the tag and database from before, inside maintenance. */
const PASSBOLT_ROLLBACK = [
  'site-down-for-rollback',
  'checkout-previous',
  'reinstall-libraries',
  'restore-database',
  'forget-migration-stamp',
  'clear-cache-after-rollback',
  'site-up-after-failure',
];

describe('passbolt recipe (git tags, composer, cake migrations)', () => {
  let repo: GitAppRepo;
  /** Cloned when only v2.0.2 and v2.0.3 were published: `check` has to fetch the later tags. */
  let earlyClone: string;

  beforeAll(async () => {
    repo = await createGitAppRepo(['2.0.2', '2.0.3']);
    earlyClone = await repo.cloneAt('v2.0.3');
    await repo.publish('2.1.0');
    await repo.publish('3.0.0');
  });
  afterAll(() => repo.cleanup());

  const git = async (dir: string, ...args: string[]): Promise<string> => (await repo.git(dir, args)).trim();
  const applied = (appDir: string): string[] => logLines(path.join(appDir, 'tmp/migrations.applied'));

  /**
   * A passbolt site around a clone: the maintenance flag where the recipe's default puts it
   * relative to the app directory, a fake composer that records how it ran (and asks the site
   * what it answers meanwhile), a fake MySQL client loading dumps into the fake's database, and the
   * site: the maintenance page (503) while the flag exists, else /healthcheck (200 when the
   * database matches the code, 500 when not).
   */
  async function passboltSite(appDir: string, target: string) {
    const dir = scratch('passbolt');
    const defaults = passbolt.vars;
    const flagInApp = path.relative(defaults['appDir'] ?? '', defaults['maintenanceFlag'] ?? '');
    const flag = flagInApp.startsWith('..')
      ? path.join(dir, path.basename(flagInApp))
      : path.join(appDir, flagInApp);
    const health = await healthServer(() => {
      if (existsSync(flag))
        return { code: 503, body: { header: { status: 'error', message: 'maintenance' }, body: 'down' } };
      const problems = passboltHealthProblems(appDir);
      return { code: problems.length === 0 ? 200 : 500, body: { header: { status: 'success' }, problems } };
    });
    const healthUrl = `${health.server.origin}/healthcheck`;
    const composerLog = path.join(dir, 'composer.log');
    const composer = writeScript(
      path.join(dir, 'bin/composer'),
      `#!/bin/sh
# Fake composer: records its arguments, where it ran, the release there and the site's state.
m=off; [ -f ${shq(flag)} ] && m=on
echo "args=$* cwd=$(pwd) release=$(cat VERSION) maintenance=$m" >> ${shq(composerLog)}
${shq(process.execPath)} -e 'require("http").get(process.argv[1], (r) => { console.log("health=" + r.statusCode); r.resume(); })' ${shq(healthUrl)} >> ${shq(composerLog)}
`,
    );
    const mysql = writeScript(
      path.join(dir, 'bin/mysql'),
      `#!/bin/sh\n[ "$1" = passbolt ] || exit 1\ncat > ${shq(appDir)}/tmp/migrations.applied\n`,
    );
    // The installed 2.0.3 ran its migrations and has a warm cache (tmp/ is git-ignored).
    mkdirSync(path.join(appDir, 'tmp/cache/persistent'), { recursive: true });
    writeFileSync(path.join(appDir, 'tmp/migrations.applied'), '2.0.2.sh\n2.0.3.sh\n');
    writeFileSync(path.join(appDir, 'tmp/cache/persistent/myapp_cake_core_'), 'cached');
    const vars = { appDir, maintenanceFlag: flag, healthUrl, composer, mysql };
    const installed = await probeInstalled(passbolt, vars);
    const host = fakeHost({ recipe: passbolt, target, installed, vars });
    return { host, flag, composerLog, healthUrl, health, installed };
  }

  it('upgrades 2.0.3 to 2.1.0: site down, checkout, composer, migrate with backup, cache clear, site up', async () => {
    const appDir = earlyClone;
    expect(await git(appDir, 'tag', '-l')).toBe('v2.0.2\nv2.0.3');
    const site = await passboltSite(appDir, '2.1.0');
    expect(site.installed).toBe('2.0.3');

    const check = await site.host.run('check');
    expect(stepSummary(check)).toEqual([ok('check-tags')]);
    expect(check.steps[0]?.result?.versions).toEqual(['3.0.0', '2.1.0', '2.0.3', '2.0.2']);
    expect(stepSummary(await site.host.run('download'))).toEqual([ok('stage-tags')]);
    // Nothing moved yet: still 2.0.3, the site up.
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.0.3');
    expect(existsSync(site.flag)).toBe(false);

    const upgrade = await site.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual(PASSBOLT_UPGRADE.map(ok));

    // HEAD is the tag of the release, the tree is that release and still clean.
    expect(await git(appDir, 'rev-parse', 'HEAD')).toBe(await git(appDir, 'rev-parse', 'v2.1.0^{commit}'));
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.1.0');
    expect(readFileSync(path.join(appDir, 'VERSION'), 'utf8').trim()).toBe('2.1.0');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    // composer ran in the app, on the new release, while the site served its maintenance page.
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.1.0 maintenance=on`,
      'health=503',
    ]);
    // migrate --backup: a dump of the database first (tmp/cache/database/backup/backup_TS.sql).
    const backups = backupsIn(appDir);
    expect(backups).toEqual([expect.stringMatching(/^backup_\d+\.sql$/)]);
    expect(readFileSync(path.join(appDir, 'tmp/cache/database/backup', backups[0] ?? ''), 'utf8')).toBe(
      '2.0.2.sh\n2.0.3.sh\n',
    );
    expect(applied(appDir)).toEqual(['2.0.2.sh', '2.0.3.sh', '2.1.0.sh']);
    expect(upgrade.steps[6]?.result?.outputTail).toContain('migrated to 2.1.0');
    // cache clear_all emptied the caches, not the database backups; the site is back.
    expect(readdirSync(path.join(appDir, 'tmp/cache'))).toEqual(['database']);
    expect(existsSync(site.flag)).toBe(false);

    const verify = await site.host.run('verify');
    expect(stepSummary(verify)).toEqual([ok('healthcheck')]);
    expect(site.health.answered.at(-1)).toBe(200);
  });

  it('refuses a dirty tree at checkout-release, and rollback puts the site back online', async () => {
    const appDir = await repo.cloneAt('v2.0.3');
    writeFileSync(path.join(appDir, 'VERSION'), '2.0.3-locally-patched\n');
    const site = await passboltSite(appDir, '2.1.0');
    expect(stepSummary(await site.host.run('check'))).toEqual([ok('check-tags')]);
    expect(stepSummary(await site.host.run('download'))).toEqual([ok('stage-tags')]);

    const upgrade = await site.host.run('upgrade');
    expect(upgrade.ok).toBe(false);
    expect(stepSummary(upgrade)).toEqual([
      ...PASSBOLT_UPGRADE.slice(0, 3).map(ok),
      ['checkout-release', 'ran', false, 'DIRTY_TREE'],
    ]);
    expect(upgrade.steps[3]?.result?.error?.message).toContain('VERSION');
    // Down for maintenance until the rollback runs.
    expect(existsSync(site.flag)).toBe(true);
    expect((await fetch(site.healthUrl)).status).toBe(503);

    const rollback = await site.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(PASSBOLT_ROLLBACK.map(ok));
    expect(rollback.steps[3]?.result?.outputTail).toContain('the migration never started');
    expect(existsSync(site.flag)).toBe(false);
    // Nothing else moved: HEAD on v2.0.3, the local change kept, cake never migrated; composer
    // only reinstalled the lock of the tree still checked out, while the site was down.
    expect(await git(appDir, 'describe', '--tags', '--exact-match')).toBe('v2.0.3');
    expect(readFileSync(path.join(appDir, 'VERSION'), 'utf8')).toBe('2.0.3-locally-patched\n');
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.0.3-locally-patched maintenance=on`,
      'health=503',
    ]);
    expect(backupsIn(appDir)).toEqual([]);
    expect(applied(appDir)).toEqual(['2.0.2.sh', '2.0.3.sh']);
  });

  it('refuses to go back from 2.0.3 to 2.0.2, and rollback puts the site back online', async () => {
    const appDir = await repo.cloneAt('v2.0.3');
    const site = await passboltSite(appDir, '2.0.2');
    expect(site.installed).toBe('2.0.3');

    const upgrade = await site.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([
      ...PASSBOLT_UPGRADE.slice(0, 3).map(ok),
      ['checkout-release', 'ran', false, 'DOWNGRADE_REFUSED'],
    ]);
    expect(stepSummary(await site.host.run('rollback'))).toEqual(PASSBOLT_ROLLBACK.map(ok));
    expect(existsSync(site.flag)).toBe(false);
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.0.3');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    expect((await fetch(site.healthUrl)).status).toBe(200);
    // The libraries of the release still installed, reinstalled as they were; no migration.
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.0.3 maintenance=on`,
      'health=503',
    ]);
    expect(backupsIn(appDir)).toEqual([]);
  });

  it('rolls a migration that failed half-way back: 2.0.3, its database from the dump, the site healthy', async () => {
    const appDir = await repo.cloneAt('v2.0.3');
    const site = await passboltSite(appDir, '2.1.0');
    expect(stepSummary(await site.host.run('download'))).toEqual([ok('stage-tags')]);
    // The fake cake's knob, read from the environment the agent runs its steps with.
    process.env['CAKE_FAIL_MIGRATE'] = '1';
    const upgrade = await site.host.run('upgrade').finally(() => delete process.env['CAKE_FAIL_MIGRATE']);
    expect(stepSummary(upgrade)).toEqual([
      ...PASSBOLT_UPGRADE.slice(0, 6).map(ok),
      ['migrate', 'ran', false, 'STEP_FAILED'],
    ]);
    // Left on the new tag, 2.1.0's migration applied before the failure, the site down.
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.1.0');
    expect(applied(appDir)).toEqual(['2.0.2.sh', '2.0.3.sh', '2.1.0.sh']);
    expect(existsSync(site.flag)).toBe(true);
    writeFileSync(path.join(appDir, 'tmp/cache/persistent/myapp_cake_core_'), 'cached by 2.1.0');

    const rollback = await site.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(PASSBOLT_ROLLBACK.map(ok));
    expect(rollback.steps[3]?.result?.outputTail).toMatch(/loaded .*backup_\d+\.sql/);
    // The tag installed before, clean; composer ran again on it, while the site was down.
    expect(await git(appDir, 'rev-parse', 'HEAD')).toBe(await git(appDir, 'rev-parse', 'v2.0.3^{commit}'));
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.0.3');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.1.0 maintenance=on`,
      'health=503',
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.0.3 maintenance=on`,
      'health=503',
    ]);
    // The database as before the upgrade, loaded from the migrate --backup dump.
    expect(applied(appDir)).toEqual(['2.0.2.sh', '2.0.3.sh']);
    expect(existsSync(path.join(appDir, 'tmp/convoy-migrate.stamp'))).toBe(false);
    // 2.1.0's model cache is gone; the site is back, healthy.
    expect(readdirSync(path.join(appDir, 'tmp/cache'))).toEqual(['database']);
    expect(existsSync(site.flag)).toBe(false);
    expect((await fetch(site.healthUrl)).status).toBe(200);
  }, 60_000);

  it('rolls a complete upgrade back (a failed verify): 2.0.3 and its database, not an older dump', async () => {
    const appDir = await repo.cloneAt('v2.0.3');
    const site = await passboltSite(appDir, '2.1.0');
    // A dump left by an older upgrade, and its stamp: neither may be used by this rollback.
    const dumps = path.join(appDir, 'tmp/cache/database/backup');
    mkdirSync(dumps, { recursive: true });
    writeFileSync(path.join(dumps, 'backup_1000000000000000000.sql'), '2.0.2.sh\n');
    writeFileSync(path.join(appDir, 'tmp/convoy-migrate.stamp'), '');
    expect(stepSummary(await site.host.run('download'))).toEqual([ok('stage-tags')]);
    expect((await site.host.run('upgrade')).ok).toBe(true);
    expect((await fetch(site.healthUrl)).status).toBe(200);

    const rollback = await site.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(PASSBOLT_ROLLBACK.map(ok));
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.0.3');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    expect(applied(appDir)).toEqual(['2.0.2.sh', '2.0.3.sh']);
    expect(logLines(site.composerLog).filter((l) => l.startsWith('args='))).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.1.0 maintenance=on`,
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.0.3 maintenance=on`,
    ]);
    expect(existsSync(site.flag)).toBe(false);
    expect((await fetch(site.healthUrl)).status).toBe(200);
  }, 60_000);

  it('checks the seed’s /healthcheck, which fails new code on the old database', async () => {
    expect(passbolt.vars['healthUrl']).toMatch(/\/healthcheck$/);
    const appDir = await repo.cloneAt('v2.0.3');
    const site = await passboltSite(appDir, '2.1.0');
    expect((await site.host.run('upgrade')).ok).toBe(true);
    expect((await fetch(site.healthUrl)).status).toBe(200);
    // The database taken back under the new code (as a restore gone wrong would leave it).
    writeFileSync(path.join(appDir, 'tmp/migrations.applied'), '2.0.2.sh\n2.0.3.sh\n');
    const answer = await fetch(site.healthUrl);
    expect(answer.status).toBe(500);
    expect(await answer.text()).toContain('the database lacks the migrations of 2.1.0');
  }, 60_000);
});

describe('cells recipe (signed single binary, data migrated on first start, point of no return)', () => {
  const releaseKey = generateKeyPair();
  const otherKey = generateKeyPair();
  const cellsBinary = (version: string): Buffer => Buffer.from(fakeCellsBinary(version));
  const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
  let releasesDir: string;
  let releases: HttpRepo;

  /** `<root>/<channel>/<version>/cells[.sha256|.sig]`; each part can be left out or spoiled. */
  function publish(
    channel: string,
    version: string,
    how: { bytes?: Buffer; signedBytes?: Buffer; key?: KeyPair | null } = {},
  ): void {
    const dir = path.join(releasesDir, channel, version);
    mkdirSync(dir, { recursive: true });
    const bytes = how.bytes ?? cellsBinary(version);
    writeFileSync(path.join(dir, 'cells'), bytes);
    writeFileSync(path.join(dir, 'cells.sha256'), `${sha256(bytes)}  cells\n`);
    const key = how.key === undefined ? releaseKey : how.key;
    if (key !== null) {
      const signature = signDetached(how.signedBytes ?? bytes, key.secretKey);
      writeFileSync(path.join(dir, 'cells.sig'), Buffer.from(signature).toString('base64'));
    }
  }

  beforeAll(async () => {
    releasesDir = tempDir('cells-releases');
    publish('stable', '1.6.3');
    publish('stable', '1.6.1');
    // A mirror that swapped one byte and published the matching sha256; the signature is the vendor's.
    const tampered = cellsBinary('1.6.3');
    tampered[20] = (tampered[20] ?? 0) ^ 0x01;
    publish('tampered', '1.6.3', { bytes: tampered, signedBytes: cellsBinary('1.6.3') });
    publish('unsigned', '1.6.3', { key: null });
    publish('otherkey', '1.6.3', { key: otherKey });
    releases = new HttpRepo({ root: releasesDir });
    await releases.start();
  });
  afterAll(async () => {
    await releases.stop();
    rmSync(releasesDir, { recursive: true, force: true });
  });

  /** A host running cells 1.6.2 on its data, with stop/start commands; its update server offers 1.6.3 and 1.7.0. */
  async function cellsHost(channel: string, target: string, commands = true) {
    const dir = scratch('cells');
    const fake = createFakeCells(dir, '1.6.2', ['1.6.3', '1.7.0']);
    const backupDir = path.join(dir, 'backups');
    const vars = {
      binary: fake.binary,
      dataDir: fake.dataDir,
      backupDir,
      releaseUrl: `${releases.url}/${channel}`,
      // Without `commands`, the host says how to stop cells but not how to start it.
      ...(commands
        ? { stopCommand: fake.stopCommand, startCommand: fake.startCommand }
        : { stopCommand: fake.stopCommand }),
    };
    const installed = await probeInstalled(cells, vars);
    const host = fakeHost({ recipe: cells, target, installed, vars, releaseKeys: [releaseKey.publicKey] });
    const staged = (): string[] => (existsSync(host.stagingDir) ? readdirSync(host.stagingDir) : []);
    return { host, fake, vars, backupDir, installed, staged };
  }

  const getcap = (file: string): string => execFileSync('getcap', [file], { encoding: 'utf8' }).trim();

  it('lists what the update server offers (cells update): latest resolves', async () => {
    const h = await cellsHost('stable', '1.6.3');
    expect(await probeAvailable(cells, h.vars)).toEqual(['1.6.3', '1.7.0']);
    const check = await h.host.run('check');
    expect(stepSummary(check)).toEqual([ok('list-updates')]);
    expect(check.steps[0]?.result?.outputTail).toContain('| 2  | 1.7.0   |');
  });

  it('stages the signed 1.6.3, backs the data up, swaps the binary with setcap; the first start migrates', async () => {
    const h = await cellsHost('stable', '1.6.3');
    expect(h.installed).toBe('1.6.2');

    const download = await h.host.run('download');
    expect(stepSummary(download)).toEqual([ok('stage-binary')]);
    expect(h.staged()).toEqual(['cells']);
    expect(readFileSync(path.join(h.host.stagingDir, 'cells'))).toEqual(cellsBinary('1.6.3'));
    expect(readFileSync(h.fake.binary)).toEqual(cellsBinary('1.6.2'));

    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual(
      ['stop-cells', 'backup-data', 'replace-binary', 'start-cells'].map(ok),
    );
    expect(readFileSync(h.fake.binary)).toEqual(cellsBinary('1.6.3'));
    expect(statSync(h.fake.binary).mode & 0o777).toBe(0o755);
    expect(getcap(h.fake.binary)).toBe(`${h.fake.binary} cap_net_bind_service=ep`);
    expect(readFileSync(`${h.fake.binary}.previous`)).toEqual(cellsBinary('1.6.2'));
    // Stopped while the old binary was in place, started with the new one, which migrated the data.
    expect(logLines(h.fake.serviceLog)).toEqual(['stop Pydio Cells v1.6.2', 'start Pydio Cells v1.6.3']);
    expect(h.fake.state()).toEqual({ version: '1.6.3', data: '1.6.3', running: true, users: 'alice,bob' });
    // The backup holds the data as 1.6.2 left it.
    const backupId = upgrade.steps[1]?.result?.backupId ?? '';
    const archived = execFileSync(
      'tar',
      ['-xOf', path.join(h.backupDir, backupId, 'files.tar'), path.join(h.fake.dataDir, 'version').slice(1)],
      { encoding: 'utf8' },
    );
    expect(archived).toBe('1.6.2\n');

    expect(stepSummary(await h.host.run('verify'))).toEqual([ok('check-new-version')]);
    expect(await probeInstalled(cells, h.vars)).toBe('1.6.3');
  });

  it('verify checks that cells version reports the target, not only that it exits 0', async () => {
    const h = await cellsHost('stable', '1.6.3');
    const wrong = fakeHost({ recipe: cells, target: '1.6.30', installed: '1.6.2', vars: h.vars });
    const verify = await wrong.run('verify');
    expect(stepSummary(verify)).toEqual([['check-new-version', 'ran', false, 'STEP_FAILED']]);
    expect(verify.steps[0]?.result?.error?.message).toContain('does not report version 1.6.30');
  });

  it('refuses the rollback past the first start: the host is held with the backup id and the procedure', async () => {
    const h = await cellsHost('stable', '1.6.3');
    expect((await h.host.run('download')).ok).toBe(true);
    const upgrade = await h.host.run('upgrade');
    expect(upgrade.ok).toBe(true);
    const rollback = await h.host.run('rollback');
    expect(rollback.ok).toBe(false);
    expect(rollback.steps).toEqual([]);
    expect(rollback.pointOfNoReturn).toEqual({
      stepId: 'start-cells',
      backupId: upgrade.steps[1]?.result?.backupId,
      manualRecovery: expect.stringContaining('restore the data backup') as unknown,
    });
    // Nothing was touched: the new binary still runs on its migrated data.
    expect(h.fake.state()).toEqual({ version: '1.6.3', data: '1.6.3', running: true, users: 'alice,bob' });
    expect(logLines(h.fake.serviceLog)).toEqual(['stop Pydio Cells v1.6.2', 'start Pydio Cells v1.6.3']);
    // What an automatic rollback would have met: the old binary refuses the migrated data.
    const old = `${h.fake.binary}.previous`;
    expect(() => execFileSync(old, ['start'], { stdio: 'pipe' })).toThrow(/downgrading is not possible/);
  });

  it.each([
    ['a tampered binary (one flipped byte)', 'tampered', 'the signature does not verify'],
    ['an unsigned release (no .sig)', 'unsigned', 'does not exist (404): the artifact is not signed'],
    ['a release signed by another key', 'otherkey', 'the signature does not verify'],
  ])(
    'refuses %s at download: nothing staged, the installed binary untouched',
    async (_what, channel, why) => {
      const h = await cellsHost(channel, '1.6.3');
      const download = await h.host.run('download');
      expect(stepSummary(download)).toEqual([['stage-binary', 'ran', false, 'ARTIFACT_REJECTED']]);
      expect(download.steps[0]?.result?.error?.message).toContain(why);
      expect(h.staged()).toEqual([]);
      expect(readFileSync(h.fake.binary)).toEqual(cellsBinary('1.6.2'));
      expect(existsSync(`${h.fake.binary}.previous`)).toBe(false);
      expect(logLines(h.fake.serviceLog)).toEqual([]);
    },
  );

  it('refuses the correctly signed but older 1.6.1 at replace-binary; rollback starts 1.6.2 again', async () => {
    const h = await cellsHost('stable', '1.6.1');
    expect(stepSummary(await h.host.run('download'))).toEqual([ok('stage-binary')]);

    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([
      ok('stop-cells'),
      ok('backup-data'),
      ['replace-binary', 'ran', false, 'DOWNGRADE_REFUSED'],
    ]);
    expect(readFileSync(h.fake.binary)).toEqual(cellsBinary('1.6.2'));
    expect(existsSync(`${h.fake.binary}.previous`)).toBe(false);
    expect(getcap(h.fake.binary)).toBe('');

    const rollback = await h.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(
      ['stop-cells-for-rollback', 'restore-previous-binary', 'start-cells-again'].map(ok),
    );
    expect(h.fake.state()).toEqual({ version: '1.6.2', data: '1.6.2', running: true, users: 'alice,bob' });
  });

  it('puts the previous binary back with binary.restore when the upgrade fails before the first start', async () => {
    const h = await cellsHost('stable', '1.6.3');
    expect((await h.host.run('download')).ok).toBe(true);
    // replace-binary swaps the binary in, then reports failure (the worst case for the rollback).
    const upgrade = await h.host.run('upgrade', 'replace-binary');
    expect(stepSummary(upgrade)).toEqual([
      ...['stop-cells', 'backup-data'].map(ok),
      ['replace-binary', 'ran', false, 'STEP_FAILED'],
    ]);
    expect(readFileSync(h.fake.binary)).toEqual(cellsBinary('1.6.3'));

    const rollback = await h.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(
      ['stop-cells-for-rollback', 'restore-previous-binary', 'start-cells-again'].map(ok),
    );
    expect(rollback.steps[1]?.result?.outputTail).toContain('restored the previous');
    expect(readFileSync(h.fake.binary)).toEqual(cellsBinary('1.6.2'));
    expect(h.fake.state()).toEqual({ version: '1.6.2', data: '1.6.2', running: true, users: 'alice,bob' });
  });

  it('counts a start that failed as past the point: it may have migrated the data', async () => {
    const h = await cellsHost('stable', '1.6.3');
    expect((await h.host.run('download')).ok).toBe(true);
    const upgrade = await h.host.run('upgrade', 'start-cells');
    expect(stepSummary(upgrade)).toEqual([
      ...['stop-cells', 'backup-data', 'replace-binary'].map(ok),
      ['start-cells', 'ran', false, 'STEP_FAILED'],
    ]);
    const held = await h.host.run('rollback');
    expect(held.pointOfNoReturn?.stepId).toBe('start-cells');
    // An automatic rollback would have left nothing running: the data is already 1.6.3's.
    expect(h.fake.state()).toEqual({ version: '1.6.3', data: '1.6.3', running: true, users: 'alice,bob' });
  });

  it('without systemd and without a start command, refuses the phase before its first step', async () => {
    const h = await cellsHost('stable', '1.6.3', false);
    expect((await h.host.run('download')).ok).toBe(true);
    const upgrade = await h.host.run('upgrade');
    // start-cells is the step that cannot run; stop-cells, before it, never ran either.
    expect(stepSummary(upgrade)).toEqual([['start-cells', 'ran', false, 'SERVICE_COMMAND_MISSING']]);
    expect(upgrade.steps[0]?.result?.error?.message).toContain(
      'step start-cells: systemd is not running on this host and the step gives no command to start cells',
    );
    // Nothing ran: no backup, the old binary still running.
    expect(existsSync(h.backupDir)).toBe(false);
    expect(h.fake.state()).toEqual({ version: '1.6.2', data: '1.6.2', running: true, users: 'alice,bob' });
    expect(logLines(h.fake.serviceLog)).toEqual([]);
  });
});

describe('owncloud recipe (system update, checkpoint of code, config and database, occ as the owner of config.php)', () => {
  let apt: AptHost;
  let releasesDir: string;
  let releases: HttpRepo;

  beforeAll(async () => {
    apt = await createAptHost();
    await apt.publish('libfoo', '1.0.0');
    await apt.install(['libfoo=1.0.0']);
    await apt.publish('libfoo', '1.0.1');
    releasesDir = tempDir('owncloud-releases');
    // The release's occ is the same fake (a release ships its own occ).
    const template = createFakeOwncloud(scratch('owncloud-template'), '10.9.1.2');
    publishOwncloudRelease(releasesDir, '10.9.1.2', path.join(template.ocDir, 'occ'));
    publishOwncloudRelease(releasesDir, '10.10.0.1', path.join(template.ocDir, 'occ'));
    releases = new HttpRepo({ root: releasesDir });
    await releases.start();
  }, 120_000);
  afterAll(async () => {
    await releases.stop();
    rmSync(releasesDir, { recursive: true, force: true });
    await apt.cleanup();
  });

  /** ownCloud 10.8.0.4, run by the web user, with the status page and the recipe's vars. */
  async function owncloudHost(target = '10.9.1') {
    const dir = scratch('owncloud');
    const oc = createFakeOwncloud(dir, '10.8.0.4');
    const status = await healthServer(() => ({ code: 200, body: owncloudStatus(oc) }));
    const vars = {
      ocDir: oc.ocDir,
      occUser: WEB_USER.name,
      php: '/bin/sh',
      releaseUrl: releases.url,
      releaseIndex: `${releases.url}/index.html`,
      stageDir: path.join(dir, 'stage'),
      backupDir: path.join(dir, 'backups'),
      mysqldump: oc.mysqldump,
      mysql: oc.mysql,
      healthUrl: `${status.server.origin}/status.php`,
    };
    const installed = await probeInstalled(owncloud, vars);
    // The host's reboot-required flag (absent: the system update asks for no reboot) and boot id.
    const rebootFlag = path.join(dir, 'reboot-required');
    const bootIdFile = path.join(dir, 'boot_id');
    writeFileSync(bootIdFile, 'boot-1\n');
    const env = { ...apt.env, CONVOY_REBOOT_REQUIRED_FILE: rebootFlag, CONVOY_BOOT_ID_FILE: bootIdFile };
    const host = fakeHost({ recipe: owncloud, target, installed, vars, env });
    const calls = (): string[] => logLines(oc.log).filter((l) => !l.startsWith('status'));
    return { host, oc, vars, installed, calls, dir, rebootFlag, bootIdFile, env };
  }

  const OLD = {
    config: '10.8.0.4',
    code: '10.8.0.4',
    schema: '10.8.0.4',
    maintenance: false,
    users: 'alice,bob',
  };
  const NEW = {
    config: '10.9.1.2',
    code: '10.9.1.2',
    schema: '10.9.1.2',
    maintenance: false,
    users: 'alice,bob',
  };
  const UPGRADE = [
    'system-update',
    'maintenance-on',
    'checkpoint',
    'install-code',
    'upgrade-core',
    'upgrade-apps',
    'maintenance-off',
  ];

  it('occ refuses root, as ownCloud’s does: it runs as the owner of config.php', async () => {
    const h = await owncloudHost();
    const asRoot = await execOnHostSafe(['/bin/sh', path.join(h.oc.ocDir, 'occ'), 'status']);
    expect(asRoot).toMatchObject({ code: 1 });
    expect(asRoot.stderr).toContain(
      'Console has to be executed with the user that owns the file config/config.php',
    );
    expect(stepSummary(await h.host.run('check'))).toEqual([ok('check-status')]);
    expect(logLines(h.oc.log).at(-1)).toBe(`status [uid ${WEB_USER.uid}] [maintenance off]`);
  });

  it('lists the releases on the download server: latest resolves', async () => {
    const h = await owncloudHost();
    expect(h.installed).toBe('10.8.0');
    expect(await probeAvailable(owncloud, h.vars)).toEqual(['10.9.1', '10.10.0']);
  });

  it('updates the system, then installs 10.9.1 inside maintenance mode after a checkpoint', async () => {
    const h = await owncloudHost();
    const download = await h.host.run('download');
    expect(stepSummary(download)).toEqual([
      ok('refresh-system-lists'),
      ok('stage-system-update'),
      ['refresh-system-cache', 'skipped'],
      ['stage-system-update-rpm', 'skipped'],
      ok('fetch-release'),
      ok('fetch-checksum'),
      ok('verify-release'),
      ok('release-readable-by-occ-user'),
    ]);
    // Staged only: the code and the system are as they were.
    expect(h.oc.state()).toEqual(OLD);
    expect(await apt.installedVersion('libfoo')).toBe('1.0.0');

    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([
      ok('system-update'),
      ['system-update-rpm', 'skipped'],
      ok('reboot-if-needed'),
      ...UPGRADE.slice(1).map(ok),
    ]);
    expect(await apt.installedVersion('libfoo')).toBe('1.0.1');
    expect(h.oc.state()).toEqual(NEW);
    expect(existsSync(path.join(h.oc.ocDir, 'core/release-10.9.1.2.php'))).toBe(true);
    expect(readFileSync(h.oc.appsUpgraded, 'utf8').trim()).toBe('10.9.1.2');
    // Every occ call as the web user, the upgrade inside maintenance mode.
    expect(h.calls()).toEqual([
      `maintenance:mode --on [uid ${WEB_USER.uid}] [maintenance off]`,
      `upgrade --no-interaction [uid ${WEB_USER.uid}] [maintenance on]`,
      `market:upgrade --major [uid ${WEB_USER.uid}] [maintenance on]`,
      `maintenance:mode --off [uid ${WEB_USER.uid}] [maintenance on]`,
    ]);
    // The checkpoint: code and config archived, and the database dumped, before the new code.
    const step = upgrade.steps.find((s) => s.step.id === 'checkpoint');
    const backupDir = path.join(h.vars.backupDir, step?.result?.backupId ?? '');
    expect(readFileSync(path.join(backupDir, 'dump.sql'), 'utf8')).toBe('schema 10.8.0.4\nusers alice,bob\n');
    const archivedVersion = execFileSync(
      'tar',
      ['-xOf', path.join(backupDir, 'files.tar'), path.join(h.oc.ocDir, 'version.php').slice(1)],
      { encoding: 'utf8' },
    );
    expect(archivedVersion).toContain('array(10,8,0,4)');
    expect(await probeInstalled(owncloud, h.vars)).toBe('10.9.1');

    expect(stepSummary(await h.host.run('verify'))).toEqual(
      ['status-ok', 'no-pending-upgrade', 'check-version'].map(ok),
    );
  }, 120_000);

  it('rolls a failed occ upgrade back: code, config and database restored, maintenance off', async () => {
    const h = await owncloudHost();
    expect((await h.host.run('download')).ok).toBe(true);
    h.oc.failUpgrade(true);
    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([
      ok('system-update'),
      ['system-update-rpm', 'skipped'],
      ok('reboot-if-needed'),
      ...['maintenance-on', 'checkpoint', 'install-code'].map(ok),
      ['upgrade-core', 'ran', false, 'STEP_FAILED'],
    ]);
    expect(upgrade.steps[6]?.result?.outputTail).toContain('Database error');
    // Half-way: new code, the database and config.php migrated, in maintenance.
    expect(h.oc.state()).toEqual({ ...NEW, maintenance: true });

    const rollback = await h.host.run('rollback');
    expect(stepSummary(rollback)).toEqual([ok('restore-checkpoint'), ok('maintenance-off-after-failure')]);
    expect(rollback.steps[0]?.result?.outputTail).toContain('loaded the database dump');
    expect(h.oc.state()).toEqual(OLD);
    expect(await probeInstalled(owncloud, h.vars)).toBe('10.8.0');
    expect(existsSync(h.oc.appsUpgraded)).toBe(false);
    expect(statSync(h.oc.configFile).uid).toBe(WEB_USER.uid);
    // And the instance answers as in service, on 10.8.0.
    const back = fakeHost({ recipe: owncloud, target: '10.8.0', installed: '10.8.0', vars: h.vars });
    expect(stepSummary(await back.run('verify'))).toEqual(
      ['status-ok', 'no-pending-upgrade', 'check-version'].map(ok),
    );
  }, 120_000);

  it('a rollback before the checkpoint has nothing to restore and leaves maintenance off', async () => {
    const h = await owncloudHost();
    expect((await h.host.run('download')).ok).toBe(true);
    const upgrade = await h.host.run('upgrade', 'maintenance-on');
    expect(upgrade.ok).toBe(false);
    expect(h.oc.state()).toEqual({ ...OLD, maintenance: true });
    const rollback = await h.host.run('rollback');
    expect(stepSummary(rollback)).toEqual([ok('restore-checkpoint'), ok('maintenance-off-after-failure')]);
    expect(rollback.steps[0]?.result?.outputTail).toContain('nothing to restore');
    expect(h.oc.state()).toEqual(OLD);
  }, 120_000);

  it('an exec step naming a user the host does not have fails before running anything', async () => {
    const h = await owncloudHost();
    const nobody = fakeHost({
      recipe: owncloud,
      target: '10.9.1',
      installed: '10.8.0',
      vars: { ...h.vars, occUser: 'convoy-no-such-user' },
    });
    const check = await nobody.run('check');
    expect(stepSummary(check)).toEqual([['check-status', 'ran', false, 'EXEC_USER_UNKNOWN']]);
    expect(check.steps[0]?.result?.error?.message).toBe(
      'user "convoy-no-such-user" does not exist on this host',
    );
    expect(logLines(h.oc.log)).toEqual([]);
  });
});

/** Runs a program as the test's own user (root here), for what occ answers it. */
function execOnHostSafe(argv: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(argv[0] ?? '', argv.slice(1), (err, _stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stderr }),
    );
  });
}
