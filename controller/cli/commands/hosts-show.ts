/** `convoy hosts show ID [--live]`: one host with its facts, and with `--live` its agent's own status. */
import type { Command } from 'commander';
import type { WireAgentReport, WireHostView } from '../../../proto/wire';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { ago, printJson, printTable } from '../output';
import { labelsText, statusJson } from './host-table';

export function registerHostsShow(hosts: Command): void {
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
}
