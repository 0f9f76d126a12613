/**
 * The dnf step with the real dnf on a fake host (an installroot), run as the vendor's literal
 * `yum` through a test-only wrapper on PATH, against a real HTTP repository. Asserts on the
 * installroot's rpm database and dnf's package cache.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { dnfExecutor } from '../../agent/steps/dnf';
import type { DnfStep } from '../../shared/recipe/types';
import { createDnfHost, type DnfHost } from '../fixtures/dnf-host';
import { hostState, MACHINE_RPM_PATHS } from '../helpers/host-state';
import { runStep, stepBase, stepContext } from '../helpers/step-context';
import { filesBelow, mountSmallTmpfs, unmountAll } from '../helpers/tmpfs';

jest.setTimeout(30_000);

const PACKAGES = ['kcm-guacamole', 'kcm-guacd'];
const KCM = ['kcm-*'];

/** The vendor's `yum` command on `kcm-*` unless told otherwise. */
function dnfStep(action: DnfStep['action'], packages: readonly string[] = KCM): DnfStep {
  return { ...stepBase(`dnf-${action}`), type: 'dnf', action, packages, command: 'yum' };
}

describe('dnf step through the yum wrapper', () => {
  let host: DnfHost;
  const hostBefore = hostState(MACHINE_RPM_PATHS);

  const step = dnfStep;
  const run = (s: DnfStep) => runStep(dnfExecutor, s, { env: host.env });
  const installed = async () => Promise.all(PACKAGES.map((p) => host.installedVersion(p)));
  const stagedNew = () => host.cachedRpms().filter((f) => f.includes('-2.1.0-'));

  // 2.0.0 installed; 2.1.0 published after the host last refreshed its metadata.
  beforeEach(async () => {
    host = await createDnfHost();
    for (const pkg of PACKAGES) await host.publish(pkg, '2.0.0');
    await host.install(PACKAGES);
    for (const pkg of PACKAGES) await host.publish(pkg, '2.1.0');
  });
  afterEach(() => host.cleanup());
  afterAll(() => expect(hostState(MACHINE_RPM_PATHS)).toBe(hostBefore));

  it('lists no updates (exit 1, not an error) until makecache, then 2.1.0 (a version, its release apart)', async () => {
    const none = await run(step('listUpdates'));
    expect(none).toMatchObject({ ok: true, exitCode: 1, versions: [] });

    expect(await run(step('makecache'))).toMatchObject({ ok: true, exitCode: 0 });
    const some = await run(step('listUpdates'));
    expect(some).toMatchObject({ ok: true, exitCode: 0, versions: ['2.1.0'] });
    expect(some.data?.['packages']).toEqual(
      PACKAGES.map((name) => ({ name, arch: 'noarch', version: '2.1.0-1' })),
    );
  });

  it('stages 2.1.0 without installing it, then upgrades from the cache with the repository stopped', async () => {
    await run(step('makecache'));
    const staged = await run(step('downloadOnly'));
    expect(staged).toMatchObject({ ok: true, versions: ['2.1.0'] });
    expect(await installed()).toEqual(['2.0.0', '2.0.0']);
    expect(stagedNew()).toEqual(PACKAGES.map((p) => `${p}-2.1.0-1.noarch.rpm`));

    const requests = host.repo.requestCount;
    await host.repo.stop();
    const upgraded = await run(step('upgrade'));
    expect(upgraded).toMatchObject({ ok: true, exitCode: 0, versions: ['2.1.0'] });
    expect(await installed()).toEqual(['2.1.0', '2.1.0']);
    expect(host.repo.requestCount).toBe(requests);
  });

  it('refuses to upgrade what was not staged, with the repository up or down, and keeps 2.0.0', async () => {
    await run(step('makecache'));

    const requests = host.repo.requestCount;
    const whileUp = await run(step('upgrade'));
    expect(whileUp.error?.code).toBe('STAGED_CACHE_INCOMPLETE');
    expect(host.repo.requestCount).toBe(requests);

    await host.repo.stop();
    const whileDown = await run(step('upgrade'));
    expect(whileDown.error).toEqual({
      code: 'STAGED_CACHE_INCOMPLETE',
      message:
        'yum upgrade needs packages that are not in the cache; nothing was installed (run the download phase first, or again if the repository changed since)',
    });
    expect(await installed()).toEqual(['2.0.0', '2.0.0']);
    expect(stagedNew()).toEqual([]);
  });
});

describe('dnf step on a host whose repository never answered', () => {
  const listKcm = dnfStep('listUpdates');

  it('reports an unreachable repository as a failure, not as "no updates"', async () => {
    const fresh = await createDnfHost();
    try {
      await fresh.repo.stop();
      const result = await runStep(dnfExecutor, listKcm, { env: fresh.env });
      expect(result.ok).toBe(false);
      expect(result.error?.code).toBe('STEP_FAILED');
      expect(result.error?.message).toMatch(/^yum list updates failed: /);
    } finally {
      await fresh.cleanup();
    }
  });
});

describe('dnf step on a host whose package cache is full', () => {
  const download = dnfStep('downloadOnly');

  it('reports DISK_FULL when the cache fills during the download, and stages nothing', async () => {
    const host = await createDnfHost();
    const ctx = stepContext({ env: host.env });
    try {
      await host.publish('kcm-guacd', '2.0.0');
      await host.install(['kcm-guacd']);
      await host.publish('kcm-guacd', '2.1.0', 300_000);
      expect(await dnfExecutor.run(dnfStep('makecache'), ctx)).toMatchObject({ ok: true });
      // A 64 KiB file system where this repository's RPMs go (dnf names the directory after the repo).
      const cache = path.join(host.root, 'var/cache/dnf');
      const repoDir = readdirSync(cache).find((d) => d.startsWith('kcm-'));
      if (repoDir === undefined) throw new Error(`no kcm-* cache directory in ${cache}`);
      const packages = path.join(cache, repoDir, 'packages');
      mkdirSync(packages, { recursive: true });
      await mountSmallTmpfs(packages, '64k');

      const result = await dnfExecutor.run(download, ctx);
      expect(result.error?.code).toBe('DISK_FULL');
      expect(result.error?.message).toMatch(
        /^the disk holding yum's package cache filled up during the download of \d+ kB; yum removed the partial file and nothing was staged$/,
      );
      expect(filesBelow(packages)).toEqual([]);
      expect(await host.installedVersion('kcm-guacd')).toBe('2.0.0');
    } finally {
      ctx.cleanup();
      await unmountAll();
      await host.cleanup();
    }
  });
});
