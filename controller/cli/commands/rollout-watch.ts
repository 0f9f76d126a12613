/** `convoy rollout watch ID`: follow a rollout until it rests (exit codes in ./rollout-follow). */
import type { Command } from 'commander';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { followRollout } from './rollout-follow';

export function registerRolloutWatch(rollout: Command): void {
  withConnectionOptions(rollout.command('watch'))
    .description('follow a rollout until it finishes or needs an operator (live on a terminal)')
    .argument('<id>')
    .option('--interval <ms>', 'how often to ask', '1000')
    .action((id: string, flags: CommonFlags & { interval: string }) =>
      withClient(flags, (client) =>
        followRollout(client, id, { json: flags.json === true, interval: flags.interval }),
      ),
    );
}
