/** `convoy hosts list`: every enrolled host, in any state (pending, active, revoked). */
import type { Command } from 'commander';
import { withConnectionOptions } from '../common';
import { showHosts, type SelectFlags } from './host-table';

export function registerHostsList(hosts: Command): void {
  withConnectionOptions(hosts.command('list'))
    .description('every enrolled host, any state')
    .option('--select <labels>', 'only hosts with these labels, k=v,...')
    .action((flags: SelectFlags) => showHosts(flags, 'ListHosts'));
}
