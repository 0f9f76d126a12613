/**
 * The bare apply: what the package manager alone needs to apply the staged bm-core upgrade, with
 * no Convoy around it. On N fresh fake hosts (as many as the rollouts upgrade at once, so that
 * they share the CPU and disk the same way) bm-core is installed and its new version downloaded
 * into the archive cache, then the very command of the recipe's `apply-packages` step runs on
 * all of them at once. Reported per host: that command's wall time, and the time dpkg spent
 * between bm-core's preinst and postinst (a fake BlueMind in this process watches the flag).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createAptHost, type AptHost } from '../fixtures/apt-host';
import { bmCorePublishOptions } from '../fixtures/bluemind-packages';
import { FakeBlueMind } from '../fixtures/fake-bluemind';
import type { Teardown } from './teardown';

const run = promisify(execFile);

export interface BareApplyOptions {
  readonly hosts: number;
  readonly payloadBytes: number;
  readonly applyMs: number;
  readonly from: string;
  readonly to: string;
  /** argv of the recipe's `stage-packages` and `apply-packages` steps. */
  readonly downloadArgv: readonly string[];
  readonly applyArgv: readonly string[];
}

export interface BareApply {
  /** Wall time of the apply command, per host, ms. */
  readonly commandMs: readonly number[];
  /** dpkg from preinst to the end of postinst, per host, ms. */
  readonly dpkgMs: readonly number[];
}

export interface BareHost {
  readonly apt: AptHost;
  readonly bluemind: FakeBlueMind;
  readonly env: NodeJS.ProcessEnv;
}

/** Prepared before the rollouts run (it takes a while); applied by `applyAll` once they are done. */
export async function prepareBareHosts(opts: BareApplyOptions, teardown: Teardown): Promise<BareHost[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-bare-'));
  teardown.add(async () => rmSync(dir, { recursive: true, force: true }));
  const built = await Promise.allSettled(
    Array.from({ length: opts.hosts }, async (_, i) => {
      const apt = await createAptHost();
      teardown.add(() => apt.cleanup());
      const flag = path.join(dir, `maintenance-${i}.flag`);
      const publish = bmCorePublishOptions(flag, opts.applyMs, opts.payloadBytes);
      await apt.publish('bm-core', opts.from, publish);
      await apt.install([`bm-core=${opts.from}`]);
      await apt.publish('bm-core', opts.to, publish);
      // What the agent's environment and the apt step add (bluemind-fleet.ts, agent/steps/apt.ts).
      const env = {
        ...process.env,
        ...apt.env,
        DPKG_ADMINDIR: path.join(apt.root, 'var/lib/dpkg'),
        DEBIAN_FRONTEND: 'noninteractive',
        LC_ALL: 'C.UTF-8',
      };
      const [fe] = opts.downloadArgv;
      await run(fe ?? 'aptitude', ['update'], { env });
      await run(fe ?? 'aptitude', opts.downloadArgv.slice(1), { env });
      const bluemind = await FakeBlueMind.start('bench', { maintenanceFlag: flag });
      teardown.add(() => bluemind.stop());
      return { apt, bluemind, env };
    }),
  );
  // Every host that was built is in `teardown` before a failure is thrown.
  const failed = built.find((b) => b.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return built.map((b) => (b as PromiseFulfilledResult<BareHost>).value);
}

export async function applyAll(hosts: readonly BareHost[], opts: BareApplyOptions): Promise<BareApply> {
  const [command, ...args] = opts.applyArgv;
  // dpkg syncs what it unpacks: start from a disk with nothing left to write back (the rollout
  // measured just before unpacked as much), so that the floor is not raised by someone else's I/O.
  await run('sync', []);
  const commandMs = await Promise.all(
    hosts.map(async (h) => {
      const started = process.hrtime.bigint();
      await run(command ?? 'aptitude', args, { env: h.env, maxBuffer: 16 * 1024 * 1024 });
      return Number(process.hrtime.bigint() - started) / 1e6;
    }),
  );
  const dpkgMs = await Promise.all(
    hosts.map(async (h, i) => {
      const installed = await h.apt.installedVersion('bm-core');
      if (installed !== opts.to)
        throw new Error(`bare apply on host ${i}: bm-core is ${installed ?? 'absent'}`);
      return h.bluemind.maintenanceSpans.reduce((sum, s) => sum + ((s.off ?? Date.now()) - s.on), 0);
    }),
  );
  return { commandMs, dpkgMs };
}
