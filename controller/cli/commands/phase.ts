/** `convoy phase run`: one phase of a recipe on one host, through its agent, every step reported. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../../../shared/duration';
import { ConvoyError } from '../../../shared/errors';
import { PHASES } from '../../../shared/recipe/types';
import type { WirePhaseReport, WireStepReport } from '../../../proto/wire';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { EXIT_FAILURE, printJson } from '../output';
import { resolveRecipe } from './recipe';

interface PhaseFlags extends CommonFlags {
  host: string;
  recipe: string;
  phase: string;
  target?: string;
  installed?: string;
  var: string[];
  timeout?: string;
  run?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerPhase(program: Command): void {
  const phase = program.command('phase').description('run recipe phases on hosts');
  withConnectionOptions(phase.command('run'))
    .description('run one phase of a recipe on one host and print every step and its result')
    .requiredOption('--host <id>', 'the host (convoy hosts list)')
    .requiredOption('--recipe <name|file>', 'a built-in recipe name or a recipe file')
    .requiredOption('--phase <name>', `one of ${PHASES.join(', ')}`)
    .option('--target <version>', 'the version {{target}} stands for')
    .option('--installed <version>', 'the version {{installed}} stands for')
    .option('--var <k=v>', 'override a recipe var (repeatable)', collect, [])
    .option('--run <id>', 'continue a run: the run id an earlier phase printed (rollback finds its backup)')
    .option('--timeout <duration>', "how long to wait (default: the sum of the phase's step bounds)")
    .action((flags: PhaseFlags) =>
      withClient(
        flags,
        async (client, request) => {
          const report = await client.call<WirePhaseReport>(
            'RunPhase',
            request,
            request.timeoutMs || 24 * 3_600_000,
          );
          if (flags.json === true) printJson(report);
          else printReport(report);
          if (!report.ok) process.exitCode = EXIT_FAILURE;
        },
        () => phaseRequest(flags),
      ),
    );
}

function phaseRequest(flags: PhaseFlags): Record<string, unknown> & { timeoutMs: number } {
  if (!(PHASES as readonly string[]).includes(flags.phase)) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--phase ${JSON.stringify(flags.phase)}: use one of ${PHASES.join(', ')}`,
    );
  }
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
  const timeoutMs = flags.timeout === undefined ? 0 : parseDuration(flags.timeout);
  if (timeoutMs === null)
    throw new ConvoyError('INVALID_ARGUMENT', `--timeout ${JSON.stringify(flags.timeout)}: not a duration`);
  return {
    hostId: flags.host,
    recipeYaml,
    recipeLabel: file,
    phase: flags.phase,
    vars,
    target: flags.target ?? '',
    installed: flags.installed ?? '',
    timeoutMs,
    runId: flags.run ?? '',
  };
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
