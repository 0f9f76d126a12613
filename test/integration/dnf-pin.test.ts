/**
 * The dnf step's pin and its way back, with the real dnf and rpm on a fake host (an installroot)
 * through the `yum` wrapper: a repository that also offers a newer major and a second release of
 * the target; exactly the target staged (asserted on dnf's cache) and installed from the cache
 * with the repository stopped (asserted with rpm -qa); the installed versions kept at download
 * time and reinstalled from local files alone.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { dnfExecutor } from '../../agent/steps/dnf';
import { previousDir } from '../../agent/steps/dnf-previous';
import type { DnfStep } from '../../shared/recipe/types';
import { createDnfHost, type DnfHost } from '../fixtures/dnf-host';
import { hostState, MACHINE_RPM_PATHS } from '../helpers/host-state';
import { stepBase, stepContext, type TestStepContext } from '../helpers/step-context';

jest.setTimeout(60_000);

const execFileAsync = promisify(execFile);

const KCM = ['kcm-guacamole', 'kcm-guacd'];
const OLD = ['kcm-guacamole-2.0.0-1', 'kcm-guacd-2.0.0-1'];
// kcm-guacamole has two releases of 2.1.0: the higher one (2.el9) belongs to the target.
const TARGET = ['kcm-guacamole-2.1.0-2.el9', 'kcm-guacd-2.1.0-1'];

function dnfStep(action: DnfStep['action'], extra: Partial<DnfStep> = {}): DnfStep {
  return {
    ...stepBase(`dnf-${action}`),
    type: 'dnf',
    action,
    packages: ['kcm-*'],
    command: 'yum',
    ...extra,
  };
}
const pinTo = (version: string): Partial<DnfStep> => ({ pin: { packages: ['kcm-*'], version } });
const stage = (version = '2.1.0') => ({ ...dnfStep('downloadOnly', pinTo(version)), id: 'stage-packages' });
const restore = () => dnfStep('restorePrevious', { fromStep: 'stage-packages' });

describe('dnf pin: a repository that also offers a newer major', () => {
  let host: DnfHost;
  let ctx: TestStepContext;
  const hostBefore = hostState(MACHINE_RPM_PATHS);
  const run = (s: DnfStep) => dnfExecutor.run(s, ctx);
  const installed = () => host.rpmQuery('kcm-*');
  const cachedNew = () => host.cachedRpms().filter((f) => !f.includes('-2.0.0-'));

  // 2.0.0 installed; then 2.1.0 (two releases of kcm-guacamole) and 3.0.0 published, and seen.
  beforeEach(async () => {
    host = await createDnfHost();
    ctx = stepContext({ env: host.env });
    for (const p of KCM) await host.publish(p, '2.0.0');
    await host.install(KCM);
    await host.publish('kcm-guacamole', '2.1.0', 0, '1');
    await host.publish('kcm-guacamole', '2.1.0', 0, '2.el9');
    await host.publish('kcm-guacd', '2.1.0');
    for (const p of KCM) await host.publish(p, '3.0.0');
    expect(await run(dnfStep('makecache'))).toMatchObject({ ok: true });
  });
  afterEach(async () => {
    ctx.cleanup();
    await host.cleanup();
  });
  afterAll(() => expect(hostState(MACHINE_RPM_PATHS)).toBe(hostBefore));

  it('lists the pinned target as the update, read as a release: versions are application versions', async () => {
    const listed = await run(dnfStep('listUpdates', pinTo('2.1.0')));
    expect(listed).toMatchObject({ ok: true, versions: ['2.1.0'] });
    expect(listed.data?.['packages']).toEqual([
      { name: 'kcm-guacamole', arch: 'noarch', version: '2.1.0-2.el9' },
      { name: 'kcm-guacd', arch: 'noarch', version: '2.1.0-1' },
    ]);
    // Unpinned, the newest is listed: 3.0.0, never "3.0.0-1" (a semver prerelease of 3.0.0).
    expect(await run(dnfStep('listUpdates'))).toMatchObject({ ok: true, versions: ['3.0.0'] });
  });

  it('stages exactly the target, installs it from the cache with the repository stopped, reads it back', async () => {
    const staged = await run(stage());
    expect(staged).toMatchObject({ ok: true, versions: ['2.1.0'] });
    expect(await installed()).toEqual(OLD);
    expect(cachedNew()).toEqual(TARGET.map((p) => `${p}.noarch.rpm`));

    const requests = host.repo.requestCount;
    await host.repo.stop();
    const upgraded = await run(dnfStep('upgrade', pinTo('2.1.0')));
    expect(upgraded).toMatchObject({ ok: true, versions: ['2.1.0'] });
    expect(await installed()).toEqual(TARGET);
    expect(upgraded.data?.['installed']).toEqual(
      expect.arrayContaining([
        { name: 'kcm-guacamole', version: '2.1.0-2.el9' },
        { name: 'kcm-guacd', version: '2.1.0-1' },
      ]),
    );
    expect(host.repo.requestCount).toBe(requests);
    expect(cachedNew()).toEqual(TARGET.map((p) => `${p}.noarch.rpm`));

    expect(await run(dnfStep('verifyPinned', pinTo('2.1.0')))).toMatchObject({
      ok: true,
      versions: ['2.1.0'],
    });
    const wrong = await run(dnfStep('verifyPinned', pinTo('3.0.0')));
    expect(wrong.error?.code).toBe('VERSION_MISMATCH');
    expect(wrong.error?.message).toBe(
      'pinned to 3.0.0: kcm-guacamole is at 2.1.0-2.el9, not 3.0.0; kcm-guacd is at 2.1.0-1, not 3.0.0',
    );
  });

  it('refuses a target the repository does not offer (TARGET_NOT_OFFERED), in the check and the download', async () => {
    const listed = await run(dnfStep('listUpdates', pinTo('2.2.0')));
    expect(listed.error).toEqual({
      code: 'TARGET_NOT_OFFERED',
      message:
        'the repository does not offer the pinned version of kcm-guacamole 2.2.0 (it offers 2.0.0, 2.1.0, 3.0.0); ' +
        'kcm-guacd 2.2.0 (it offers 2.0.0, 2.1.0, 3.0.0)',
    });
    const staged = await run(stage('2.2.0'));
    expect(staged.error?.code).toBe('TARGET_NOT_OFFERED');
    expect(cachedNew()).toEqual([]);
    expect(existsSync(previousDir(ctx.stateDir, 'stage-packages'))).toBe(false);
  });

  it('refuses to upgrade when the cache holds another version (STAGED_VERSION_MISMATCH), before rpm runs', async () => {
    // An unpinned download stages the newest: 3.0.0.
    expect(await run(dnfStep('downloadOnly'))).toMatchObject({ ok: true, versions: ['3.0.0'] });
    expect(cachedNew()).toEqual(['kcm-guacamole-3.0.0-1.noarch.rpm', 'kcm-guacd-3.0.0-1.noarch.rpm']);
    await host.repo.stop();

    const upgraded = await run(dnfStep('upgrade', pinTo('2.1.0')));
    expect(upgraded.error).toEqual({
      code: 'STAGED_VERSION_MISMATCH',
      message:
        'the package cache does not hold the pinned kcm-guacamole-2.1.0-2.el9.noarch, kcm-guacd-2.1.0-1.noarch (2.1.0); ' +
        'nothing was installed (run the download phase again for this target)',
    });
    expect(await installed()).toEqual(OLD);
  });
});

describe('dnf previous versions: kept at download, restored from local files only', () => {
  let host: DnfHost;
  let ctx: TestStepContext;
  const run = (s: DnfStep) => dnfExecutor.run(s, ctx);
  const installed = () => host.rpmQuery('kcm-*');
  const manifest = () =>
    JSON.parse(
      readFileSync(path.join(previousDir(ctx.stateDir, 'stage-packages'), 'manifest.json'), 'utf8'),
    ) as {
      name: string;
      version: string;
      file: string;
      sha256: string;
    }[];

  beforeEach(async () => {
    host = await createDnfHost();
    ctx = stepContext({ env: host.env });
    for (const p of KCM) await host.publish(p, '2.0.0');
    await host.install(KCM);
    for (const p of KCM) await host.publish(p, '2.1.0');
    await run(dnfStep('makecache'));
  });
  afterEach(async () => {
    ctx.cleanup();
    await host.cleanup();
  });

  it('keeps the installed RPMs, and restores them with the repository stopped; a second restore changes nothing', async () => {
    const before = host.repo.requestCount;
    expect(await run(stage())).toMatchObject({ ok: true });
    // The two new RPMs only: the old ones were copied from dnf's cache (keepcache kept them).
    expect(host.repo.requestCount - before).toBe(2);
    expect(manifest().map((k) => [k.name, k.version, k.file])).toEqual([
      ['kcm-guacamole', '2.0.0-1', 'kcm-guacamole-2.0.0-1.noarch.rpm'],
      ['kcm-guacd', '2.0.0-1', 'kcm-guacd-2.0.0-1.noarch.rpm'],
    ]);
    await host.repo.stop();
    const requests = host.repo.requestCount;
    expect(await run(dnfStep('upgrade', pinTo('2.1.0')))).toMatchObject({ ok: true });
    expect(await installed()).toEqual(['kcm-guacamole-2.1.0-1', 'kcm-guacd-2.1.0-1']);
    // dnf's own cache of the old RPMs is gone too: only the kept files can bring 2.0.0 back.
    host.dropCachedRpms((f) => f.includes('-2.0.0-'));

    const restored = await run(restore());
    expect(restored).toMatchObject({ ok: true, versions: ['2.0.0'] });
    expect(restored.outputTail).toMatch(/Downgraded:/);
    expect(await installed()).toEqual(OLD);
    expect(host.repo.requestCount).toBe(requests);

    const again = await run(restore());
    expect(again).toMatchObject({ ok: true, versions: ['2.0.0'], outputTail: '' });
    expect(await installed()).toEqual(OLD);
  });

  it('resumes an interrupted restore: only what is not back yet is reinstalled', async () => {
    expect(await run(stage())).toMatchObject({ ok: true });
    expect(await run(dnfStep('upgrade', pinTo('2.1.0')))).toMatchObject({ ok: true });
    await host.repo.stop();
    // As if the agent died after the restore had put kcm-guacd back, before kcm-guacamole.
    const kept = path.join(previousDir(ctx.stateDir, 'stage-packages'), 'kcm-guacd-2.0.0-1.noarch.rpm');
    await execFileAsync(path.join(host.binDir, 'yum'), ['-C', '--disablerepo=*', 'downgrade', '-y', kept]);
    expect(await installed()).toEqual(['kcm-guacamole-2.1.0-1', 'kcm-guacd-2.0.0-1']);

    const resumed = await run(restore());
    expect(resumed).toMatchObject({ ok: true, versions: ['2.0.0'] });
    expect(resumed.outputTail).toMatch(/Downgraded:\s+kcm-guacamole-2\.0\.0-1\.noarch\s*\n/);
    expect(await installed()).toEqual(OLD);
  });

  it('takes an installed RPM missing from the cache from the repository', async () => {
    host.dropCachedRpms((f) => f.includes('-2.0.0-'));
    const requests = host.repo.requestCount;
    expect(await run(stage())).toMatchObject({ ok: true });
    expect(host.repo.requestCount).toBeGreaterThanOrEqual(requests + 4); // two new, two old RPMs
    expect(manifest().map((k) => k.file)).toEqual([
      'kcm-guacamole-2.0.0-1.noarch.rpm',
      'kcm-guacd-2.0.0-1.noarch.rpm',
    ]);
    expect(manifest().every((k) => /^[0-9a-f]{64}$/.test(k.sha256))).toBe(true);
  });

  it('fails the download with PREVIOUS_UNAVAILABLE when neither the cache nor the repository has the installed version', async () => {
    host.dropCachedRpms((f) => f.includes('-2.0.0-'));
    await host.unpublish('kcm-guacd', '2.0.0');
    await run(dnfStep('makecache'));
    const staged = await run(stage());
    expect(staged.error?.code).toBe('PREVIOUS_UNAVAILABLE');
    expect(staged.error?.message).toMatch(
      /^the installed kcm-guacd-2\.0\.0-1\.noarch could not be kept: it is in neither yum's package cache nor the repository/,
    );
    expect(existsSync(path.join(previousDir(ctx.stateDir, 'stage-packages'), 'manifest.json'))).toBe(false);
  });

  it('refuses to restore without kept packages, or from a kept file that changed', async () => {
    expect((await run(restore())).error?.code).toBe('PREVIOUS_UNAVAILABLE');
    expect(await run(stage())).toMatchObject({ ok: true });
    expect(await run(dnfStep('upgrade', pinTo('2.1.0')))).toMatchObject({ ok: true });
    const file = path.join(previousDir(ctx.stateDir, 'stage-packages'), 'kcm-guacd-2.0.0-1.noarch.rpm');
    appendFileSync(file, 'x');
    const restored = await run(restore());
    expect(restored.error).toEqual({
      code: 'PREVIOUS_UNAVAILABLE',
      message: 'the kept kcm-guacd-2.0.0-1.noarch.rpm is missing or does not match its sha256',
    });
    expect(await installed()).toEqual(['kcm-guacamole-2.1.0-1', 'kcm-guacd-2.1.0-1']);
  });
});
