/**
 * The apt step with the real apt-get and aptitude on a fake host (an isolated root through
 * APT_CONFIG) and a real HTTP repository. Asserts on dpkg's database and the archive cache: a
 * download leaves the installed version alone, and an upgrade installs only what was staged.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aptExecutor } from '../../agent/steps/apt';
import type { AptStep } from '../../shared/recipe/types';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import { hostState, MACHINE_APT_PATHS } from '../helpers/host-state';
import { runStep, stepBase } from '../helpers/step-context';

jest.setTimeout(30_000);

const PACKAGES = ['bm-core', 'bm-plugin-webserver'];

describe.each(['apt-get', 'aptitude'] as const)('apt step with %s', (frontend) => {
  let host: AptHost;
  const hostBefore = hostState(MACHINE_APT_PATHS);

  const step = (action: AptStep['action'], packages: readonly string[] = []): AptStep => ({
    ...stepBase(`apt-${action}`),
    type: 'apt',
    action,
    packages,
    frontend,
  });
  const run = (s: AptStep) => runStep(aptExecutor, s, { env: host.env });
  const installed = async () => Promise.all(PACKAGES.map((p) => host.installedVersion(p)));

  // Every test starts from a host with 4.0.0 installed and 4.1.0 published but not yet seen.
  beforeEach(async () => {
    host = await createAptHost();
    for (const pkg of PACKAGES) await host.publish(pkg, '4.0.0');
    await host.install(PACKAGES.map((p) => `${p}=4.0.0`));
    for (const pkg of PACKAGES) await host.publish(pkg, '4.1.0');
  });
  afterEach(() => host.cleanup());
  afterAll(() => expect(hostState(MACHINE_APT_PATHS)).toBe(hostBefore));

  it('stages 4.1.0 without installing it, then upgrades from the cache with the repository stopped', async () => {
    expect(await run(step('update'))).toMatchObject({ ok: true, exitCode: 0 });

    const listed = await run(step('listUpgradable'));
    expect(listed).toMatchObject({ ok: true, versions: ['4.1.0'] });
    expect(listed.data?.['packages']).toEqual(PACKAGES.map((name) => ({ name, from: '4.0.0', to: '4.1.0' })));

    const staged = await run(step('downloadOnly'));
    expect(staged).toMatchObject({ ok: true, versions: ['4.1.0'] });
    expect(await installed()).toEqual(['4.0.0', '4.0.0']);
    expect(host.cachedDebs()).toEqual(expect.arrayContaining(PACKAGES.map((p) => `${p}_4.1.0_all.deb`)));

    const requests = host.repo.requestCount;
    await host.repo.stop();
    const upgraded = await run(step('upgrade'));
    expect(upgraded).toMatchObject({ ok: true, exitCode: 0, versions: ['4.1.0'] });
    expect(await installed()).toEqual(['4.1.0', '4.1.0']);
    expect(host.repo.requestCount).toBe(requests);
  });

  it('refuses to upgrade what was not staged, with the repository up or down, and keeps 4.0.0', async () => {
    expect(await run(step('update'))).toMatchObject({ ok: true });

    // Up: the step must refuse to download, not merely fail to.
    const requests = host.repo.requestCount;
    const whileUp = await run(step('upgrade'));
    expect(whileUp.ok).toBe(false);
    expect(whileUp.error?.code).toBe('STAGED_CACHE_INCOMPLETE');
    expect(host.repo.requestCount).toBe(requests);

    await host.repo.stop();
    const whileDown = await run(step('upgrade'));
    expect(whileDown.error).toEqual({
      code: 'STAGED_CACHE_INCOMPLETE',
      message: `${frontend} upgrade needs packages that are not in the archive cache; nothing was installed (run the download phase first, or again if the repository changed since)`,
    });
    expect(whileDown.outputTail).not.toBe('');
    expect(await installed()).toEqual(['4.0.0', '4.0.0']);
    expect(host.cachedDebs().filter((f) => f.includes('4.1.0'))).toEqual([]);
  });

  it('stages and upgrades only the packages named', async () => {
    await run(step('update'));
    expect(await run(step('downloadOnly', ['bm-core']))).toMatchObject({ ok: true, versions: ['4.1.0'] });
    expect(host.cachedDebs().filter((f) => f.includes('4.1.0'))).toEqual(['bm-core_4.1.0_all.deb']);

    await host.repo.stop();
    expect(await run(step('upgrade', ['bm-core']))).toMatchObject({ ok: true, versions: ['4.1.0'] });
    expect(await installed()).toEqual(['4.1.0', '4.0.0']);
    // The whole-system upgrade would need bm-plugin-webserver, which was never staged.
    expect((await run(step('upgrade'))).error?.code).toBe('STAGED_CACHE_INCOMPLETE');
  });

  it('finishes an interrupted dpkg run before upgrading (resume)', async () => {
    await run(step('update'));
    await run(step('downloadOnly'));
    await host.repo.stop();
    // What a dpkg killed mid-run leaves: a pending journal entry; apt refuses until it is applied.
    writeFileSync(path.join(host.root, 'var/lib/dpkg/updates/0000'), '');

    expect(await run(step('upgrade'))).toMatchObject({ ok: true, versions: ['4.1.0'] });
    expect(await installed()).toEqual(['4.1.0', '4.1.0']);
    expect(existsSync(path.join(host.root, 'var/lib/dpkg/updates/0000'))).toBe(false);
  });
});
