/**
 * The host table `convoy status` (the live fleet) and `convoy hosts list` (any state) print, and
 * the JSON of one host that `hosts show|approve|revoke` share.
 */
import type { WireHostView } from '../../../proto/wire';
import { formatDuration } from '../../../shared/duration';
import { parseLabelsFlag, withClient, type CommonFlags } from '../common';
import { ago, printJson, printTable } from '../output';

export type SelectFlags = CommonFlags & { select?: string };

/** The table of hosts, from the live fleet (`GetStatus`) or every enrolled host (`ListHosts`). */
export function showHosts(flags: SelectFlags, method: 'GetStatus' | 'ListHosts'): Promise<void> {
  return withClient(
    flags,
    async (client, selector) => {
      const { hosts } = await client.call<{ hosts: WireHostView[] }>(method, { selector });
      if (flags.json === true) return printJson({ hosts: hosts.map(statusJson) });
      if (hosts.length === 0) {
        return void process.stdout.write('no hosts enrolled yet (see: convoy token create --help)\n');
      }
      const apps = method === 'GetStatus' && hosts.some((h) => h.application !== '');
      printTable(
        [
          'HOST',
          'HOSTNAME',
          'STATE',
          'ONLINE',
          'LAST SEEN',
          'AGENT',
          'LABELS',
          ...(apps ? ['APP', 'INSTALLED', 'STAGED', 'MAINT', 'BACKUP', 'HEALTH', 'ROLLOUT'] : []),
        ],
        hosts.map((h) => [
          h.id,
          h.hostname,
          h.state,
          onlineText(h),
          ago(h.lastSeenMs),
          h.agentVersion,
          labelsText(h),
          ...(apps
            ? [
                h.application === '' ? '-' : `${h.application} (${h.deployment})`,
                h.installedVersion || '-',
                h.stagedVersion || '-',
                h.maintenance ? 'ON' : 'off',
                h.lastBackupId || '-',
                h.lastHealth === '' ? '-' : `${h.lastHealth.slice(0, 40)} ${ago(h.lastHealthAtMs)}`,
                h.currentRollout || '-',
              ]
            : []),
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
    // Agent clock minus the controller's at its last heartbeat; null while offline.
    clockSkewMs: h.online ? h.clockSkewMs : null,
    lastSeen: h.lastSeenMs > 0 ? new Date(h.lastSeenMs).toISOString() : null,
    agentVersion: h.agentVersion,
    labels: h.labels,
    state: h.state,
    os: { platform: h.osPlatform, release: h.osRelease, arch: h.arch, name: h.osPrettyName },
    enrolledAt: new Date(h.enrolledAtMs).toISOString(),
    lastSeq: h.lastSeq,
    keyId: h.keyId,
    app:
      h.application === ''
        ? null
        : {
            deployment: h.deployment,
            application: h.application,
            installed: h.installedVersion,
            staged: h.stagedVersion,
            maintenance: h.maintenance,
            lastBackupId: h.lastBackupId,
            lastHealth: h.lastHealth,
            lastHealthAt: h.lastHealthAtMs > 0 ? new Date(h.lastHealthAtMs).toISOString() : null,
            rollout: h.currentRollout || null,
          },
  };
}

/**
 * Differences below this are transit time and scheduling, not a wrong clock: NTP keeps hosts
 * within milliseconds, and the agents' allowance on commands is a minute.
 */
const SHOWN_CLOCK_SKEW_MS = 2000;

/** `online`, with the agent's clock when it is off by more than a moment: `online, clock 10m00s ahead`. */
export function onlineText(h: Pick<WireHostView, 'online' | 'clockSkewMs'>): string {
  if (!h.online) return 'offline';
  if (Math.abs(h.clockSkewMs) < SHOWN_CLOCK_SKEW_MS) return 'online';
  return `online, clock ${formatDuration(Math.abs(h.clockSkewMs))} ${h.clockSkewMs > 0 ? 'ahead' : 'behind'}`;
}

export function labelsText(h: WireHostView): string {
  return Object.entries(h.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
