/**
 * `convoy apply`, `convoy deployments list`, `convoy rollout ...` and `convoy events`: fleet
 * definitions in, rollouts planned, started, watched and steered.
 *
 * Exit codes of `rollout watch` (and `rollout start --wait`): 0 succeeded; 1 failed, aborted or
 * rolled back; 3 the rollout waits for an operator (held or halted: retry, resume or rollback).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { formatDuration } from '../../../shared/duration';
import { ConvoyError } from '../../../shared/errors';
import { loadFleetFile } from '../../../shared/fleet/load';
import { isIn, NEEDS_OPERATOR_STATES, RESTING_ROLLOUT_STATES } from '../../rollout/model';
import type { RolloutView } from '../../rollout/view';
import type { OperatorClient } from '../client';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { EXIT_FAILURE, printJson, printTable } from '../output';
import { resolveRecipe } from './recipe';

export const EXIT_NEEDS_OPERATOR = 3;
const LONG_CALL_MS = 30 * 60_000;

interface RolloutFlags extends CommonFlags {
  to?: string;
  window?: string;
  approve?: boolean;
  stageNow?: boolean;
  stageAt?: string;
  wait?: boolean;
  interval?: string;
}


/**
 * 0 succeeded, 3 someone must act, 1 otherwise. A rollout that ended (aborted, failed) with a host
 * whose rollback failed still needs an operator on that host: a script must not take 1 for "done".
 */
export function watchExitCode(r: Pick<RolloutView, 'state' | 'hosts'>): number {
  if (isIn(NEEDS_OPERATOR_STATES, r.state) || r.hosts.some((h) => h.state === 'rollback-failed'))
    return EXIT_NEEDS_OPERATOR;
  return r.state === 'succeeded' ? 0 : EXIT_FAILURE;
}

export function registerRollout(program: Command): void {
  withConnectionOptions(program.command('apply'))
    .description('validate a fleet file, show what changes, and store its deployments')
    .argument('<fleet.yaml>', 'the fleet definition')
    .option('--dry-run', 'show the difference only')
    .action((file: string, flags: CommonFlags & { dryRun?: boolean }) =>
      withClient(
        flags,
        async (client, deployments) => {
          const res = await client.call<{ changes: { name: string; action: string; diff: string[] }[] }>(
            'ApplyFleet',
            {
              deploymentsJson: JSON.stringify(deployments),
              dryRun: flags.dryRun === true,
              source: path.resolve(file),
            },
          );
          if (flags.json === true) return printJson({ dryRun: flags.dryRun === true, ...res });
          for (const c of res.changes) {
            process.stdout.write(`${c.action.padEnd(9)} ${c.name}\n`);
            for (const d of c.diff) process.stdout.write(`          ${d}\n`);
          }
          if (flags.dryRun === true) process.stdout.write('(dry run: nothing stored)\n');
        },
        () => compileFleet(file),
      ),
    );

  withConnectionOptions(program.command('deployments').command('list'))
    .description('the deployments the controller stores')
    .action((flags: CommonFlags) =>
      withClient(flags, async (client) => {
        const list = parseDoc<
          { name: string; recipe: string; target: string; hosts: unknown[]; window: string }[]
        >(await client.call('ListDeployments', {}));
        if (flags.json === true) return printJson(list);
        printTable(
          ['DEPLOYMENT', 'RECIPE', 'TARGET', 'HOST ENTRIES', 'WINDOW'],
          list.map((d) => [d.name, path.basename(d.recipe), d.target, String(d.hosts.length), d.window]),
        );
      }),
    );

  const rollout = program.command('rollout').description('plan, start, watch and steer rollouts');

  withConnectionOptions(rollout.command('plan'))
    .description("run every host's check and show the plan; changes nothing")
    .argument('<deployment>')
    .option('--to <version>', 'a version or latest (default: the deployment target)')
    .option('--window <name>', "another window of the fleet file than the deployment's")
    .action((deployment: string, flags: RolloutFlags) =>
      withClient(flags, async (client) => {
        const plan = parseDoc<PlanDoc>(
          await client.call('PlanRollout', rolloutRequest(deployment, flags), LONG_CALL_MS),
        );
        if (flags.json === true) printJson(plan);
        else printPlan(plan);
        if (plan.refusals.length > 0) process.exitCode = EXIT_FAILURE;
      }),
    );

  withConnectionOptions(rollout.command('start'))
    .description('plan, check the policy, and store a rollout; prints its id')
    .argument('<deployment>')
    .option('--to <version>', 'a version or latest (default: the deployment target)')
    .option('--approve', 'approve a jump the policy holds (a major upgrade)')
    .option('--stage-now', 'pre-download now instead of at the staging schedule')
    .option('--stage-at <time>', 'pre-download at this ISO time')
    .option('--window <name>', "another window of the fleet file than the deployment's")
    .option('--wait', 'then watch it until it finishes or needs an operator')
    .action((deployment: string, flags: RolloutFlags) =>
      withClient(
        flags,
        async (client, request) => {
          const doc = parseDoc<RolloutView>(await client.call('StartRollout', request, LONG_CALL_MS));
          if (flags.json === true && flags.wait !== true) return printJson(doc);
          if (flags.json !== true) {
            process.stdout.write(`${doc.id}\n`);
            process.stderr.write(
              `rollout ${doc.id}: ${doc.deployment} to ${doc.target}, staging at ${new Date(doc.stageAt).toISOString()}, window ${doc.window.name}\n`,
            );
          }
          if (flags.wait === true) await watch(client, doc.id, flags);
        },
        () => {
          if (flags.stageNow === true && flags.stageAt !== undefined)
            throw new ConvoyError('INVALID_ARGUMENT', '--stage-now and --stage-at exclude each other');
          return rolloutRequest(deployment, flags);
        },
      ),
    );

  withConnectionOptions(rollout.command('list'))
    .description('rollouts, newest last')
    .option('--deployment <name>')
    .option('--unfinished', 'only rollouts still running or waiting')
    .action((flags: CommonFlags & { deployment?: string; unfinished?: boolean }) =>
      withClient(flags, async (client) => {
        const list = parseDoc<RolloutView[]>(
          await client.call('ListRollouts', {
            deployment: flags.deployment ?? '',
            unfinishedOnly: flags.unfinished === true,
          }),
        );
        if (flags.json === true) return printJson(list);
        printTable(
          ['ROLLOUT', 'DEPLOYMENT', 'TARGET', 'STATE', 'HOSTS', 'CREATED'],
          list.map((r) => [
            r.id,
            r.deployment,
            r.target,
            stateText(r),
            progressText(r),
            new Date(r.createdAt).toISOString(),
          ]),
        );
      }),
    );

  withConnectionOptions(rollout.command('status'))
    .description('one rollout: state, batches, every host')
    .argument('<id>')
    .action((id: string, flags: CommonFlags) =>
      withClient(flags, async (client) => {
        const doc = parseDoc<RolloutView>(await client.call('GetRollout', { id }));
        if (flags.json === true) return printJson(doc);
        printRollout(doc);
      }),
    );

  withConnectionOptions(rollout.command('watch'))
    .description('follow a rollout until it finishes or needs an operator (live on a terminal)')
    .argument('<id>')
    .option('--interval <ms>', 'how often to ask', '1000')
    .action((id: string, flags: RolloutFlags) => withClient(flags, (client) => watch(client, id, flags)));

  for (const action of ['pause', 'resume', 'abort', 'retry', 'rollback'] as const) {
    const what = {
      pause: 'start no new host (hosts in flight finish)',
      resume: 'continue a paused or halted rollout',
      abort: 'stop for good: no new host starts, hosts in flight finish',
      retry: 'retry what held the rollout (finalize, failed hosts, verify)',
      rollback: 'roll back every upgraded host of a held or halted rollout',
    }[action];
    withConnectionOptions(rollout.command(action))
      .description(what)
      .argument('<id>')
      .action((id: string, flags: CommonFlags) =>
        withClient(flags, async (client) => {
          const doc = parseDoc<RolloutView>(await client.call('ActOnRollout', { id, action }));
          if (flags.json === true) return printJson(doc);
          process.stdout.write(`${doc.id}: ${stateText(doc)}${doc.reason ? ` (${doc.reason})` : ''}\n`);
        }),
      );
  }

  withConnectionOptions(program.command('events'))
    .description('the audit log (hash-chained): who did what and when')
    .option('--rollout <id>', 'only events of this rollout')
    .option('--host <id>', 'only events of this host')
    .option('--limit <n>', 'the newest n', '200')
    .action((flags: CommonFlags & { rollout?: string; host?: string; limit: string }) =>
      withClient(
        flags,
        async (client, limit) => {
          const events = parseDoc<
            {
              id: number;
              at: number;
              actor: string;
              kind: string;
              hostId: string | null;
              data: Record<string, unknown>;
            }[]
          >(
            await client.call('ListEvents', {
              rolloutId: flags.rollout ?? '',
              hostId: flags.host ?? '',
              limit,
            }),
          );
          if (flags.json === true) return printJson(events);
          for (const e of events) {
            const { rolloutId: _r, ...data } = e.data;
            const detail = Object.keys(data).length > 0 ? ` ${JSON.stringify(data)}` : '';
            process.stdout.write(
              `${new Date(e.at).toISOString()} ${e.actor} ${e.kind}${e.hostId ? ` host=${e.hostId}` : ''}${detail}\n`,
            );
          }
        },
        () => {
          const n = Number(flags.limit);
          if (!/^\d+$/.test(flags.limit) || n < 1)
            throw new ConvoyError(
              'INVALID_ARGUMENT',
              `--limit ${JSON.stringify(flags.limit)}: a positive integer`,
            );
          return n;
        },
      ),
    );
}

/** Loads and validates the fleet file here (every problem with its path), with its recipes' text. */
function compileFleet(file: string): unknown[] {
  const fleet = loadFleetFile(file);
  return fleet.deployments.map((d) => {
    const recipeFile = path.isAbsolute(d.recipe) ? d.recipe : resolveRecipe(d.recipe);
    let recipeYaml: string;
    try {
      recipeYaml = readFileSync(recipeFile, 'utf8');
    } catch (err) {
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `${file}: deployment ${d.name}: recipe ${recipeFile}: ${(err as Error).message}`,
        {
          file,
        },
      );
    }
    return { spec: d, windows: fleet.windows, recipeYaml, recipeLabel: recipeFile };
  });
}

function rolloutRequest(deployment: string, flags: RolloutFlags): Record<string, unknown> {
  let stageAtMs = 0;
  if (flags.stageAt !== undefined) {
    stageAtMs = Date.parse(flags.stageAt);
    if (!Number.isFinite(stageAtMs))
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `--stage-at ${JSON.stringify(flags.stageAt)}: not an ISO time`,
      );
  }
  return {
    deployment,
    target: flags.to ?? '',
    window: flags.window ?? '',
    approve: flags.approve === true,
    stageNow: flags.stageNow === true,
    stageAtMs,
  };
}

function parseDoc<T>(res: unknown): T {
  return JSON.parse((res as { json: string }).json) as T;
}

interface PlanDoc {
  deployment: string;
  recipe: string;
  requestedTarget: string;
  target: string;
  hosts: {
    hostId: string;
    hostname: string;
    role: string;
    batch: number;
    installed: string;
    available: string[];
    online: boolean;
    verdict: { kind: string; decision: string; reason: string } | null;
    problem: string;
  }[];
  cautions: string[];
  batches: string[][];
  needsApproval: boolean;
  refusals: string[];
  window: { name: string; cron: string; durationMs: number; timezone: string; cutoffMs: number };
  staging: { cron: string | null; timezone: string; jitterMs: number; concurrency: number };
  maxFailures: number;
  estimateMsPerHost: number | null;
  estimateMsTotal: number | null;
  finalizeRole: string | null;
}

function printPlan(p: PlanDoc): void {
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  out(
    `deployment ${p.deployment} (recipe ${p.recipe}) to ${p.target || '?'}${p.requestedTarget === 'latest' ? ' (latest)' : ''}`,
  );
  printTable(
    ['HOST', 'HOSTNAME', 'ROLE', 'INSTALLED', 'JUMP', 'DECISION', 'BATCH'],
    p.hosts.map((h) => [
      h.hostId,
      h.hostname,
      h.role || '-',
      h.installed || '?',
      h.verdict?.kind ?? '-',
      h.problem || (h.verdict?.decision ?? '-'),
      h.batch < 0 ? (h.verdict?.kind === 'same' ? 'already-installed' : '-') : String(h.batch),
    ]),
  );
  out(
    `batches: ${p.batches.map((b, i) => `${i === 0 ? 'canary ' : ''}[${b.length}]`).join(' -> ') || 'none'}; error threshold ${p.maxFailures}`,
  );
  out(
    `staging: ${p.staging.cron === null ? 'at start' : `${p.staging.cron} (${p.staging.timezone})`}, ${p.staging.concurrency} at a time`,
  );
  out(
    `window: ${p.window.name} = ${p.window.cron} for ${formatDuration(p.window.durationMs)} (${p.window.timezone}), cutoff ${formatDuration(p.window.cutoffMs)}`,
  );
  if (p.finalizeRole !== null) out(`finalize: once, on the host with role ${p.finalizeRole}`);
  out(
    `estimate: ${p.estimateMsTotal === null ? 'no past runs to estimate from' : `${formatDuration(p.estimateMsTotal)} (${formatDuration(p.estimateMsPerHost ?? 0)} per host)`}`,
  );
  for (const c of p.cautions) out(`CAUTION: ${c}`);
  if (p.needsApproval) out('needs --approve to start');
  for (const r of p.refusals) out(`REFUSED: ${r}`);
}

function stateText(r: RolloutView): string {
  return r.paused ? `${r.state} (paused)` : r.state;
}

function progressText(r: RolloutView): string {
  const p = r.progress;
  return `${(p['upgraded'] ?? 0) + (p['current'] ?? 0)}/${p['hosts'] ?? 0} upgraded, ${p['failed'] ?? 0} failed`;
}

function remaining(r: RolloutView): string {
  return r.estimatedRemainingMs === null ? '' : `, about ${formatDuration(r.estimatedRemainingMs)} left`;
}

function printRollout(r: RolloutView): void {
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  out(`rollout ${r.id}: ${r.deployment} to ${r.target} — ${stateText(r)}${r.reason ? ` (${r.reason})` : ''}`);
  out(
    `  staged ${r.progress['staged'] ?? 0}/${r.progress['hosts'] ?? 0}, ${progressText(r)}, batch ${r.currentBatch ?? '-'} of ${r.batches}, elapsed ${formatDuration(r.elapsedMs)}${remaining(r)}`,
  );
  const w = r.window;
  out(
    `  window ${w.name}: ${w.open ? `open until ${new Date(w.closesAt).toISOString()}` : `opens ${new Date(w.opensAt).toISOString()}`}`,
  );
  if (r.finalize.role !== null)
    out(
      `  finalize (${r.finalize.role}): ${r.finalize.state ?? 'not yet'}${r.finalize.host ? ` on ${r.finalize.host}` : ''}`,
    );
  printTable(
    ['HOST', 'HOSTNAME', 'ROLE', 'BATCH', 'STATE', 'PHASE', 'INSTALLED', 'STAGED', 'DOWNTIME', 'REASON'],
    r.hosts.map((h) => [
      h.hostId,
      h.hostname,
      h.role || '-',
      h.batch < 0 ? '-' : String(h.batch),
      h.unknown ? `${h.state} (unknown)` : h.state,
      h.phase ?? '-',
      h.installed || '-',
      h.staged || '-',
      h.downtimeMs === null ? '-' : formatDuration(h.downtimeMs),
      h.reason.slice(0, 60),
    ]),
  );
}

/** Polls until the rollout finishes or needs an operator; a live bar on a TTY, lines otherwise. */
async function watch(client: OperatorClient, id: string, flags: RolloutFlags): Promise<void> {
  const interval = Math.max(100, Number(flags.interval ?? 1000) || 1000);
  const tty = process.stdout.isTTY === true && flags.json !== true;
  let last = '';
  for (;;) {
    const r = parseDoc<RolloutView>(await client.call('GetRollout', { id }));
    const total = r.progress['hosts'] ?? 0;
    const done = (r.progress['upgraded'] ?? 0) + (r.progress['current'] ?? 0);
    const line = `${r.id} ${stateText(r)} staged ${r.progress['staged'] ?? 0}/${total} upgraded ${done}/${total} failed ${r.progress['failed'] ?? 0}${
      r.progress['unknown'] ? ` unknown ${r.progress['unknown']}` : ''
    } elapsed ${formatDuration(r.elapsedMs)}${remaining(r)}${r.reason ? ` — ${r.reason}` : ''}`;
    if (tty) {
      const width = 20;
      const filled = total === 0 ? width : Math.round((done / total) * width);
      process.stdout.write(
        `\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line.slice(0, 150)}`,
      );
    } else if (line !== last && flags.json !== true) {
      process.stdout.write(`${line}\n`);
    }
    last = line;
    if (isIn(RESTING_ROLLOUT_STATES, r.state)) {
      if (tty) process.stdout.write('\n');
      if (flags.json === true) printJson(r);
      else printRollout(r);
      process.exitCode = watchExitCode(r);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
