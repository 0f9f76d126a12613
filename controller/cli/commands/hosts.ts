/** `convoy hosts list|show|approve|revoke|enroll|decommission`. */
import type { Command } from 'commander';
import type { WireAgentReport, WireHostView } from '../../../proto/wire';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { ago, printJson, printTable } from '../output';
import { registerHostsSsh } from './hosts-ssh';
import { labelsText, showHosts, statusJson, type SelectFlags } from './status';

export function registerHosts(program: Command): void {
  const hosts = program
    .command('hosts')
    .description('list, inspect, approve and revoke hosts; enroll and decommission them over SSH');
  registerHostsSsh(hosts);

  withConnectionOptions(hosts.command('list'))
    .description('every enrolled host, any state')
    .option('--select <labels>', 'only hosts with these labels, k=v,...')
    .action((flags: SelectFlags) => showHosts(flags, 'ListHosts'));

  withConnectionOptions(hosts.command('show').argument('<id>', 'host id'))
    .description('one host with its facts')
    .option('--live', 'also ask the agent, over the signed channel, for its own status')
    .action((id: string, flags: CommonFlags & { live?: boolean }) =>
      withClient(flags, async (client) => {
        const h = await client.call<WireHostView>('GetHost', { id });
        const live =
          flags.live === true ? await client.call<WireAgentReport>('QueryAgent', { id }) : undefined;
        if (flags.json === true) {
          const agent =
            live === undefined
              ? {}
              : { agent: { ...live, phaseJournal: JSON.parse(live.phaseJournal || 'null') as unknown } };
          return printJson({ ...statusJson(h), ...agent });
        }
        const rows: [string, string][] = [
          ['id', h.id],
          ['hostname', h.hostname],
          ['state', h.state],
          ['online', String(h.online)],
          [
            'last seen',
            h.lastSeenMs > 0 ? `${new Date(h.lastSeenMs).toISOString()} (${ago(h.lastSeenMs)})` : 'never',
          ],
          ['agent version', h.agentVersion],
          ['os', `${h.osPrettyName} (${h.osPlatform} ${h.osRelease} ${h.arch})`],
          ['labels', labelsText(h)],
          ['enrolled', new Date(h.enrolledAtMs).toISOString()],
          ['key id', h.keyId],
          ['last seq', String(h.lastSeq)],
        ];
        if (live !== undefined) {
          rows.push(
            ['agent pid', String(live.pid)],
            ['agent uptime', `${Math.round(live.uptimeMs / 1000)} s`],
            ['agent memory', `${(live.rssBytes / 1048576).toFixed(1)} MB RSS`],
            ['agent last seq', String(live.lastSeq)],
            ['round trip', `${live.rttMs.toFixed(1)} ms`],
            ['phase journal', live.phaseJournal],
          );
        }
        printTable(['FIELD', 'VALUE'], rows);
      }),
    );

  for (const [verb, method, past] of [
    ['approve', 'ApproveHost', 'approved'],
    ['revoke', 'RevokeHost', 'revoked'],
  ] as const) {
    withConnectionOptions(hosts.command(verb).argument('<id>', 'host id'))
      .description(
        verb === 'approve'
          ? 'let a pending host connect and receive commands'
          : "refuse a host's key from now on",
      )
      .action((id: string, flags: CommonFlags) =>
        withClient(flags, async (client) => {
          const h = await client.call<WireHostView>(method, { id });
          if (flags.json === true) return printJson(statusJson(h));
          process.stdout.write(`${past} ${h.id} (${h.hostname}); state ${h.state}\n`);
        }),
      );
  }
}
