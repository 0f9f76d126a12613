/** `convoy rollout list`: every rollout (or a deployment's, or the unfinished), newest last. */
import type { Command } from 'commander';
import type { RolloutView } from '../../rollout/view';
import { parseDoc, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson, printTable } from '../output';
import { progressText, stateText } from './rollout-print';

export function registerRolloutList(rollout: Command): void {
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
}
