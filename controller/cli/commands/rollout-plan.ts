/** `convoy rollout plan DEPLOYMENT`: every host's check and the plan a start would store. */
import type { Command } from 'commander';
import { formatDuration } from '../../../shared/duration';
import type { Plan } from '../../rollout/plan';
import { parseDoc, withClient, withConnectionOptions } from '../common';
import { EXIT_FAILURE, printJson, printTable } from '../output';
import { LONG_CALL_MS, rolloutRequest, type RolloutRequestFlags } from './rollout-request';

export function registerRolloutPlan(rollout: Command): void {
  withConnectionOptions(rollout.command('plan'))
    .description("run every host's check and show the plan; changes nothing")
    .argument('<deployment>')
    .option('--to <version>', 'a version or latest (default: the deployment target)')
    .option('--window <name>', "another window of the fleet file than the deployment's")
    .action((deployment: string, flags: RolloutRequestFlags) =>
      withClient(flags, async (client) => {
        const plan = parseDoc<Plan>(
          await client.call('PlanRollout', rolloutRequest(deployment, flags), LONG_CALL_MS),
        );
        if (flags.json === true) printJson(plan);
        else printPlan(plan);
        if (plan.refusals.length > 0) process.exitCode = EXIT_FAILURE;
      }),
    );
}

function printPlan(p: Plan): void {
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
