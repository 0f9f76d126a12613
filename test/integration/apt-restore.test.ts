/**
 * The apt step's way back with the real tools on a fake host: downloadOnly keeps the installed
 * versions (from the archive cache, the repository, or rebuilt by dpkg-repack), and
 * restorePrevious reinstalls them from local files with the repository stopped, changes nothing
 * when run again, and finishes a run killed inside dpkg. Versions are read from dpkg's database.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { aptExecutor } from '../../agent/steps/apt';
import type { AptStep } from '../../shared/recipe/types';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import { hostState, MACHINE_APT_PATHS } from '../helpers/host-state';
import { tempDir } from '../helpers/processes';
import { assertTools } from '../helpers/require-tool';
import { stepBase, stepContext, type TestStepContext } from '../helpers/step-context';

// Each case builds a host and runs several front-end commands; the machine is shared.
jest.setTimeout(120_000);

const APP = ['bm-core', 'bm-webmail'];
const STAGE_ID = 'stage-packages';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe.each(['apt-get', 'aptitude'] as const)('apt restorePrevious with %s', (frontend) => {
  let host: AptHost;
  let ctx: TestStepContext;
  const hostBefore = hostState(MACHINE_APT_PATHS);

  const step = (action: AptStep['action'], id: string = `apt-${action}`): AptStep => ({
    ...stepBase(id),
    type: 'apt',
    action,
    packages: [],
    frontend,
    ...(action === 'restorePrevious' ? { fromStep: STAGE_ID } : {}),
    ...(action === 'downloadOnly' || action === 'upgrade'
      ? { pin: { packages: ['bm-*'], version: '1.1.0' } }
      : {}),
  });
  // One state directory for the whole case: what the download keeps, the restore reads.
  const run = (s: AptStep) => aptExecutor.run(s, ctx);
  const installed = async () => Promise.all(APP.map((p) => host.installedVersion(p)));
  const keptDir = () => path.join(ctx.stateDir, 'previous-packages', STAGE_ID);
  const manifest = () =>
    JSON.parse(readFileSync(path.join(keptDir(), 'manifest.json'), 'utf8')) as {
      name: string;
      sha256: string;
    }[];
  const archives = () => path.join(host.root, 'var/cache/apt/archives');
  const dbFiles = () =>
    ['var/lib/dpkg/status', 'var/log/dpkg.log'].map((f) => readFileSync(path.join(host.root, f), 'utf8'));

  /** 1.0.0 installed (postinst as given), 1.1.0 and 2.0.0 published, lists updated. */
  async function prepare(postinst?: string): Promise<void> {
    for (const pkg of APP)
      await host.publish(pkg, '1.0.0', pkg === 'bm-core' && postinst ? { postinst } : {});
    await host.install(APP.map((p) => `${p}=1.0.0`));
    for (const pkg of APP) for (const v of ['1.1.0', '2.0.0']) await host.publish(pkg, v);
    expect(await run(step('update'))).toMatchObject({ ok: true });
  }

  /** Stages (keeping 1.0.0), upgrades to 1.1.0, stops the repository. */
  async function upgradeThenStopRepo(): Promise<void> {
    const staged = await run(step('downloadOnly', STAGE_ID));
    expect(staged).toMatchObject({ ok: true });
    expect(staged.data?.['previous']).toEqual(APP.map((name) => ({ name, version: '1.0.0' })));
    expect(await run(step('upgrade'))).toMatchObject({ ok: true, versions: ['1.1.0'] });
    expect(await installed()).toEqual(['1.1.0', '1.1.0']);
    await host.repo.stop();
  }

  beforeAll(() => assertTools('aptitude', 'dpkg-repack'));
  beforeEach(async () => {
    host = await createAptHost();
    ctx = stepContext({ env: host.env });
  });
  afterEach(async () => {
    ctx.cleanup();
    await host.cleanup();
  });
  afterAll(() => expect(hostState(MACHINE_APT_PATHS)).toBe(hostBefore));

  it('brings 1.0.0 back from the files kept out of the archive cache, offline; a second run changes nothing', async () => {
    await prepare();
    await upgradeThenStopRepo();
    // The kept files are the very .debs the repository published (they came from the cache).
    expect(manifest().map((m) => m.sha256)).toEqual(
      APP.map((p) => sha256(path.join(host.pool, `${p}_1.0.0_all.deb`))),
    );

    const restored = await run(step('restorePrevious'));
    expect(restored).toMatchObject({ ok: true, versions: ['1.0.0'] });
    expect(restored.data).toEqual({
      installed: APP.map((name) => ({ name, version: '1.0.0' })),
      restored: APP,
    });
    expect(await installed()).toEqual(['1.0.0', '1.0.0']);
    expect(readFileSync(path.join(host.root, 'opt/bm-core/VERSION'), 'utf8')).toBe('1.0.0\n');

    const before = dbFiles();
    const again = await run(step('restorePrevious'));
    expect(again).toMatchObject({ ok: true, versions: ['1.0.0'], data: { restored: [] } });
    expect(dbFiles()).toEqual(before);
  });

  it('keeps the old version from the repository when the cache no longer has it', async () => {
    await prepare();
    for (const p of APP) rmSync(path.join(archives(), `${p}_1.0.0_all.deb`));
    await upgradeThenStopRepo();
    expect(manifest().map((m) => m.sha256)).toEqual(
      APP.map((p) => sha256(path.join(host.pool, `${p}_1.0.0_all.deb`))),
    );
    expect(await run(step('restorePrevious'))).toMatchObject({ ok: true, versions: ['1.0.0'] });
    expect(await installed()).toEqual(['1.0.0', '1.0.0']);
  });

  it('rebuilds with dpkg-repack a version in neither the cache nor the repository', async () => {
    await prepare();
    for (const p of APP) {
      rmSync(path.join(archives(), `${p}_1.0.0_all.deb`));
      await host.unpublish(p, '1.0.0');
    }
    expect(await run(step('update'))).toMatchObject({ ok: true });
    await upgradeThenStopRepo();
    // Rebuilt from the installed files: the same package, another file.
    const kept = manifest();
    expect(kept.map((m) => m.name)).toEqual(APP);
    for (const m of kept) expect(existsSync(path.join(host.pool, `${m.name}_1.0.0_all.deb`))).toBe(false);

    expect(await run(step('restorePrevious'))).toMatchObject({ ok: true, versions: ['1.0.0'] });
    expect(await installed()).toEqual(['1.0.0', '1.0.0']);
    expect(readFileSync(path.join(host.root, 'opt/bm-webmail/VERSION'), 'utf8')).toBe('1.0.0\n');
  });

  it('finishes a restore whose dpkg was killed in the middle', async () => {
    // bm-core 1.0.0's postinst stalls while $DPKG_ROOT/slow exists, saying who it and dpkg are.
    const postinst =
      'if [ -e "$DPKG_ROOT/slow" ]; then echo "$$ $PPID" > "$DPKG_ROOT/in-postinst"; exec sleep 60; fi';
    await prepare(postinst);
    await upgradeThenStopRepo();
    writeFileSync(path.join(host.root, 'slow'), '');

    const first = run(step('restorePrevious'));
    const marker = path.join(host.root, 'in-postinst');
    for (let i = 0; i < 600 && !existsSync(marker); i++) await sleep(50);
    const [script, dpkg] = readFileSync(marker, 'utf8').trim().split(' ').map(Number);
    process.kill(dpkg ?? 0, 'SIGKILL');
    process.kill(script ?? 0, 'SIGKILL');
    expect((await first).ok).toBe(false);
    expect(await host.installedVersion('bm-core')).toBeUndefined(); // half-configured, not "ii"

    rmSync(path.join(host.root, 'slow'));
    const second = await run(step('restorePrevious'));
    expect(second).toMatchObject({ ok: true, versions: ['1.0.0'] });
    expect(await installed()).toEqual(['1.0.0', '1.0.0']);
  });
});

describe('apt downloadOnly when no source has the previous version', () => {
  it('fails PREVIOUS_UNAVAILABLE and writes no manifest', async () => {
    const host = await createAptHost();
    // The apt tools, but no dpkg-repack: the last source is gone too.
    const bin = tempDir('no-repack');
    for (const tool of ['apt-get', 'apt-config', 'apt-cache', 'dpkg', 'dpkg-query', 'dpkg-deb'])
      symlinkSync(`/usr/bin/${tool}`, path.join(bin, tool));
    const ctx = stepContext({ env: { ...host.env, PATH: bin } });
    try {
      await host.publish('bm-core', '1.0.0');
      await host.install(['bm-core=1.0.0']);
      await host.publish('bm-core', '1.1.0');
      await host.unpublish('bm-core', '1.0.0');
      rmSync(path.join(host.root, 'var/cache/apt/archives/bm-core_1.0.0_all.deb'));
      const step = (action: AptStep['action']): AptStep => ({
        ...stepBase(STAGE_ID),
        type: 'apt',
        action,
        packages: [],
        frontend: 'apt-get',
        ...(action === 'downloadOnly' ? { pin: { packages: ['bm-*'], version: '1.1.0' } } : {}),
      });
      expect(await aptExecutor.run(step('update'), ctx)).toMatchObject({ ok: true });

      const staged = await aptExecutor.run(step('downloadOnly'), ctx);
      expect(staged.error).toEqual({
        code: 'PREVIOUS_UNAVAILABLE',
        message:
          'cannot keep bm-core 1.0.0 for the way back: not in the archive cache, not offered by the repository, and dpkg-repack could not rebuild it',
      });
      expect(existsSync(path.join(ctx.stateDir, 'previous-packages', STAGE_ID, 'manifest.json'))).toBe(false);
      expect(await host.installedVersion('bm-core')).toBe('1.0.0');
    } finally {
      ctx.cleanup();
      await host.cleanup();
    }
  });
});
