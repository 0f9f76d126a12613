/**
 * `convoy-agent phase run`: run one phase of a recipe on this machine, no controller needed.
 * For recipe authors: `--dry-run` prints every step with its variables substituted and runs
 * nothing. Exit 0 when the phase succeeded, 1 when a step failed, 2 for a usage error.
 */
import type { Command } from 'commander';
import { PHASES } from '../../shared/recipe/types';
import type { PhaseRunFlags } from './local-phase';
import { oneOfOption } from './flags';
import { reportFailure } from './output';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerPhaseRun(phase: Command): void {
  phase
    .command('run')
    .description('run one phase of a recipe on this machine and print each step and its result')
    .requiredOption('--recipe <file>', 'the recipe YAML file')
    .addOption(oneOfOption('--phase <name>', `one of ${PHASES.join(', ')}`, PHASES).makeOptionMandatory())
    .option('--dry-run', 'print the steps with variables substituted; run nothing')
    .option(
      '--var <k=v>',
      'a variable: target=4.1.2, installed=4.0.5, or a recipe var (repeatable)',
      collect,
      [],
    )
    .option('--role <role>', "this host's role, for `when` conditions (repeatable)", collect, [])
    .option('--run-id <id>', 'run id, kept across phases so a rollback finds its backup (as a rollout does)')
    .option('--read-run <id>', 'an earlier run whose results this phase may read (repeatable)', collect, [])
    .option('--state-dir <dir>', 'where the phase journal, staging and backups live', '.convoy-phase')
    .option(
      '--release-key <key>',
      'an Ed25519 release key artifacts must be signed by (repeatable)',
      collect,
      [],
    )
    .option('--secrets <file>', 'root-only JSON file of secret values, by name')
    .option('--json', 'print the outcome as JSON')
    .action(async (flags: PhaseRunFlags) => {
      try {
        // Loaded here only: the daemon never needs the recipe compiler or the step executors.
        const { runLocalPhase } = await import('./local-phase');
        const outcome = await runLocalPhase(flags);
        if (flags.json === true) process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
        if (!outcome.ok) process.exitCode = 1;
      } catch (err) {
        reportFailure(err);
      }
    });
}
