/** `convoy rollout start DEPLOYMENT`: plan, check the policy, store the rollout, print its id. */
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import type { RolloutView } from '../../rollout/view';
import { parseDoc, withClient, withConnectionOptions } from '../common';
import { flagOption, isoTime } from '../flags';
import { printJson } from '../output';
import { DEFAULT_FOLLOW_INTERVAL_MS, followRollout } from './rollout-follow';
import { LONG_CALL_MS, rolloutRequest, type RolloutRequestFlags } from './rollout-request';

type StartFlags = RolloutRequestFlags & { wait?: boolean };

export function registerRolloutStart(rollout: Command): void {
  withConnectionOptions(rollout.command('start'))
    .description('plan, check the policy, and store a rollout; prints its id')
    .argument('<deployment>')
    .option('--to <version>', 'a version or latest (default: the deployment target)')
    .option('--approve', 'approve a jump the policy holds (a major upgrade)')
    .option(
      '--acknowledge-cautions',
      "acknowledge the recipe's cautions for this jump (printed, and recorded in the audit log)",
    )
    .option('--stage-now', 'pre-download now instead of at the staging schedule')
    .addOption(flagOption('--stage-at <time>', 'pre-download at this ISO time', isoTime))
    .option('--window <name>', "another window of the fleet file than the deployment's")
    .option('--wait', 'then watch it until it finishes or needs an operator')
    .action((deployment: string, flags: StartFlags) =>
      withClient(
        flags,
        async (client, request) => {
          const doc = parseDoc<RolloutView>(await client.call('StartRollout', request, LONG_CALL_MS));
          if (flags.json === true && flags.wait !== true) return printJson(doc);
          if (flags.json !== true) {
            for (const c of doc.cautions) process.stderr.write(`CAUTION (acknowledged): ${c}\n`);
            process.stdout.write(`${doc.id}\n`);
            process.stderr.write(
              `rollout ${doc.id}: ${doc.deployment} to ${doc.target}, staging at ${new Date(doc.stageAt).toISOString()}, window ${doc.window.name}\n`,
            );
          }
          if (flags.wait === true)
            await followRollout(client, doc.id, {
              json: flags.json === true,
              intervalMs: DEFAULT_FOLLOW_INTERVAL_MS,
            });
        },
        () => {
          if (flags.stageNow === true && flags.stageAt !== undefined)
            throw new ConvoyError('INVALID_ARGUMENT', '--stage-now and --stage-at exclude each other');
          return rolloutRequest(deployment, flags);
        },
      ),
    );
}
