/**
 * Orchestration overhead: a no-op recipe rolled out to N simulated hosts (./sim-fleet) whose
 * agents answer every phase at once, so that the rollout's wall time is the controller's own
 * work (plan, write-ahead transitions, signed commands, step results, events) plus the protocol.
 * Everything goes through the CLI an operator would use: `convoy apply`, `convoy rollout start
 * --stage-now`, `convoy rollout watch`.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { convoy, setUpController, type BenchController } from './controller-proc';
import { openWindowYaml } from './open-window';
import type { Options } from './options';
import { fdatasyncLatencyMs, readCpuMs, round1 } from './proc';
import { connectSimFleet, type SimFleet } from './sim-fleet';
import { note, type Workspace } from './workspace';

export interface RolloutSimOptions {
  readonly hosts: number;
  /** Staging concurrency and batch size (after one canary). */
  readonly concurrency: number;
}

export interface RolloutSimResult {
  readonly hosts: number;
  readonly concurrency: number;
  /** From spawning `convoy rollout start` to the rollout's finishedAt, ms. */
  readonly wallMs: number;
  /** `convoy rollout start` alone (planning: check on every host, then the stored rollout), ms. */
  readonly startCliMs: number;
  /** Steps the simulated agents reported as run, every phase and host. */
  readonly hostSteps: number;
  readonly controllerCpuMs: number;
  readonly simAgentsCpuMs: number;
  readonly connectMs: number;
  /** Sorted latencies of one append + fdatasync where the controller keeps its store, ms. */
  readonly storeFsyncMs: readonly number[];
  /** The machine's 1-minute load average when the rollout began. */
  readonly loadAvg1m: number;
}

/** The shape of recipes/bluemind.yaml: 2 check, 2 download, 4 upgrade, 1 finalize, 1 verify steps. */
const NOOP_PHASES: Readonly<Record<string, readonly string[]>> = {
  check: ['check-refresh', 'check-upgradable'],
  download: ['stage-refresh', 'stage-packages'],
  upgrade: ['maintenance-on', 'backup-config', 'apply-packages', 'maintenance-off'],
  verify: ['health'],
  rollback: ['restore-config'],
};

function noopSteps(ids: readonly string[], indent: string): string[] {
  return ids.map((id) => `${indent}- { id: ${id}, type: exec, argv: ['true'], source: 'no-op' }`);
}

function noopRecipe(): string {
  const version = "pattern: '^([0-9]+\\.[0-9]+\\.[0-9]+)'";
  return [
    'name: noop',
    "description: every step is true; the rollout benchmark's simulated agents answer without running anything",
    'versions:',
    `  installed: { argv: [echo, '1.0.0'], ${version} }`,
    `  available: { argv: [echo, '1.0.1'], ${version} }`,
    'phases:',
    ...Object.entries(NOOP_PHASES).flatMap(([phase, ids]) => [`  ${phase}:`, ...noopSteps(ids, '    ')]),
    '  finalize:',
    '    role: core',
    '    steps:',
    ...noopSteps(['setup-update'], '      '),
    '',
  ].join('\n');
}

function fleetYaml(hostIds: readonly string[], concurrency: number): string {
  return [
    'windows:',
    openWindowYaml('open'),
    'deployments:',
    '  - name: noop-fleet',
    '    recipe: ./noop.yaml',
    '    target: latest',
    '    window: open',
    `    staging: { concurrency: ${concurrency} }`,
    `    batches: { canary: 1, concurrency: ${concurrency}, errorThreshold: 0 }`,
    '    hosts:',
    ...hostIds.map((id, i) => `      - { id: ${id}, role: ${i === 0 ? 'core' : 'node'} }`),
    '',
  ].join('\n');
}

async function convoyJson<T>(
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ doc: T; wallMs: number }> {
  const r = await convoy([...args, '--json'], timeoutMs);
  if (r.code !== 0) throw new Error(`convoy ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return { doc: JSON.parse(r.stdout) as T, wallMs: r.wallMs };
}

/** Starts a controller and N simulated agents, rolls the no-op recipe out, and measures. */
export async function benchRolloutSim(
  ws: Workspace,
  base: Options,
  opts: RolloutSimOptions,
): Promise<RolloutSimResult> {
  const controller = await setUpController(ws, { ...base, agents: opts.hosts });
  const fleet = await connectSimFleet(ws, controller, {
    agents: opts.hosts,
    swarms: 2,
    enrollConcurrency: base.enrollConcurrency,
    stateRoot: ws.tempDir(base.agentStateRoot),
  });
  writeFileSync(path.join(ws.root, 'noop.yaml'), noopRecipe());
  const fleetFile = path.join(ws.root, 'fleet.yaml');
  writeFileSync(fleetFile, fleetYaml(fleet.hostIds, opts.concurrency));
  await convoyJson(['apply', fleetFile, '--state-dir', controller.stateDir]);
  // Every transition is a SQLite commit (WAL, synchronous=FULL): the disk sets the pace.
  const storeFsyncMs = fdatasyncLatencyMs(controller.stateDir);
  const loadAvg1m = os.loadavg()[0] ?? NaN;
  note(`rollout of a no-op recipe to ${opts.hosts} simulated hosts, ${opts.concurrency} at a time`);
  const run = await timeRollout(controller, fleet);
  return {
    hosts: opts.hosts,
    concurrency: opts.concurrency,
    ...run,
    hostSteps: await fleet.stepsRun(),
    connectMs: fleet.connectMs,
    storeFsyncMs,
    loadAvg1m,
  };
}

/** `rollout start --stage-now`, then `rollout watch` until it ends; wall time and CPU used. */
async function timeRollout(controller: BenchController, fleet: SimFleet) {
  const state = ['--state-dir', controller.stateDir];
  const cpu = (): { controller: number; sims: number } => ({
    controller: readCpuMs(controller.pid),
    sims: fleet.swarmPids.reduce((sum, pid) => sum + readCpuMs(pid), 0),
  });
  const before = cpu();
  const startedAt = Date.now();
  const start = await convoyJson<RolloutView>(
    ['rollout', 'start', 'noop-fleet', '--stage-now', ...state],
    300_000,
  );
  const { doc } = await convoyJson<RolloutView>(['rollout', 'watch', start.doc.id, ...state], 300_000);
  const after = cpu();
  if (doc.state !== 'succeeded' || doc.finishedAt === null)
    throw new Error(`rollout ${doc.id} ended ${doc.state}: ${doc.reason}`);
  const wallMs = doc.finishedAt - startedAt;
  note(`rollout ${doc.id} succeeded in ${round1(wallMs / 1000)} s`);
  return {
    wallMs,
    startCliMs: start.wallMs,
    controllerCpuMs: after.controller - before.controller,
    simAgentsCpuMs: after.sims - before.sims,
  };
}
