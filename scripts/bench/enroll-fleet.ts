/**
 * The hosts of the enrollment benchmark (./enroll): N network namespaces, each with its own
 * OpenSSH server, and the controller in the ctl namespace, built as test/e2e/ssh-enroll.test.ts
 * builds them. Each host's sshd sees its own /usr/lib/convoy-agent, /var/lib/convoy-agent and
 * /var/log/convoy-agent (bind mounts of workspace directories), so agents install at their real
 * paths and the bench reads what they wrote from outside. Every CLI runs in the ctl namespace:
 * nothing in the bench's own process dials a namespace address.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HttpRepoProcess } from '../fixtures/http-repo-process';
import { createNetns, netnsUnavailableReason, uniqueNetnsPrefix, type Netns } from '../fixtures/netns';
import { startAgentHost } from '../fixtures/agent-host';
import { generateSshKey, type SshKey, type SshdServer } from '../fixtures/sshd';
import { CONVOY } from './paths';
import { waitForOutput, type CliRun } from './proc';
import type { Teardown } from './teardown';
import { stopChild, type Workspace } from './workspace';

export interface BenchHost {
  readonly sshd: SshdServer;
  /** What the host sees at /var/lib/convoy-agent and /var/log/convoy-agent. */
  readonly state: string;
  readonly log: string;
}

/** Why this part cannot run here, or undefined. */
export function enrollUnavailableReason(): string | undefined {
  const netns = netnsUnavailableReason();
  if (netns !== undefined) return netns;
  if (!existsSync('/usr/sbin/sshd')) return 'no /usr/sbin/sshd (OpenSSH server)';
  if (spawnSync('ssh-keygen', ['-l', '-f', '/dev/null']).error !== undefined) return 'no ssh-keygen';
  return undefined;
}

/** The namespaces, controller, sshds and release servers of one run; `stop` is idempotent. */
export class SshFleet {
  readonly hosts: BenchHost[] = [];
  readonly repos: HttpRepoProcess[] = [];
  readonly stateDir: string;
  client!: SshKey;
  controller: ChildProcess | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    readonly ws: Workspace,
    readonly netns: Netns,
  ) {
    this.stateDir = path.join(ws.root, 'controller');
  }

  /** `convoy ARGS --state-dir DIR` in the ctl namespace, timed from spawn to exit. */
  async cli(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
    const started = process.hrtime.bigint();
    const r = await this.netns.execIn(
      this.netns.ctl,
      process.execPath,
      [CONVOY, ...args, '--state-dir', this.stateDir],
      { timeoutMs },
    );
    return { ...r, wallMs: Number(process.hrtime.bigint() - started) / 1e6 };
  }

  async cliJson<T>(args: readonly string[], timeoutMs?: number): Promise<T> {
    const r = await this.cli([...args, '--json'], timeoutMs);
    if (r.code !== 0) throw new Error(`convoy ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as T;
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await Promise.all(this.repos.map((r) => r.stop()));
      await Promise.all(this.hosts.map((h) => h.sshd.stop()));
      // It would die with its namespace too; stopped first, it closes its store.
      if (this.controller !== undefined) await stopChild(this.controller);
      await this.netns.destroy();
    })();
    return this.stopped;
  }
}

/** Builds the namespaces, starts the controller in ctl and one sshd per host. */
export async function startFleet(ws: Workspace, hosts: number, teardown: Teardown): Promise<SshFleet> {
  const fleet = new SshFleet(ws, await createNetns(uniqueNetnsPrefix(), hosts));
  teardown.add(() => fleet.stop());
  try {
    await startServers(ws, fleet);
  } catch (err) {
    await fleet.stop();
    throw err;
  }
  return fleet;
}

async function startServers(ws: Workspace, fleet: SshFleet): Promise<void> {
  const { ctl } = fleet.netns;
  const args = [
    CONVOY,
    'controller',
    'start',
    '--state-dir',
    fleet.stateDir,
    '--listen',
    `${ctl.address}:7443`,
  ];
  const controller = ws.withLogFile('controller.log', (log) =>
    ws.track(fleet.netns.spawnIn(ctl, process.execPath, args, { stdio: ['ignore', 'pipe', log] })),
  );
  fleet.controller = controller;
  await waitForOutput(controller, controller.stdout, {
    match: (out) => (/agents on \S+; key \S+/.test(out) ? true : undefined),
    timeoutMs: 30_000,
    onTimeout: () => new Error('controller did not start within 30 s'),
    onExit: (code) =>
      new Error(`controller exited (${code}) before listening:\n${ws.tail('controller.log')}`),
  });
  fleet.client = await generateSshKey(ws.root, 'client');
  // Settled, not Promise.all: every sshd that did start is in `fleet.hosts` before a failure is thrown.
  const started = await Promise.allSettled(
    fleet.netns.hosts.map(async (ns, i) => {
      const { sshd, state, log } = await startAgentHost({
        dir: path.join(ws.root, `h${i}`),
        netns: ns.name,
        authorizedKeys: [fleet.client.publicKeyLine],
      });
      fleet.hosts[i] = { sshd, state, log };
    }),
  );
  const failed = started.find((s) => s.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** The last lines of a host's file, for error reports. */
export function tailOf(file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(none)';
  }
}
