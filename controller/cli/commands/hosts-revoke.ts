/** `convoy hosts revoke ID`: refuse a host's key from now on. */
import type { Command } from 'commander';
import type { WireHostView } from '../../../proto/wire';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson } from '../output';
import { statusJson } from './host-table';

export function registerHostsRevoke(hosts: Command): void {
  withConnectionOptions(hosts.command('revoke').argument('<id>', 'host id'))
    .description("refuse a host's key from now on")
    .action((id: string, flags: CommonFlags) =>
      withClient(flags, async (client) => {
        const h = await client.call<WireHostView>('RevokeHost', { id });
        if (flags.json === true) return printJson(statusJson(h));
        process.stdout.write(`revoked ${h.id} (${h.hostname}); state ${h.state}\n`);
      }),
    );
}
