/** `convoy hosts approve ID`: let a pending host (`--require-approval`) connect. */
import type { Command } from 'commander';
import type { WireHostView } from '../../../proto/wire';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson } from '../output';
import { statusJson } from './host-table';

export function registerHostsApprove(hosts: Command): void {
  withConnectionOptions(hosts.command('approve').argument('<id>', 'host id'))
    .description('let a pending host connect and receive commands')
    .action((id: string, flags: CommonFlags) =>
      withClient(flags, async (client) => {
        const h = await client.call<WireHostView>('ApproveHost', { id });
        if (flags.json === true) return printJson(statusJson(h));
        process.stdout.write(`approved ${h.id} (${h.hostname}); state ${h.state}\n`);
      }),
    );
}
