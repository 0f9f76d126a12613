/**
 * The `convoy-agent` CLI: `enroll` once, then `run` (the daemon); `phase run` for recipe authors;
 * `install`, `uninstall` and `supervise` for SSH enrollment. One file per command, named for it.
 */
import { Command, CommanderError } from 'commander';
import { CONVOY_VERSION } from '../../shared/version';
import { registerEnroll } from './enroll';
import { registerInstallCommands } from './install';
import { FlagValueError } from './flags';
import { EXIT_USAGE, reportFailure } from './output';
import { registerPhaseRun } from './phase-run';
import { registerRun } from './run';
import { registerSupervise } from './supervise';

export function buildProgram(): Command {
  const program = new Command('convoy-agent')
    .description('The Convoy agent: one per host; runs what the controller signs.')
    .version(CONVOY_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerEnroll(program);
  registerRun(program);
  registerPhaseRun(program.command('phase').description('run recipe phases locally (for recipe authors)'));
  registerInstallCommands(program);
  registerSupervise(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; usage errors were already printed.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    // A flag's value refused as it was read (./flags.ts): reported like every usage error, exit 2.
    if (err instanceof FlagValueError) return reportFailure(err);
    throw err;
  }
}
