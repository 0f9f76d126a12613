/**
 * `convoy rollout pause|resume|abort|retry|rollback|resolve ID`: the operator's actions on a rollout
 * (controller/rollout/actions.ts says in which states each applies). They differ only by name,
 * so one registrar makes the six commands from this table.
 */
import type { Command } from 'commander';
import type { RolloutAction } from '../../rollout/actions';
import type { RolloutView } from '../../rollout/view';
import { parseDoc, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson } from '../output';
import { stateText } from './rollout-print';

const ACTION_HELP: Readonly<Record<RolloutAction, string>> = {
  pause: 'start no new host (hosts in flight finish)',
  resume: 'continue a paused or halted rollout',
  abort: 'stop for good: no new host starts, hosts in flight finish',
  retry: 'retry what held the rollout (finalize, failed hosts, verify)',
  rollback: 'roll back every upgraded host of a held or halted rollout',
  resolve: 'after the manual procedure: the hosts held past the point of no return count as rolled back',
};

export function registerRolloutActs(rollout: Command): void {
  for (const [action, description] of Object.entries(ACTION_HELP)) {
    withConnectionOptions(rollout.command(action))
      .description(description)
      .argument('<id>')
      .action((id: string, flags: CommonFlags) =>
        withClient(flags, async (client) => {
          const doc = parseDoc<RolloutView>(await client.call('ActOnRollout', { id, action }));
          if (flags.json === true) return printJson(doc);
          process.stdout.write(`${doc.id}: ${stateText(doc)}${doc.reason ? ` (${doc.reason})` : ''}\n`);
        }),
      );
  }
}
