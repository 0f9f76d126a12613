/**
 * Downtime with staging and without: the same bm-core upgrade (payloadBytes per host, served at
 * bytesPerSecond by each host's own repository) rolled out to two identical BlueMind-like fleets
 * (scripts/fixtures/bluemind-fleet.ts), one with the staged recipe and one with the unstaged
 * variant (./downtime-recipes), all hosts of a fleet at once, through `convoy apply` and
 * `convoy rollout start --stage-now` / `watch`. Downtime is what each host's fake BlueMind saw:
 * the sum of its maintenance spans during the rollout. The bare apply (./bare-apply) is the floor.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { BlueMindFleet } from '../fixtures/bluemind-fleet';
import { applyAll, prepareBareHosts, type BareApply, type BareHost } from './bare-apply';
import { aptArgvOf, benchRecipeYaml, type Variant } from './downtime-recipes';
import { openWindowYaml } from './open-window';
import { round1 } from './proc';
import type { Teardown } from './teardown';
import { note, type Workspace } from './workspace';

const FROM = '4.1.0';
const TO = '4.1.2';

export interface DowntimeOptions {
  readonly hosts: number;
  readonly payloadBytes: number;
  readonly bytesPerSecond: number;
  readonly applyMs: number;
}

export interface DowntimeResult {
  /** Per host, ms: the fake BlueMind's maintenance during the staged rollout. */
  readonly stagedMs: readonly number[];
  readonly unstagedMs: readonly number[];
  readonly bare: BareApply;
  /** From `rollout start` to the rollout's end, ms. */
  readonly stagedRolloutMs: number;
  readonly unstagedRolloutMs: number;
  /** The machine's 1-minute load average when the measured rollouts began. */
  readonly loadAvg1m: number;
}

function fleetYaml(fleet: BlueMindFleet, variant: Variant, recipeFile: string): string {
  const hosts = fleet.hosts.map((h) => {
    const vars = {
      setupUrl: `${h.bluemind.url}/setup`,
      healthUrl: `${h.bluemind.url}/`,
      maintenanceUrl: `${h.bluemind.url}/maintenance`,
      configDir: fleet.configDir(h),
      backupDir: path.join(fleet.root, h.name, 'backups'),
    };
    return `      - { id: ${h.hostId}, role: ${h.role}, vars: ${JSON.stringify(vars)} }`;
  });
  return [
    'windows:',
    openWindowYaml('open'),
    'deployments:',
    `  - name: bm-${variant}`,
    `    recipe: ${JSON.stringify(recipeFile)}`,
    '    target: latest',
    '    window: open',
    `    batches: { canary: 0, concurrency: ${fleet.hosts.length}, errorThreshold: 0 }`,
    '    hosts:',
    ...hosts,
    '',
  ].join('\n');
}

interface Fleet {
  readonly fleet: BlueMindFleet;
  readonly stop: () => Promise<void>;
}

async function createFleet(
  ws: Workspace,
  variant: Variant,
  opts: DowntimeOptions,
  teardown: Teardown,
): Promise<Fleet> {
  const fleet = await BlueMindFleet.create({
    hosts: opts.hosts,
    from: FROM,
    to: TO,
    applyMs: opts.applyMs,
    payloadBytes: opts.payloadBytes,
    bytesPerSecond: opts.bytesPerSecond,
    dir: path.join(ws.root, variant),
    // The package apply alone is measured, with the bench's own recipes (no prepare, no /setup
    // wait): the seed's maintenance until /setup would add the same finalize time to both.
    seedUpdate: false,
  });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= fleet.stop());
  teardown.add(stop);
  return { fleet, stop };
}

/** Rolls the variant out to every host of `fleet` at once; returns per-host downtime and the wall time. */
async function rollOut(
  fleet: BlueMindFleet,
  variant: Variant,
): Promise<{ downtimeMs: number[]; wallMs: number }> {
  const recipeFile = path.join(fleet.root, `bluemind-bench-${variant}.yaml`);
  writeFileSync(recipeFile, benchRecipeYaml(variant));
  await fleet.cliOk('apply', fleet.writeFleet(fleetYaml(fleet, variant, recipeFile)));
  const startedAt = Date.now();
  const started = await fleet.cliJson<RolloutView>('rollout', 'start', `bm-${variant}`, '--stage-now');
  const watch = await fleet.cli('rollout', 'watch', started.id, '--json');
  const doc = JSON.parse(watch.stdout || '{}') as Partial<RolloutView>;
  if (watch.code !== 0 || doc.state !== 'succeeded' || doc.finishedAt == null)
    throw new Error(
      `${variant} rollout ${started.id} ended ${doc.state ?? '?'}: ${doc.reason ?? watch.stderr}\n${fleet.dump()}`,
    );
  const downtimeMs = fleet.hosts.map((h) =>
    h.bluemind
      .state()
      .maintenanceSpans.filter((s) => s.on >= startedAt)
      .reduce((sum, s) => sum + ((s.off ?? Date.now()) - s.on), 0),
  );
  return { downtimeMs, wallMs: doc.finishedAt - startedAt };
}

export async function benchDowntime(
  ws: Workspace,
  opts: DowntimeOptions,
  teardown: Teardown,
): Promise<DowntimeResult> {
  const mb = round1(opts.payloadBytes / 1e6);
  note(
    `downtime: building 2 BlueMind-like fleets of ${opts.hosts} hosts (bm-core ${FROM} -> ${TO}, ` +
      `${mb} MB at ${round1(opts.bytesPerSecond / 1e6)} MB/s) and ${opts.hosts} bare hosts`,
  );
  const bareOpts = {
    hosts: opts.hosts,
    payloadBytes: opts.payloadBytes,
    applyMs: opts.applyMs,
    from: FROM,
    to: TO,
    downloadArgv: aptArgvOf('stage-packages'),
    applyArgv: aptArgvOf('apply-packages'),
  };
  // Settled, not Promise.all: what did get built is in `teardown` before a failure is thrown.
  const built = await Promise.allSettled([
    createFleet(ws, 'staged', opts, teardown),
    createFleet(ws, 'unstaged', opts, teardown),
    prepareBareHosts(bareOpts, teardown),
  ]);
  const failed = built.find((b) => b.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  const [staged, unstaged, bareHosts] = built.map((b) => (b as PromiseFulfilledResult<unknown>).value) as [
    Fleet,
    Fleet,
    BareHost[],
  ];
  const loadAvg1m = os.loadavg()[0] ?? NaN;
  note('downtime: staged rollout (download phase, then the upgrade from the cache)');
  const a = await rollOut(staged.fleet, 'staged');
  await staged.stop();
  // Right after the staged rollout, so that both see the machine in the same state.
  note(`downtime: staged ${a.downtimeMs.join(', ')} ms; bare apply on ${opts.hosts} hosts at once`);
  const bare = await applyAll(bareHosts, bareOpts);
  note(
    `downtime: bare ${bare.commandMs.map(Math.round).join(', ')} ms; unstaged rollout (download inside the window)`,
  );
  const b = await rollOut(unstaged.fleet, 'unstaged');
  await unstaged.stop();
  return {
    stagedMs: a.downtimeMs,
    unstagedMs: b.downtimeMs,
    bare,
    stagedRolloutMs: a.wallMs,
    unstagedRolloutMs: b.wallMs,
    loadAvg1m,
  };
}
