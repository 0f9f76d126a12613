/**
 * The Convoy side: the same three workloads through the operator CLI, each timed from spawn to
 * exit in the ctl namespace (SshFleet.cli), as ansible-playbook is:
 *
 *   noop     convoy ping --json --select bench=ansible
 *   check    convoy phase run --select bench=ansible --recipe CHECK --phase check --json
 *   staged   convoy rollout start DEPLOYMENT --to TO --stage-now --wait --json
 *            (the deployment applied once per fleet: every host in one batch, staging all at once)
 *
 * Each answer is checked: every host answered ok, the rollout succeeded.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { RolloutView } from '../../../controller/rollout/view';
import { CONVOY } from '../paths';
import { openWindowYaml } from '../open-window';
import type { AnsibleFleet } from './hosts';
import type { Workload } from './options';
import { checkRecipeYaml, DEPLOYMENT, LABEL, stagedRecipeYaml, TO } from './workloads';

const ROLLOUT_TIMEOUT_MS = 30 * 60_000;

export interface ConvoySetup {
  readonly checkRecipe: string;
  readonly fleetFile: string;
}

export interface ConvoyRun {
  readonly wallMs: number;
  /** staged only: the rollout's own span, createdAt to finishedAt (the rest is CLI and polling). */
  readonly rolloutMs?: number;
  /** noop only: the slowest agent's round trip as the controller measured it. */
  readonly maxRttMs?: number;
}

/** `convoy --version` from spawn to exit, median of 3: the CLI's start-up, paid by every command. */
export async function convoyStartupMs(fleet: AnsibleFleet): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = process.hrtime.bigint();
    const r = await fleet.ssh.netns.execIn(fleet.ssh.netns.ctl, process.execPath, [CONVOY, '--version']);
    if (r.code !== 0) throw new Error(`convoy --version exited ${r.code}`);
    runs.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return [...runs].sort((a, b) => a - b)[1] ?? NaN;
}

export async function prepareConvoy(dir: string, fleet: AnsibleFleet): Promise<ConvoySetup> {
  const checkRecipe = path.join(dir, 'ansible-bench-check.yaml');
  writeFileSync(checkRecipe, checkRecipeYaml());
  const stagedRecipe = path.join(dir, 'ansible-bench-staged.yaml');
  writeFileSync(stagedRecipe, stagedRecipeYaml());
  const n = fleet.hosts.length;
  const deployment = {
    name: DEPLOYMENT,
    recipe: stagedRecipe,
    target: TO,
    window: 'open',
    staging: { concurrency: n },
    batches: { canary: 0, concurrency: n, errorThreshold: 0 },
    hosts: fleet.hosts.map((h) => ({ id: h.hostId })),
  };
  const fleetFile = path.join(dir, 'fleet.yaml');
  writeFileSync(
    fleetFile,
    ['windows:', openWindowYaml('open'), stringify({ deployments: [deployment] })].join('\n'),
  );
  const applied = await fleet.ssh.cli(['apply', fleetFile]);
  if (applied.code !== 0) throw new Error(`convoy apply: ${applied.stderr.trim()}`);
  return { checkRecipe, fleetFile };
}

/** The CLI arguments of each workload (before `--state-dir`). */
export function convoyArgs(setup: ConvoySetup, workload: Workload): string[] {
  switch (workload) {
    case 'noop':
      return ['ping', '--json', '--select', LABEL];
    case 'check':
      return ['phase', 'run', '--select', LABEL, '--recipe', setup.checkRecipe, '--phase', 'check', '--json'];
    case 'staged':
      return ['rollout', 'start', DEPLOYMENT, '--to', TO, '--stage-now', '--wait', '--json'];
  }
}

export function convoyCommand(setup: ConvoySetup, workload: Workload, stateDir: string): string[] {
  return ['node', CONVOY, ...convoyArgs(setup, workload), '--state-dir', stateDir];
}

interface FanOut {
  readonly ok: number;
  readonly total: number;
  readonly results: readonly {
    hostname?: string;
    ok?: boolean;
    outcome?: string;
    rttMs?: number;
    error?: unknown;
  }[];
}

/** One timed run; throws unless every host answered ok (or the rollout succeeded). */
export async function runConvoy(
  fleet: AnsibleFleet,
  setup: ConvoySetup,
  workload: Workload,
): Promise<ConvoyRun> {
  const args = convoyArgs(setup, workload);
  const r = await fleet.ssh.cli(args, workload === 'staged' ? ROLLOUT_TIMEOUT_MS : 10 * 60_000);
  const what = `convoy ${args.slice(0, 2).join(' ')}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    throw new Error(`${what} exited ${r.code} without JSON: ${r.stderr.trim().slice(-2000)}`);
  }
  if (workload === 'staged') {
    const doc = parsed as RolloutView;
    if (r.code !== 0 || doc.state !== 'succeeded' || doc.finishedAt === null)
      throw new Error(`${what}: rollout ${doc.id} ended ${doc.state}: ${doc.reason} ${r.stderr.trim()}`);
    return { wallMs: r.wallMs, rolloutMs: doc.finishedAt - doc.createdAt };
  }
  const out = parsed as FanOut;
  const n = fleet.hosts.length;
  if (r.code !== 0 || out.total !== n || out.ok !== n) {
    const bad = out.results.filter((x) => x.ok !== true && x.outcome !== 'ok').slice(0, 3);
    throw new Error(`${what} exited ${r.code}: ${out.ok}/${out.total} ok of ${n}: ${JSON.stringify(bad)}`);
  }
  const rtts = out.results.map((x) => x.rttMs).filter((x): x is number => typeof x === 'number');
  return { wallMs: r.wallMs, ...(rtts.length > 0 ? { maxRttMs: Math.max(...rtts) } : {}) };
}
