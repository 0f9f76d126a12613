/**
 * The built-in recipes passbolt, cells and owncloud, compiled from recipes/*.yaml as shipped, run
 * phase by phase (check, download, upgrade, verify, rollback) with the real step registry and a
 * real phase journal on fake hosts: a git clone of a fake passbolt, a signed fake `cells` binary
 * served over HTTP, a fake `occ`. Each test checks the host itself (HEAD, files, capabilities,
 * what the fake tools logged, what the health endpoints answered), not only the step results.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateKeyPair, signDetached, type KeyPair } from '../../shared/ed25519';
import { createGitAppRepo, type GitAppRepo } from '../fixtures/git-repo';
import { HttpRepo } from '../../scripts/fixtures/http-repo';
import {
  builtInRecipe,
  createFakeOcc,
  FakeHost,
  logLines,
  probeInstalled,
  shq,
  stepSummary,
  writeScript,
} from '../helpers/fake-apps';
import { tempDir } from '../helpers/processes';
import { sendJson, startServer, type TestServer } from './steps-http';

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

/** The backups `cake passbolt migrate --backup` made in a fake passbolt. */
function backupsIn(appDir: string): string[] {
  const dir = path.join(appDir, 'tmp/backups');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** recipes/passbolt.yaml's rollback: back to the tag installed before, inside maintenance. */
const PASSBOLT_ROLLBACK = [
  'site-down-for-rollback',
  'checkout-previous',
  'reinstall-libraries',
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

  /**
   * A passbolt site around a clone: the maintenance flag where the recipe's default puts it
   * relative to the app directory, a fake composer that records how it ran (and asks the
   * healthcheck what it answers meanwhile), a healthcheck that answers 503 while the flag exists.
   */
  async function passboltSite(appDir: string, target: string) {
    const dir = scratch('passbolt');
    const defaults = passbolt.vars;
    const flagInApp = path.relative(defaults['appDir'] ?? '', defaults['maintenanceFlag'] ?? '');
    const flag = flagInApp.startsWith('..')
      ? path.join(dir, path.basename(flagInApp))
      : path.join(appDir, flagInApp);
    const health = await healthServer(() =>
      existsSync(flag)
        ? { code: 503, body: { header: { status: 'error', message: 'maintenance' }, body: 'down' } }
        : { code: 200, body: { header: { status: 'success' }, body: 'OK' } },
    );
    const healthUrl = `${health.server.origin}/healthcheck/status.json`;
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
    // The installed 2.0.3 ran its migrations and has a warm cache (tmp/ is git-ignored).
    mkdirSync(path.join(appDir, 'tmp/cache/persistent'), { recursive: true });
    writeFileSync(path.join(appDir, 'tmp/migrations.applied'), '2.0.2.sh\n2.0.3.sh\n');
    writeFileSync(path.join(appDir, 'tmp/cache/persistent/myapp_cake_core_'), 'cached');
    const vars = { appDir, maintenanceFlag: flag, healthUrl, composer };
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
    expect(stepSummary(upgrade)).toEqual(
      [
        'mark-rollback-point',
        'site-down',
        'checkout-release',
        'update-libraries',
        'migrate',
        'keep-migrated-code',
        'clear-cache',
        'site-up',
      ].map(ok),
    );

    // HEAD is the tag of the release, the tree is that release and still clean.
    expect(await git(appDir, 'rev-parse', 'HEAD')).toBe(await git(appDir, 'rev-parse', 'v2.1.0^{commit}'));
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.1.0');
    expect(readFileSync(path.join(appDir, 'VERSION'), 'utf8').trim()).toBe('2.1.0');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    // composer ran in the app, on the new release, while the site was down and answering 503.
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.1.0 maintenance=on`,
      'health=503',
    ]);
    // migrate --backup: the list of applied migrations was saved first, then 2.1.0's migration ran.
    const backups = readdirSync(path.join(appDir, 'tmp/backups'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(path.join(appDir, 'tmp/backups', backups[0] ?? ''), 'utf8')).toBe(
      '2.0.2.sh\n2.0.3.sh\n',
    );
    expect(logLines(path.join(appDir, 'tmp/migrations.applied'))).toEqual([
      '2.0.2.sh',
      '2.0.3.sh',
      '2.1.0.sh',
    ]);
    expect(upgrade.steps[4]?.result?.outputTail).toContain('migrated to 2.1.0');
    // cache clear_all emptied the cache; the site is back.
    expect(readdirSync(path.join(appDir, 'tmp/cache'))).toEqual([]);
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
      ok('mark-rollback-point'),
      ok('site-down'),
      ['checkout-release', 'ran', false, 'DIRTY_TREE'],
    ]);
    expect(upgrade.steps[2]?.result?.error?.message).toContain('VERSION');
    // Down for maintenance until the rollback runs.
    expect(existsSync(site.flag)).toBe(true);
    expect((await fetch(site.healthUrl)).status).toBe(503);

    const rollback = await site.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(PASSBOLT_ROLLBACK.map(ok));
    expect(existsSync(site.flag)).toBe(false);
    expect((await fetch(site.healthUrl)).status).toBe(200);
    // Nothing else moved: HEAD on v2.0.3, the local change kept, cake never migrated; composer
    // only reinstalled the lock of the tree still checked out, while the site was down.
    expect(await git(appDir, 'describe', '--tags', '--exact-match')).toBe('v2.0.3');
    expect(readFileSync(path.join(appDir, 'VERSION'), 'utf8')).toBe('2.0.3-locally-patched\n');
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.0.3-locally-patched maintenance=on`,
      'health=503',
    ]);
    // No migrate --backup ran (any cake command makes the empty tmp/backups/).
    expect(backupsIn(appDir)).toEqual([]);
    expect(logLines(path.join(appDir, 'tmp/migrations.applied'))).toEqual(['2.0.2.sh', '2.0.3.sh']);
  });

  it('refuses to go back from 2.0.3 to 2.0.2, and rollback puts the site back online', async () => {
    const appDir = await repo.cloneAt('v2.0.3');
    const site = await passboltSite(appDir, '2.0.2');
    expect(site.installed).toBe('2.0.3');

    const upgrade = await site.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([
      ok('mark-rollback-point'),
      ok('site-down'),
      ['checkout-release', 'ran', false, 'DOWNGRADE_REFUSED'],
    ]);
    expect(stepSummary(await site.host.run('rollback'))).toEqual(PASSBOLT_ROLLBACK.map(ok));
    expect(existsSync(site.flag)).toBe(false);
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.0.3');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    // The libraries of the release still installed, reinstalled as they were; no migration.
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.0.3 maintenance=on`,
      'health=503',
    ]);
    // No migrate --backup ran (any cake command makes the empty tmp/backups/).
    expect(backupsIn(appDir)).toEqual([]);
  });

  it('rolls a failed migration back to 2.0.3: its tag, its libraries, a cleared cache, the site up', async () => {
    const appDir = await repo.cloneAt('v2.0.3');
    const site = await passboltSite(appDir, '2.1.0');
    expect(stepSummary(await site.host.run('download'))).toEqual([ok('stage-tags')]);
    // The fake cake's knob, read from the environment the agent runs its steps with.
    process.env['CAKE_FAIL_MIGRATE'] = '1';
    const upgrade = await site.host.run('upgrade').finally(() => delete process.env['CAKE_FAIL_MIGRATE']);
    expect(stepSummary(upgrade)).toEqual([
      ok('mark-rollback-point'),
      ok('site-down'),
      ok('checkout-release'),
      ok('update-libraries'),
      ['migrate', 'ran', false, 'STEP_FAILED'],
    ]);
    // Left on the new tag with its libraries, its migration not applied, the site down.
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.1.0');
    expect(existsSync(site.flag)).toBe(true);
    writeFileSync(path.join(appDir, 'tmp/cache/persistent/myapp_cake_core_'), 'cached by 2.1.0');

    const rollback = await site.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(PASSBOLT_ROLLBACK.map(ok));
    // The tag installed before, clean; composer ran again on it, while the site was down.
    expect(await git(appDir, 'rev-parse', 'HEAD')).toBe(await git(appDir, 'rev-parse', 'v2.0.3^{commit}'));
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.0.3');
    expect(readFileSync(path.join(appDir, 'VERSION'), 'utf8').trim()).toBe('2.0.3');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    expect(logLines(site.composerLog)).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.1.0 maintenance=on`,
      'health=503',
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.0.3 maintenance=on`,
      'health=503',
    ]);
    expect(logLines(path.join(appDir, 'tmp/migrations.applied'))).toEqual(['2.0.2.sh', '2.0.3.sh']);
    // 2.1.0's model cache is gone; the site is back, healthy.
    expect(readdirSync(path.join(appDir, 'tmp/cache'))).toEqual([]);
    expect(existsSync(site.flag)).toBe(false);
    expect((await fetch(site.healthUrl)).status).toBe(200);
  }, 60_000);

  it('keeps 2.1.0 when the rollback comes after its migration ran: the code stays with the database', async () => {
    const appDir = await repo.cloneAt('v2.0.3');
    const site = await passboltSite(appDir, '2.1.0');
    expect(stepSummary(await site.host.run('download'))).toEqual([ok('stage-tags')]);
    expect((await site.host.run('upgrade')).ok).toBe(true);

    // As after a failed verify: the rollback of a complete upgrade.
    const rollback = await site.host.run('rollback');
    expect(stepSummary(rollback)).toEqual(PASSBOLT_ROLLBACK.map(ok));
    expect(await probeInstalled(passbolt, { appDir })).toBe('2.1.0');
    expect(await git(appDir, 'status', '--porcelain')).toBe('');
    expect(logLines(path.join(appDir, 'tmp/migrations.applied'))).toEqual([
      '2.0.2.sh',
      '2.0.3.sh',
      '2.1.0.sh',
    ]);
    expect(logLines(site.composerLog).filter((l) => l.startsWith('args='))).toEqual([
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.1.0 maintenance=on`,
      `args=install --no-dev --no-interaction cwd=${appDir} release=2.1.0 maintenance=on`,
    ]);
    expect(existsSync(site.flag)).toBe(false);
    expect((await fetch(site.healthUrl)).status).toBe(200);
  }, 60_000);
});

describe('cells recipe (signed single binary, setcap, no downgrade)', () => {
  const releaseKey = generateKeyPair();
  const otherKey = generateKeyPair();
  const cellsBinary = (version: string): Buffer => Buffer.from(`#!/bin/sh\necho "Pydio Cells v${version}"\n`);
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

  /** A host running cells 1.6.2 from a temp directory, with stop/start commands that log the version. */
  async function cellsHost(channel: string, target: string) {
    const dir = scratch('cells');
    const binary = path.join(dir, 'opt/pydio/bin/cells');
    writeScript(binary, cellsBinary('1.6.2').toString());
    const serviceLog = path.join(dir, 'service.log');
    const service = (action: string): string =>
      writeScript(
        path.join(dir, `${action}-cells`),
        `#!/bin/sh\necho "${action} $(${shq(binary)} version)" >> ${shq(serviceLog)}\n`,
      );
    const vars = {
      binary,
      releaseUrl: `${releases.url}/${channel}`,
      stopCommand: service('stop'),
      startCommand: service('start'),
    };
    const installed = await probeInstalled(cells, vars);
    const host = fakeHost({ recipe: cells, target, installed, vars, releaseKeys: [releaseKey.publicKey] });
    const staged = (): string[] => (existsSync(host.stagingDir) ? readdirSync(host.stagingDir) : []);
    return { host, binary, serviceLog, installed, staged };
  }

  const getcap = (file: string): string => execFileSync('getcap', [file], { encoding: 'utf8' }).trim();

  it('stages the signed 1.6.3, then swaps it in with setcap between stop and start', async () => {
    const h = await cellsHost('stable', '1.6.3');
    expect(h.installed).toBe('1.6.2');
    expect(stepSummary(await h.host.run('check'))).toEqual([ok('check-version')]);

    const download = await h.host.run('download');
    expect(stepSummary(download)).toEqual([ok('stage-binary')]);
    expect(h.staged()).toEqual(['cells']);
    expect(readFileSync(path.join(h.host.stagingDir, 'cells'))).toEqual(cellsBinary('1.6.3'));
    expect(readFileSync(h.binary)).toEqual(cellsBinary('1.6.2'));

    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([ok('stop-cells'), ok('replace-binary'), ok('start-cells')]);
    expect(readFileSync(h.binary)).toEqual(cellsBinary('1.6.3'));
    expect(statSync(h.binary).mode & 0o777).toBe(0o755);
    expect(getcap(h.binary)).toBe(`${h.binary} cap_net_bind_service=ep`);
    expect(readFileSync(`${h.binary}.previous`)).toEqual(cellsBinary('1.6.2'));
    expect(execFileSync(h.binary, ['version'], { encoding: 'utf8' })).toBe('Pydio Cells v1.6.3\n');
    // Stopped while the old binary was in place, started with the new one.
    expect(logLines(h.serviceLog)).toEqual(['stop Pydio Cells v1.6.2', 'start Pydio Cells v1.6.3']);

    expect(stepSummary(await h.host.run('verify'))).toEqual([ok('check-new-version')]);
    expect(await probeInstalled(cells, { binary: h.binary })).toBe('1.6.3');
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
      expect(readFileSync(h.binary)).toEqual(cellsBinary('1.6.2'));
      expect(existsSync(`${h.binary}.previous`)).toBe(false);
      expect(logLines(h.serviceLog)).toEqual([]);
    },
  );

  it('refuses the correctly signed but older 1.6.1 at replace-binary; rollback starts cells again', async () => {
    const h = await cellsHost('stable', '1.6.1');
    expect(stepSummary(await h.host.run('download'))).toEqual([ok('stage-binary')]);

    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([
      ok('stop-cells'),
      ['replace-binary', 'ran', false, 'DOWNGRADE_REFUSED'],
    ]);
    expect(readFileSync(h.binary)).toEqual(cellsBinary('1.6.2'));
    expect(existsSync(`${h.binary}.previous`)).toBe(false);
    expect(existsSync(`${h.binary}.new`)).toBe(false);
    expect(getcap(h.binary)).toBe('');

    expect(stepSummary(await h.host.run('rollback'))).toEqual([ok('start-cells-again')]);
    expect(logLines(h.serviceLog)).toEqual(['stop Pydio Cells v1.6.2', 'start Pydio Cells v1.6.2']);
  });
});

describe('owncloud recipe (maintenance mode, checkpoint, occ upgrade, apps)', () => {
  /** A packaged ownCloud 10.8.0 whose package manager already deployed the 10.9.1 code. */
  async function owncloudHost() {
    const dir = scratch('owncloud');
    const occ = createFakeOcc(dir, '10.8.0.4');
    const status = await healthServer(() => ({
      code: 200,
      body: { installed: true, maintenance: existsSync(occ.maintenanceFlag), needsDbUpgrade: false },
    }));
    const backupDir = path.join(dir, 'backups');
    const vars = {
      occ: occ.occ,
      dataDir: occ.configDir,
      backupDir,
      healthUrl: `${status.server.origin}/status.php`,
    };
    const installed = await probeInstalled(owncloud, vars);
    occ.deployCode('10.9.1.2');
    const host = fakeHost({ recipe: owncloud, target: '10.9.1', installed, vars });
    const calls = (): string[] => logLines(occ.log).filter((l) => !l.startsWith('status'));
    return { host, occ, backupDir, installed, vars, calls };
  }

  it('upgrades 10.8.0 to 10.9.1 inside maintenance mode, after a checkpoint', async () => {
    const h = await owncloudHost();
    expect(h.installed).toBe('10.8.0');
    const configBefore = readFileSync(h.occ.configFile, 'utf8');
    expect(stepSummary(await h.host.run('check'))).toEqual([ok('check-status')]);
    expect(stepSummary(await h.host.run('download'))).toEqual([]);

    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual(
      ['maintenance-on', 'checkpoint', 'upgrade-core', 'upgrade-apps', 'maintenance-off'].map(ok),
    );
    expect(h.calls()).toEqual([
      'maintenance:mode --on [maintenance off]',
      'upgrade --no-interaction [maintenance on]',
      'market:upgrade --major [maintenance on]',
      'maintenance:mode --off [maintenance on]',
    ]);
    expect(existsSync(h.occ.maintenanceFlag)).toBe(false);
    // The checkpoint: a backup with an id, holding the config as it was before the upgrade.
    const backupId = upgrade.steps[1]?.result?.backupId ?? '';
    expect(backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(readdirSync(h.backupDir)).toEqual([backupId]);
    const archive = path.join(h.backupDir, backupId, 'files.tar');
    expect(existsSync(path.join(h.backupDir, backupId, 'manifest.json'))).toBe(true);
    const archived = execFileSync('tar', ['-xOf', archive, h.occ.configFile.replace(/^\//, '')], {
      encoding: 'utf8',
    });
    expect(archived).toBe(configBefore);
    // Upgraded: core and apps.
    expect(await probeInstalled(owncloud, h.vars)).toBe('10.9.1');
    expect(readFileSync(h.occ.appsUpgraded, 'utf8').trim()).toBe('10.9.1.2');

    expect(stepSummary(await h.host.run('verify'))).toEqual([ok('status-ok')]);
  });

  it('rolls a failed occ upgrade back: the checkpoint restored, maintenance off', async () => {
    const h = await owncloudHost();
    const configBefore = readFileSync(h.occ.configFile, 'utf8');
    h.occ.failUpgrade(true);

    const upgrade = await h.host.run('upgrade');
    expect(stepSummary(upgrade)).toEqual([
      ok('maintenance-on'),
      ok('checkpoint'),
      ['upgrade-core', 'ran', false, 'STEP_FAILED'],
    ]);
    expect(upgrade.steps[2]?.result?.outputTail).toContain('Database error');
    // Half-way: the config already names the new version, and the instance is in maintenance.
    expect(readFileSync(h.occ.configFile, 'utf8')).toContain("'version' => '10.9.1.2'");
    expect(existsSync(h.occ.maintenanceFlag)).toBe(true);

    const rollback = await h.host.run('rollback');
    expect(stepSummary(rollback)).toEqual([ok('restore-checkpoint'), ok('maintenance-off-after-failure')]);
    expect(rollback.steps[0]?.result?.backupId).toBe(upgrade.steps[1]?.result?.backupId);
    expect(readFileSync(h.occ.configFile, 'utf8')).toBe(configBefore);
    expect(existsSync(h.occ.maintenanceFlag)).toBe(false);
    expect(await probeInstalled(owncloud, h.vars)).toBe('10.8.0');
    expect(existsSync(h.occ.appsUpgraded)).toBe(false);
    expect(h.calls()).toEqual([
      'maintenance:mode --on [maintenance off]',
      'upgrade --no-interaction [maintenance on]',
      'maintenance:mode --off [maintenance on]',
    ]);
    // And the instance answers as in service again.
    expect(stepSummary(await h.host.run('verify'))).toEqual([ok('status-ok')]);
  });
});
