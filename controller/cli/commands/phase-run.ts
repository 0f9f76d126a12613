/**
 * `convoy phase run`: one phase of a recipe on one host (`--host`) or on every matching host
 * (`--select`), through the agents, every step reported. The fan-out is many concurrent RunPhase
 * calls over the one operator channel: each host's run is recorded and signed exactly as a
 * single-host run is, so nothing about a run depends on how many ran beside it.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatDuration } from '../../../shared/duration';
import { ConvoyError } from '../../../shared/errors';
import { PHASES, type PhaseName } from '../../../shared/recipe/types';
import { formatLabels, type Labels } from '../../../shared/labels';
import type { WireHostView, WirePhaseReport, WireStepReport } from '../../../proto/wire';
import type { OperatorClient } from '../client';
import { parseLabelsFlag, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { duration, flagOption, MAX_UINT32_DURATION, oneOf, wholeNumber } from '../flags';
import { EXIT_FAILURE, printJson } from '../output';
import { resolveRecipe } from './recipe-files';

interface PhaseFlags extends CommonFlags {
  host?: string;
  select?: string;
  parallel: number;
  recipe: string;
  phase: PhaseName;
  target?: string;
  installed?: string;
  var: string[];
  timeout?: number;
  run?: string;
  approve?: boolean;
  override?: boolean;
  reason?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerPhaseRun(phase: Command): void {
  withConnectionOptions(phase.command('run'))
    .description('run one phase of a recipe on one host, or on every matching host, and print every step')
    .option('--host <id>', 'the host (convoy hosts list)')
    .option('--select <labels>', 'every active host with these labels, k=v,... ("" for all)')
    .addOption(
      flagOption(
        '--parallel <n>',
        'with --select: how many hosts run at once',
        wholeNumber({ max: 4096 }),
        '256',
      ),
    )
    .requiredOption('--recipe <name|file>', 'a built-in recipe name or a recipe file')
    .addOption(
      flagOption('--phase <name>', `one of ${PHASES.join(', ')}`, oneOf(PHASES)).makeOptionMandatory(),
    )
    .option('--target <version>', 'the version {{target}} stands for')
    .option('--installed <version>', 'the version {{installed}} stands for')
    .option('--var <k=v>', 'override a recipe var (repeatable)', collect, [])
    .option('--run <id>', 'continue a run: the run id an earlier phase printed (rollback finds its backup)')
    .option('--approve', "approve a jump the deployment's policy holds (a major upgrade)")
    .option(
      '--override',
      "go around the deployment's policy and a running rollout's lock (needs --reason; audited)",
    )
    .option('--reason <text>', 'why the policy is gone around: recorded in the audit log')
    .addOption(
      flagOption(
        '--timeout <duration>',
        "how long to wait (default: the sum of the phase's step bounds)",
        duration({ max: MAX_UINT32_DURATION }),
      ),
    )
    .action((flags: PhaseFlags) =>
      withClient(
        flags,
        async (client, request) => {
          if (request.selector !== undefined) {
            await runOnSelected(client, request, request.selector, request.parallel, flags.json === true);
            return;
          }
          const report = await client.call<WirePhaseReport>(
            'RunPhase',
            request,
            callDeadline(request.timeoutMs),
          );
          if (flags.json === true) printJson(report);
          else printReport(report);
          if (!report.ok) process.exitCode = EXIT_FAILURE;
        },
        () => phaseRequest(flags),
      ),
    );
}

/**
 * The CLI's own deadline outlasts the controller's: a host that never answers should be reported
 * by the controller as COMMAND_TIMEOUT, not by the client as an unreachable controller.
 */
function callDeadline(timeoutMs: number): number {
  return timeoutMs === 0 ? 24 * 3_600_000 : timeoutMs + 15_000;
}

type PhaseRequest = Record<string, unknown> & {
  timeoutMs: number;
  selector?: Labels;
  parallel: number;
};

function phaseRequest(flags: PhaseFlags): PhaseRequest {
  if ((flags.host === undefined) === (flags.select === undefined)) {
    throw new ConvoyError('INVALID_ARGUMENT', 'give exactly one of --host ID or --select LABELS');
  }
  if (flags.select !== undefined && flags.run !== undefined) {
    throw new ConvoyError('INVALID_ARGUMENT', "--run continues one host's run: use it with --host");
  }
  const selector = flags.select === undefined ? undefined : parseLabelsFlag('--select', flags.select);
  const file = resolveRecipe(flags.recipe);
  let recipeYaml: string;
  try {
    recipeYaml = readFileSync(file, 'utf8');
  } catch {
    throw new ConvoyError('INVALID_ARGUMENT', `--recipe ${file}: cannot read it`);
  }
  const vars: Record<string, string> = {};
  for (const pair of flags.var) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new ConvoyError('INVALID_ARGUMENT', `--var ${JSON.stringify(pair)}: must look like name=value`);
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return {
    ...(selector === undefined ? {} : { selector }),
    parallel: flags.parallel,
    hostId: flags.host ?? '',
    recipeYaml,
    recipeLabel: file,
    phase: flags.phase,
    vars,
    target: flags.target ?? '',
    installed: flags.installed ?? '',
    timeoutMs: flags.timeout ?? 0,
    runId: flags.run ?? '',
    approve: flags.approve === true,
    override: flags.override === true,
    reason: flags.reason ?? '',
  };
}

/** One host's outcome of a fanned-out phase: its report, or why the controller gave none. */
interface HostPhaseResult {
  hostId: string;
  hostname: string;
  ok: boolean;
  report: WirePhaseReport | null;
  error?: { code: string; message: string };
}

async function runOnSelected(
  client: OperatorClient,
  request: PhaseRequest,
  selector: Labels,
  parallel: number,
  json: boolean,
): Promise<void> {
  const { hosts } = await client.call<{ hosts: WireHostView[] }>('ListHosts', { selector });
  const targets = hosts.filter((h) => h.state === 'active');
  if (targets.length === 0) {
    throw new ConvoyError(
      'HOST_UNKNOWN',
      `--select ${JSON.stringify(formatLabels(selector))}: no active host matches`,
    );
  }
  const { selector: _omit, parallel: _p, ...base } = request;
  const results = await mapLimit(targets, parallel, async (h): Promise<HostPhaseResult> => {
    let result: HostPhaseResult;
    try {
      const report = await client.call<WirePhaseReport>(
        'RunPhase',
        { ...base, hostId: h.id },
        callDeadline(request.timeoutMs),
      );
      result = { hostId: h.id, hostname: h.hostname, ok: report.ok, report };
    } catch (err) {
      const code = err instanceof ConvoyError ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      result = { hostId: h.id, hostname: h.hostname, ok: false, report: null, error: { code, message } };
    }
    if (!json) process.stdout.write(hostLine(result) + '\n');
    return result;
  });
  const ok = results.filter((r) => r.ok).length;
  if (json) printJson({ results, ok, total: results.length });
  else process.stdout.write(`${ok}/${results.length} hosts ok\n`);
  if (ok < results.length) process.exitCode = EXIT_FAILURE;
}

function hostLine(r: HostPhaseResult): string {
  const name = `${r.hostname} (${r.hostId})`;
  if (r.report === null) return `✗ ${name}: ${r.error?.code ?? 'INTERNAL'}: ${r.error?.message ?? ''}`;
  if (r.ok) return `✓ ${name}: ${r.report.steps.filter((s) => s.status === 'ran').length} steps`;
  const failed = r.report.steps.find((s) => s.status === 'ran' && !s.ok);
  return failed === undefined
    ? `✗ ${name}: failed`
    : `✗ ${name}: ${failed.stepId}: ${failed.errorCode}: ${failed.errorMessage}`;
}

/** Runs `fn` over `items` with at most `limit` in flight, results in the input's order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function printReport(r: WirePhaseReport): void {
  if (r.resumed)
    process.stdout.write(`resumed: ${(JSON.parse(r.resumed) as { reason?: string }).reason ?? r.resumed}\n`);
  for (const s of r.steps) process.stdout.write(stepLine(s) + '\n');
  if (r.installed) process.stdout.write(`installed: ${r.installed}\n`);
  if (r.available.length > 0) process.stdout.write(`available: ${r.available.join(', ')}\n`);
  process.stdout.write(`${r.recipe} ${r.phase} on ${r.hostId}: ${r.ok ? 'ok' : 'FAILED'} (run ${r.runId})\n`);
}

function stepLine(s: WireStepReport): string {
  if (s.status !== 'ran') return `  - ${s.stepId} ${s.status}`;
  const took = formatDuration(s.durationMs);
  if (s.ok) return `  ✓ ${s.stepId} (${s.type}) ${took}${s.backupId ? ` backup ${s.backupId}` : ''}`;
  const tail = s.outputTail
    .trim()
    .split('\n')
    .slice(-5)
    .map((l) => `    | ${l}`)
    .join('\n');
  return `  ✗ ${s.stepId} (${s.type}) ${took}: ${s.errorCode}: ${s.errorMessage}${tail ? '\n' + tail : ''}`;
}
