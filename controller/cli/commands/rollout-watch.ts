/** `convoy rollout watch ID`: follow a rollout until it rests (exit codes in ./rollout-follow). */
import type { Command } from 'commander';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { duration, flagOption } from '../flags';
import { followRollout } from './rollout-follow';

export function registerRolloutWatch(rollout: Command): void {
  withConnectionOptions(rollout.command('watch'))
    .description('follow a rollout until it finishes or needs an operator (live on a terminal)')
    .argument('<id>')
    .addOption(
      flagOption(
        '--interval <duration>',
        'how often to ask, 100ms to 1d (a bare number is milliseconds)',
        // Once the only form was milliseconds (`--interval 500`): a bare number still means that.
        duration({ min: '100ms', max: '1d', bareMs: true }),
        '1s',
      ),
    )
    .action((id: string, flags: CommonFlags & { interval: number }) =>
      withClient(flags, (client) =>
        followRollout(client, id, { json: flags.json === true, intervalMs: flags.interval }),
      ),
    );
}
