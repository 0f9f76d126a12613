/**
 * The host table `convoy status` (the live fleet) and `convoy hosts list` (any state) print, and
 * the JSON of one host that `hosts show|approve|revoke` share.
 */
import type { WireHostApp, WireHostView } from '../../../proto/wire';
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
      const apps = method === 'GetStatus' && hosts.some((h) => appsOf(h).length > 0);
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
        // One line per deployment on the host: the host's own columns on the first only.
        hosts.flatMap((h) => {
          const own = [
            h.id,
            h.hostname,
            h.state,
            onlineText(h),
            ago(h.lastSeenMs),
            h.agentVersion,
            labelsText(h),
          ];
          if (!apps) return [own];
          const list = appsOf(h);
          if (list.length === 0) return [[...own, '-', '-', '-', 'off', '-', '-', '-']];
          return list.map((a, i) => [...(i === 0 ? own : own.map(() => '')), ...appCells(a)]);
        }),
      );
      process.stdout.write(`${hosts.filter((h) => h.online).length}/${hosts.length} online\n`);
    },
    () => parseLabelsFlag('--select', flags.select),
  );
}

/** The host's applications, one per deployment (older controllers fill only the flat fields). */
function appsOf(h: WireHostView): WireHostApp[] {
  if ((h.apps ?? []).length > 0) return h.apps;
  if (h.application === '') return [];
  return [
    {
      deployment: h.deployment,
      application: h.application,
      installedVersion: h.installedVersion,
      stagedVersion: h.stagedVersion,
      maintenance: h.maintenance,
      lastBackupId: h.lastBackupId,
      lastHealth: h.lastHealth,
      lastHealthAtMs: h.lastHealthAtMs,
      currentRollout: h.currentRollout,
    },
  ];
}

function appCells(a: WireHostApp): string[] {
  return [
    `${a.application} (${a.deployment})`,
    a.installedVersion || '-',
    a.stagedVersion || '-',
    a.maintenance ? 'ON' : 'off',
    a.lastBackupId || '-',
    a.lastHealth === '' ? '-' : `${a.lastHealth.slice(0, 40)} ${ago(a.lastHealthAtMs)}`,
    a.currentRollout || '-',
  ];
}

function appJson(a: WireHostApp): Record<string, unknown> {
  return {
    deployment: a.deployment,
    application: a.application,
    installed: a.installedVersion,
    staged: a.stagedVersion,
    maintenance: a.maintenance,
    lastBackupId: a.lastBackupId,
    lastHealth: a.lastHealth,
    lastHealthAt: a.lastHealthAtMs > 0 ? new Date(a.lastHealthAtMs).toISOString() : null,
    rollout: a.currentRollout || null,
  };
}

export function statusJson(h: WireHostView): Record<string, unknown> {
  const apps = appsOf(h);
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
    // The first deployment's application (as before several could share a host), then every one.
    app: apps[0] === undefined ? null : appJson(apps[0]),
    apps: apps.map(appJson),
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
