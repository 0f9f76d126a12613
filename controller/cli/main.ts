/** The `convoy` operator CLI. One file per command family under ./commands. */
import { Command, CommanderError } from 'commander';
import { CONVOY_VERSION } from '../../shared/version';
import { registerController } from './commands/controller';
import { registerHosts } from './commands/hosts';
import { registerPhase } from './commands/phase';
import { registerPing } from './commands/ping';
import { registerRecipe } from './commands/recipe';
import { registerRelease } from './commands/release';
import { registerRollout } from './commands/rollout';
import { registerStatus } from './commands/status';
import { registerToken } from './commands/token';
import { EXIT_USAGE } from './output';

export function buildProgram(): Command {
  const program = new Command('convoy')
    .description('Convoy: upgrade self-hosted applications across a fleet, safely.')
    .version(CONVOY_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerController(program);
  registerToken(program);
  registerStatus(program);
  registerHosts(program);
  registerPing(program);
  registerPhase(program);
  registerRecipe(program);
  registerRollout(program);
  registerRelease(program);
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
    throw err;
  }
}
