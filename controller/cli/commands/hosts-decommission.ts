/**
 * `convoy hosts decommission ID [--ssh USER@HOST]`: stop and remove the host's agent over SSH (with
 * --ssh), revoke its key and forget its state.
 */
import type { Command } from 'commander';
import { withClient, withConnectionOptions } from '../common';
import { printJson } from '../output';
import { controllerApi, remoteOptions, sshOptions, type SshFlags } from './ssh-install';

export function registerHostsDecommission(hosts: Command): void {
  sshOptions(withConnectionOptions(hosts.command('decommission').argument('<id>', 'host id')))
    .description("stop and remove the host's agent (with --ssh), revoke its key and forget its state")
    .option('--ssh <user@host[:port]>', 'also remove the agent from the host over SSH')
    .action((id: string, flags: SshFlags) =>
      withClient(
        flags,
        async (client, opts) => {
          const { decommissionOverSsh } = await import('../../ssh/remote-agent');
          const res = await decommissionOverSsh(controllerApi(client), id, opts);
          if (flags.json === true) return printJson(res);
          process.stdout.write(
            `decommissioned ${res.hostId}${res.target === null ? '' : ` (${res.target})`}\n`,
          );
        },
        () => (flags.ssh === undefined ? undefined : remoteOptions(flags, flags.ssh)),
      ),
    );
}
