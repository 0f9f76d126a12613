/** `convoy status`: every host, online or not, with what its agent last reported. */
import type { Command } from 'commander';
import { withConnectionOptions } from '../common';
import { showHosts, type SelectFlags } from './host-table';

export function registerStatus(program: Command): void {
  withConnectionOptions(program.command('status'))
    .description(
      'show every host: online, last seen, agent, labels, application, installed and staged versions, maintenance, backup, health, rollout',
    )
    .option('--select <labels>', 'only hosts with these labels, k=v,...')
    .action((flags: SelectFlags) => showHosts(flags, 'GetStatus'));
}
