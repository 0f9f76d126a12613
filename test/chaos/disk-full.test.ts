/**
 * Chaos: the disk fills while a host stages its packages. security.md promises a free-space
 * preflight, a download streamed to a partial file, and cleanup on ENOSPC; the test shows a clear
 * error, no partial file, the application untouched.
 *
 * The staging area is where apt downloads land: the host's archive cache
 * (`$R/var/cache/apt/archives`, its `partial/` holding downloads in progress). A 1 MiB tmpfs goes
 * over it, smaller than the 3 MB package.
 *
 *   1. A rollout with one such host: the preflight refuses before fetching a byte (DISK_FULL), the
 *      host ends stage-failed and, per docs/rollouts.md, the rollout halts once the others staged,
 *      with no host upgraded (the staged gate).
 *   2. The apt step alone, when the preflight passed and the disk filled during the download
 *      (another writer took the space): ENOSPC becomes DISK_FULL and the partial .deb is removed.
 *
 * The fleet runs on loopback, not in network namespaces: a mount made after an agent started in
 * `ip netns exec` would not reach its private mount namespace.
 */
import { mkdirSync, openSync, closeSync, rmSync, writeSync, existsSync } from 'node:fs';
import path from 'node:path';
import { aptExecutor } from '../../agent/steps/apt';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import { BlueMindFleet } from '../../scripts/fixtures/bluemind-fleet';
import type { AptStep } from '../../shared/recipe/types';
import { stepContext } from '../helpers/step-context';
import { waitFor } from '../helpers/wait';
import { publishBmCore } from './net-disk/namespaced-fleet';
import { hostStatus, isResting, rolloutEvents, startRollout, waitForRollout } from '../helpers/rollout-probe';
import { filesBelow, mountSmallTmpfs, unmountAll } from '../helpers/tmpfs';

jest.setTimeout(180_000);

const WARPED_CLOCK = ['--clock-start', '2026-12-01T01:59:00+01:00', '--clock-warp'];
const PAYLOAD = 3_000_000;

function archivesOf(apt: AptHost): string {
  return path.join(apt.root, 'var/cache/apt/archives');
}

/** Mounts the small tmpfs over the archive cache, with the `partial/` apt expects inside. */
async function shrinkArchiveCache(apt: AptHost, size: string): Promise<string> {
  const dir = archivesOf(apt);
  await mountSmallTmpfs(dir, size);
  mkdirSync(path.join(dir, 'partial'), { mode: 0o700 });
  return dir;
}

describe('chaos › disk full while staging', () => {
  afterAll(() => unmountAll());

  describe('a rollout where one host’s archive cache is a 1 MiB tmpfs', () => {
    let fleet: BlueMindFleet | undefined;

    beforeAll(async () => {
      fleet = await BlueMindFleet.create({ hosts: 3, controllerArgs: WARPED_CLOCK });
    });
    afterAll(async () => {
      await unmountAll();
      await fleet?.stop();
    });

    it('stage-fails that host with DISK_FULL naming the space, leaves no partial file, upgrades nobody and halts', async () => {
      if (fleet === undefined) throw new Error('no fleet (see beforeAll)');
      const full = fleet.hosts[2];
      if (full === undefined) throw new Error('no third host');
      await publishBmCore(fleet, full, fleet.to, { payloadBytes: PAYLOAD });
      const cache = await shrinkArchiveCache(full.apt, '1m');
      await fleet.cliOk('apply', fleet.writeFleet(fleet.fleetYaml()));
      const id = await startRollout(fleet);

      const done = await waitForRollout(fleet, id, 'the rollout to stop', isResting);
      expect(done.state).toBe('halted');
      expect(done.reason).toContain(full.hostId);
      const row = done.hosts.find((h) => h.hostId === full.hostId);
      expect(row?.state).toBe('stage-failed');
      expect(row?.reason).toMatch(/DISK_FULL/);
      expect(row?.reason).toMatch(/not enough free space in \S*archives/);
      // The others staged, but nobody upgrades before every host is staged.
      expect(done.hosts.filter((h) => h.hostId !== full.hostId).map((h) => h.state)).toEqual([
        'staged',
        'staged',
      ]);

      const failed = (await rolloutEvents(fleet, id, full.hostId)).filter(
        (e) => e.kind === 'rollout.host.staging.failed',
      );
      expect(failed).toHaveLength(1);
      expect(JSON.stringify(failed[0]?.data ?? {})).toMatch(/DISK_FULL.*free space/);

      // Nothing was fetched into the small disk, not even part of the package.
      expect(filesBelow(cache).filter((f) => f.file !== 'lock')).toEqual([]);
      expect(full.apt.repo.requests.filter((l) => l.includes('bm-core_4.1.2'))).toEqual([]);
      // The application is untouched: old version, never in maintenance, healthy.
      for (const h of fleet.hosts) {
        expect(await h.apt.installedVersion('bm-core')).toBe(fleet.from);
        expect(h.bluemind.state().maintenanceSpans).toEqual([]);
        expect((await hostStatus(fleet, h.hostId))?.app?.maintenance).toBe(false);
      }
      expect((await fetch(full.bluemind.url)).status).toBe(200);
      expect(fleet.setupCalls()).toBe(0);
    });
  });

  describe('the apt download step when the disk fills during the download', () => {
    let apt: AptHost | undefined;

    beforeAll(async () => {
      // 1 MB/s: the 3 MB package takes long enough for another writer to fill the disk meanwhile.
      apt = await createAptHost({ bytesPerSecond: 1_000_000 });
      await apt.publish('bm-core', '4.1.0');
      await apt.install(['bm-core=4.1.0']);
      await apt.publish('bm-core', '4.1.2', { payloadBytes: PAYLOAD });
    });
    afterAll(async () => {
      await unmountAll();
      await apt?.cleanup();
    });

    it('reports DISK_FULL and removes the partial .deb; nothing installed', async () => {
      if (apt === undefined) throw new Error('no apt host (see beforeAll)');
      const cache = await shrinkArchiveCache(apt, '4m');
      const ctx = stepContext({ env: apt.env });
      const base = {
        source: 'test',
        timeoutMs: 60_000,
        retries: 0,
        packages: ['bm-core'],
        frontend: 'aptitude',
      };
      const update: AptStep = { ...base, id: 'refresh', type: 'apt', action: 'update' } as AptStep;
      expect((await aptExecutor.run(update, ctx)).ok).toBe(true);
      const step: AptStep = { ...base, id: 'stage', type: 'apt', action: 'downloadOnly' } as AptStep;
      const running = aptExecutor.run(step, ctx);
      const partial = path.join(cache, 'partial', 'bm-core_4.1.2_all.deb');
      // The preflight passed (4 MiB free, 3 MB to fetch) and the download began: now fill the disk.
      await waitFor('the download to start', () => existsSync(partial), 30_000, 20);
      const filler = path.join(cache, 'filler');
      fillDisk(filler);
      const result = await running;
      rmSync(filler, { force: true });

      expect(result.ok).toBe(false);
      expect(result.error?.code).toBe('DISK_FULL');
      expect(result.error?.message).toMatch(/filled up during the download.*partial download was removed/);
      expect(filesBelow(cache).filter((f) => f.file !== 'lock')).toEqual([]);
      expect(await apt.installedVersion('bm-core')).toBe('4.1.0');
    });
  });
});

/** Writes to `file` until the filesystem says ENOSPC: another process taking the space. */
function fillDisk(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}
