/** `convoy rollout status ID`: one rollout, its batches and every host. */
import type { Command } from 'commander';
import type { RolloutView } from '../../rollout/view';
import { parseDoc, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson } from '../output';
import { printRollout } from './rollout-print';

export function registerRolloutStatus(rollout: Command): void {
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
}
