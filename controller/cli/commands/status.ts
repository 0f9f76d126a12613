/** `convoy status`: every host, online or not, with what its agent last reported. */
import type { Command } from 'commander';
import type { WireHostView } from '../../../proto/wire';
import { parseLabelsFlag, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { ago, printJson, printTable } from '../output';

export function registerStatus(program: Command): void {
  withConnectionOptions(program.command('status'))
    .description('show every host: online, last seen, agent version, labels')
    .option('--select <labels>', 'only hosts with these labels, k=v,...')
    .action((flags: CommonFlags & { select?: string }) =>
      withClient(flags, async (client) => {
        const res = await client.call<{ hosts: WireHostView[] }>('GetStatus', {
          selector: parseLabelsFlag('--select', flags.select),
        });
        if (flags.json === true) return printJson({ hosts: res.hosts.map(statusJson) });
        if (res.hosts.length === 0)
          return void process.stdout.write('no hosts enrolled yet (see: convoy token create --help)\n');
        printTable(
          ['HOST', 'HOSTNAME', 'STATE', 'ONLINE', 'LAST SEEN', 'AGENT', 'LABELS'],
          res.hosts.map((h) => [
            h.id,
            h.hostname,
            h.state,
            h.online ? 'online' : 'offline',
            ago(h.lastSeenMs),
            h.agentVersion,
            labelsText(h),
          ]),
        );
        const online = res.hosts.filter((h) => h.online).length;
        process.stdout.write(`${online}/${res.hosts.length} online\n`);
      }),
    );
}

export function statusJson(h: WireHostView): Record<string, unknown> {
  return {
    id: h.id,
    hostname: h.hostname,
    online: h.online,
    lastSeen: h.lastSeenMs > 0 ? new Date(h.lastSeenMs).toISOString() : null,
    agentVersion: h.agentVersion,
    labels: h.labels,
    state: h.state,
    os: { platform: h.osPlatform, release: h.osRelease, arch: h.arch, name: h.osPrettyName },
    enrolledAt: new Date(h.enrolledAtMs).toISOString(),
    lastSeq: h.lastSeq,
    keyId: h.keyId,
  };
}

export function labelsText(h: WireHostView): string {
  return Object.entries(h.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
