/**
 * `npm run bench:ansible`: Ansible (Debian's ansible-playbook) and Convoy against the same N
 * simulated hosts, network namespaces each running an OpenSSH server and a Convoy agent
 * (docs/benchmarks.md, "Against Ansible"). For each size, workload and run: Convoy, then each
 * Ansible configuration; medians, ratios, a table on stdout and, last, one JSON line.
 */
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { enrollUnavailableReason } from '../enroll-fleet';
import { Teardown, tearDownOnTimeoutOrSignal } from '../teardown';
import { note, Workspace } from '../workspace';
import { ANSIBLE_PLAYBOOK, prepareAnsible, runAnsible, type AnsibleSetup } from './ansible-side';
import { convoyStartupMs, prepareConvoy, runConvoy, type ConvoySetup } from './convoy-side';
import { startAnsibleFleet, waitOnline, type AnsibleFleet } from './hosts';
import { parseAnsibleOptions, USAGE, type AnsibleBenchOptions, type Workload } from './options';
import { buildRepository, resetRoot, verifyRoots } from './packages';
import { printTable, rowOf, summaryJson, type Row, type Samples } from './report';
import { FROM, TO } from './workloads';

const INSTALL_HINT = 'apt-get install -y ansible openssh-server iproute2';

/** What is missing on this machine, or undefined. */
function missingPrerequisite(): string | undefined {
  if (!existsSync(ANSIBLE_PLAYBOOK)) return `no ${ANSIBLE_PLAYBOOK} (Ansible)`;
  return enrollUnavailableReason();
}

interface Sides {
  readonly fleet: AnsibleFleet;
  readonly ansible: AnsibleSetup;
  readonly convoy: ConvoySetup;
  readonly startupMs: number;
}

/** Every staged run starts from FROM with empty caches and must end at TO in every root. */
async function timedStaged(sides: Sides, run: () => Promise<void>, what: string): Promise<void> {
  const roots = sides.fleet.hosts.map((h) => h.root);
  for (const root of roots) resetRoot(sides.fleet.template, root);
  verifyRoots(roots, FROM, `${what}: before`);
  await run();
  verifyRoots(roots, TO, `${what}: after`);
}

async function measureWorkload(
  sides: Sides,
  opts: AnsibleBenchOptions,
  workload: Workload,
): Promise<Samples> {
  const size = sides.fleet.hosts.length;
  const samples: Samples = {
    size,
    workload,
    convoyMs: [],
    convoyRolloutMs: [],
    convoyMaxRttMs: [],
    convoyOfflineBefore: [],
    convoyStartupMs: sides.startupMs,
    ansibleMs: {},
  };
  const wrap = (what: string, run: () => Promise<void>): Promise<void> =>
    workload === 'staged' ? timedStaged(sides, run, what) : run();
  for (let i = 1; i <= opts.runs; i++) {
    const offline = await waitOnline(sides.fleet.ssh, size);
    if (offline > 0)
      note(`N=${size} ${workload} run ${i}: ${offline} agent(s) were offline; waited for them`);
    samples.convoyOfflineBefore.push(offline);
    await wrap('convoy', async () => {
      const r = await runConvoy(sides.fleet, sides.convoy, workload);
      samples.convoyMs.push(r.wallMs);
      if (r.rolloutMs !== undefined) samples.convoyRolloutMs.push(r.rolloutMs);
      if (r.maxRttMs !== undefined) samples.convoyMaxRttMs.push(r.maxRttMs);
      note(`N=${size} ${workload} run ${i}: convoy ${(r.wallMs / 1000).toFixed(3)} s`);
    });
    for (const config of opts.ansible) {
      await wrap(`ansible ${config}`, async () => {
        const ms = await runAnsible(sides.fleet, sides.ansible, config, workload);
        (samples.ansibleMs[config] ??= []).push(ms);
        note(`N=${size} ${workload} run ${i}: ansible ${config} ${(ms / 1000).toFixed(3)} s`);
      });
    }
  }
  return samples;
}

async function measureSize(
  opts: AnsibleBenchOptions,
  size: number,
  repoDir: string,
  teardown: Teardown,
): Promise<Row[]> {
  const ws = new Workspace();
  teardown.add(() => ws.cleanup());
  const fleet = await startAnsibleFleet(ws, size, repoDir, teardown);
  try {
    const sides: Sides = {
      fleet,
      ansible: prepareAnsible(path.join(ws.root, 'ansible'), fleet),
      convoy: await prepareConvoy(ws.root, fleet),
      startupMs: await convoyStartupMs(fleet),
    };
    const rows: Row[] = [];
    for (const workload of opts.workloads) rows.push(rowOf(await measureWorkload(sides, opts, workload)));
    return rows;
  } finally {
    await fleet.stop();
    await ws.cleanup();
  }
}

async function main(): Promise<void> {
  let opts: AnsibleBenchOptions;
  try {
    opts = parseAnsibleOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(2);
  }
  const missing = missingPrerequisite();
  if (missing !== undefined) {
    process.stderr.write(`bench:ansible cannot run here: ${missing}. As root: ${INSTALL_HINT}\n`);
    process.exit(2);
  }
  const teardown = new Teardown();
  const disarm = tearDownOnTimeoutOrSignal(teardown, opts.timeoutMinutes);
  const ws = new Workspace();
  teardown.add(() => ws.cleanup());
  const loadAvg = os.loadavg()[0] ?? NaN;
  try {
    mkdirSync(ws.root, { recursive: true });
    const repoDir = await buildRepository(ws.root);
    const rows: Row[] = [];
    for (const size of opts.sizes) rows.push(...(await measureSize(opts, size, repoDir, teardown)));
    if (!opts.json) printTable(rows);
    process.stdout.write(`${JSON.stringify(summaryJson(rows, opts.runs, loadAvg))}\n`);
  } finally {
    disarm();
    await teardown.run();
  }
}

main().catch((err: unknown) => {
  note(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
