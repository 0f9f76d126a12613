/** `convoy status`: every host, online or not, with what its agent last reported. */
import type { Command } from 'commander';
import type { WireHostView } from '../../../proto/wire';
import { parseLabelsFlag, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { ago, printJson, printTable } from '../output';

export function registerStatus(program: Command): void {
  withConnectionOptions(program.command('status'))
    .description('show every host: online, last seen, agent version, labels')
    .option('--select <labels>', 'only hosts with these labels, k=v,...')
    .action((flags: SelectFlags) => showHosts(flags, 'GetStatus'));
}

export type SelectFlags = CommonFlags & { select?: string };

/** `convoy status` (live fleet) and `convoy hosts list` (any state) print the same table. */
export function showHosts(flags: SelectFlags, method: 'GetStatus' | 'ListHosts'): Promise<void> {
  return withClient(
    flags,
    async (client, selector) => {
      const { hosts } = await client.call<{ hosts: WireHostView[] }>(method, { selector });
      if (flags.json === true) return printJson({ hosts: hosts.map(statusJson) });
      if (hosts.length === 0) {
        return void process.stdout.write('no hosts enrolled yet (see: convoy token create --help)\n');
      }
      printTable(
        ['HOST', 'HOSTNAME', 'STATE', 'ONLINE', 'LAST SEEN', 'AGENT', 'LABELS'],
        hosts.map((h) => [
          h.id,
          h.hostname,
          h.state,
          h.online ? 'online' : 'offline',
          ago(h.lastSeenMs),
          h.agentVersion,
          labelsText(h),
        ]),
      );
      process.stdout.write(`${hosts.filter((h) => h.online).length}/${hosts.length} online\n`);
    },
    () => parseLabelsFlag('--select', flags.select),
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
