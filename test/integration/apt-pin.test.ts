/**
 * The apt step's `pin` with the real apt-get and aptitude on a fake host (an isolated root through
 * APT_CONFIG) and a real HTTP repository that offers the target and a newer major: the download
 * stages the target only, the upgrade installs it and nothing newer (read from dpkg's database),
 * and every way of not reaching exactly the target is refused by its own code.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { aptExecutor } from '../../agent/steps/apt';
import type { AptStep, PackagePin } from '../../shared/recipe/types';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import { hostState, MACHINE_APT_PATHS } from '../helpers/host-state';
import { runStep, stepBase } from '../helpers/step-context';

// Each case builds a host and runs several front-end commands; the machine is shared.
jest.setTimeout(90_000);

const APP = ['bm-core', 'bm-webmail'];
const OTHER = 'libother';
const PIN: PackagePin = { packages: ['bm-*'], version: '1.1.0' };

describe.each(['apt-get', 'aptitude'] as const)('apt pin with %s', (frontend) => {
  let host: AptHost;
  const hostBefore = hostState(MACHINE_APT_PATHS);

  const step = (action: AptStep['action'], pin: PackagePin | null = PIN): AptStep => ({
    ...stepBase(`apt-${action}`),
    type: 'apt',
    action,
    packages: [],
    frontend,
    ...(pin === null ? {} : { pin }),
  });
  const run = (s: AptStep) => runStep(aptExecutor, s, { env: host.env });
  const installed = async () => Promise.all([...APP, OTHER].map((p) => host.installedVersion(p)));
  const dpkgStatus = () => readFileSync(path.join(host.root, 'var/lib/dpkg/status'), 'utf8');

  // 1.0.0 installed; the repository offers 1.1.0 (the target) and 2.0.0 (a newer major); another
  // package of the system has an update of its own, which a whole-system upgrade still takes.
  beforeEach(async () => {
    host = await createAptHost();
    for (const pkg of [...APP, OTHER]) await host.publish(pkg, '1.0.0');
    await host.install([...APP, OTHER].map((p) => `${p}=1.0.0`));
    for (const pkg of APP) for (const v of ['1.1.0', '2.0.0']) await host.publish(pkg, v);
    await host.publish(OTHER, '1.5.0');
    expect(await run(step('update', null))).toMatchObject({ ok: true });
  });
  afterEach(() => host.cleanup());
  afterAll(() => expect(hostState(MACHINE_APT_PATHS)).toBe(hostBefore));

  it('stages 1.1.0 only and installs it with the repository stopped, nothing newer; other packages still upgrade', async () => {
    // Without the pin the front end would take 2.0.0: the repository really offers it.
    expect((await run(step('listUpgradable', null))).versions).toContain('2.0.0');

    const listed = await run(step('listUpgradable'));
    expect(listed).toMatchObject({ ok: true, versions: ['1.1.0'] });

    const staged = await run(step('downloadOnly'));
    expect(staged).toMatchObject({ ok: true, versions: ['1.1.0'] });
    expect(host.cachedDebs().filter((f) => !f.includes('_1.0.0_'))).toEqual([
      'bm-core_1.1.0_all.deb',
      'bm-webmail_1.1.0_all.deb',
      'libother_1.5.0_all.deb',
    ]);
    expect(await installed()).toEqual(['1.0.0', '1.0.0', '1.0.0']);

    await host.repo.stop();
    const upgraded = await run(step('upgrade'));
    expect(upgraded).toMatchObject({ ok: true, exitCode: 0, versions: ['1.1.0'] });
    expect(upgraded.data?.['installed']).toEqual([
      { name: 'bm-core', version: '1.1.0' },
      { name: 'bm-webmail', version: '1.1.0' },
      { name: OTHER, version: '1.5.0' },
    ]);
    expect(await installed()).toEqual(['1.1.0', '1.1.0', '1.5.0']);
  });

  it('refuses a target the repository does not offer, at listUpgradable and downloadOnly', async () => {
    const pin = { packages: ['bm-*'], version: '3.0.0' };
    const expected = {
      code: 'TARGET_NOT_OFFERED',
      message:
        'the package lists offer no version 3.0.0 of bm-core, bm-webmail (is the repository for that version configured, and was it updated?)',
    };
    expect((await run(step('listUpgradable', pin))).error).toEqual(expected);
    expect((await run(step('downloadOnly', pin))).error).toEqual(expected);
    expect(host.cachedDebs().filter((f) => !f.includes('_1.0.0_'))).toEqual([]);
  });

  it('refuses a cache that holds another version before dpkg runs', async () => {
    // An earlier, unpinned download staged 2.0.0; the pinned upgrade must not install it.
    expect(await run(step('downloadOnly', null))).toMatchObject({ ok: true });
    expect(host.cachedDebs()).toContain('bm-core_2.0.0_all.deb');
    const before = dpkgStatus();

    const upgraded = await run(step('upgrade'));
    expect(upgraded.error).toEqual({
      code: 'STAGED_VERSION_MISMATCH',
      message:
        'the archive cache does not hold the pinned version 1.1.0 of: bm-core 1.1.0 (cached: 1.0.0, 2.0.0); ' +
        'bm-webmail 1.1.0 (cached: 1.0.0, 2.0.0); nothing was installed',
    });
    expect(dpkgStatus()).toBe(before);
    expect(await installed()).toEqual(['1.0.0', '1.0.0', '1.0.0']);
  });

  it('fails VERSION_MISMATCH when a pinned package ends at another version (read from dpkg)', async () => {
    expect(await run(step('downloadOnly'))).toMatchObject({ ok: true });
    // Held by the administrator after staging: the front end keeps it back and exits 0.
    execFileSync('dpkg', [`--admindir=${host.root}/var/lib/dpkg`, '--set-selections'], {
      input: 'bm-webmail hold\n',
    });

    const upgraded = await run(step('upgrade'));
    expect(upgraded.error).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'after the upgrade: bm-webmail is 1.0.0 (dpkg state hi), pinned 1.1.0',
    });
    const held = execFileSync('dpkg-query', [
      `--admindir=${host.root}/var/lib/dpkg`,
      '-W',
      '-f',
      '${Version}',
      'bm-webmail',
    ]);
    expect(held.toString()).toBe('1.0.0');
    expect(await host.installedVersion('bm-core')).toBe('1.1.0');
  });
});
