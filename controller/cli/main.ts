/**
 * The `convoy` operator CLI. One file per command under ./commands, named for it
 * (`rollout watch` in commands/rollout-watch.ts); the command groups are made here, in the order
 * `convoy --help` lists them.
 */
import { Command, CommanderError } from 'commander';
import { CONVOY_VERSION } from '../../shared/version';
import { registerApply } from './commands/apply';
import { registerControllerPubkey } from './commands/controller-pubkey';
import { registerControllerStart } from './commands/controller-start';
import { registerDeploymentsList } from './commands/deployments-list';
import { registerEvents } from './commands/events';
import { registerHostsApprove } from './commands/hosts-approve';
import { registerHostsDecommission } from './commands/hosts-decommission';
import { registerHostsEnroll } from './commands/hosts-enroll';
import { registerHostsList } from './commands/hosts-list';
import { registerHostsRevoke } from './commands/hosts-revoke';
import { registerHostsShow } from './commands/hosts-show';
import { registerPhaseRun } from './commands/phase-run';
import { registerPing } from './commands/ping';
import { registerRecipeShow } from './commands/recipe-show';
import { registerRecipeValidate } from './commands/recipe-validate';
import { registerReleaseKeygen } from './commands/release-keygen';
import { registerReleaseSign } from './commands/release-sign';
import { registerRolloutActs } from './commands/rollout-act';
import { registerRolloutList } from './commands/rollout-list';
import { registerRolloutPlan } from './commands/rollout-plan';
import { registerRolloutStart } from './commands/rollout-start';
import { registerRolloutStatus } from './commands/rollout-status';
import { registerRolloutWatch } from './commands/rollout-watch';
import { registerStatus } from './commands/status';
import { registerTokenCreate } from './commands/token-create';
import { FlagValueError } from './flags';
import { EXIT_USAGE, reportFailure } from './output';

export function buildProgram(): Command {
  const program = new Command('convoy')
    .description('Convoy: upgrade self-hosted applications across a fleet, safely.')
    .version(CONVOY_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const controller = program.command('controller').description('run the controller and inspect its identity');
  registerControllerStart(controller);
  registerControllerPubkey(controller);

  registerTokenCreate(program.command('token').description('enrollment tokens'));
  registerStatus(program);

  const hosts = program
    .command('hosts')
    .description('list, inspect, approve and revoke hosts; enroll and decommission them over SSH');
  registerHostsEnroll(hosts);
  registerHostsDecommission(hosts);
  registerHostsList(hosts);
  registerHostsShow(hosts);
  registerHostsApprove(hosts);
  registerHostsRevoke(hosts);

  registerPing(program);
  registerPhaseRun(program.command('phase').description('run recipe phases on hosts'));

  const recipe = program.command('recipe').description('check and show recipes (no controller needed)');
  registerRecipeValidate(recipe);
  registerRecipeShow(recipe);

  registerApply(program);
  registerDeploymentsList(program.command('deployments'));

  const rollout = program.command('rollout').description('plan, start, watch and steer rollouts');
  registerRolloutPlan(rollout);
  registerRolloutStart(rollout);
  registerRolloutList(rollout);
  registerRolloutStatus(rollout);
  registerRolloutWatch(rollout);
  registerRolloutActs(rollout);
  registerEvents(program);

  const release = program.command('release').description('release keys and signatures for signed artifacts');
  registerReleaseKeygen(release);
  registerReleaseSign(release);
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
    if (err instanceof FlagValueError) {
      reportFailure(err, argv.includes('--json'));
      return;
    }
    throw err;
  }
}
