/**
 * N simulated hosts for both sides: ./enroll-fleet's namespaces (controller in ctl, one OpenSSH
 * server per host namespace), plus in each host namespace a Convoy agent enrolled directly with a
 * token labelled bench=ansible, and for each host its own apt root (./packages). One package
 * repository serves every host from the ctl namespace. Nothing here dials a namespace address
 * from the root namespace: every CLI, apt-get and agent runs inside a namespace.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startFleet, type SshFleet } from '../enroll-fleet';
import { CONVOY_AGENT } from '../paths';
import { mapLimit, sleep } from '../proc';
import type { Teardown } from '../teardown';
import { note, stopChild, type Workspace } from '../workspace';
import type { NetnsHost } from '../../fixtures/netns';
import type { SshdServer } from '../../fixtures/sshd';
import { buildTemplateRoot, resetRoot, rootEnv, serveRepository } from './packages';
import { LABEL } from './workloads';

/** The controller's agent port inside the ctl namespace (./enroll-fleet). */
const AGENT_PORT = 7443;
const ENROLL_CONCURRENCY = 8;
const ONLINE_TIMEOUT_MS = 180_000;

export interface BenchHost {
  readonly index: number;
  readonly ns: NetnsHost;
  readonly sshd: SshdServer;
  /** The host's apt root. */
  readonly root: string;
  hostId: string;
  agent: ChildProcess | undefined;
}

export interface AnsibleFleet {
  readonly ssh: SshFleet;
  readonly hosts: BenchHost[];
  /** The apt root every host's root is copied from. */
  readonly template: string;
  readonly stop: () => Promise<void>;
}

export async function startAnsibleFleet(
  ws: Workspace,
  size: number,
  repoDir: string,
  teardown: Teardown,
): Promise<AnsibleFleet> {
  note(`N=${size}: namespaces, controller and ${size} sshds`);
  const ssh = await startFleet(ws, size, teardown);
  const hosts: BenchHost[] = ssh.netns.hosts.map((ns, index) => ({
    index,
    ns,
    sshd: (ssh.hosts[index] ?? fail(`no sshd for host ${index}`)).sshd,
    root: path.join(ws.root, `h${index}`, 'apt-root'),
    hostId: '',
    agent: undefined,
  }));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await Promise.all(hosts.flatMap((h) => (h.agent === undefined ? [] : [stopChild(h.agent)])));
      await ssh.stop();
    })());
  teardown.add(stop);
  const fleet: AnsibleFleet = { ssh, hosts, template: path.join(ws.root, 'template-root'), stop };

  const repo = await serveRepository(ssh.netns, repoDir);
  ssh.repos.push(repo);
  note(`N=${size}: apt roots (template from ${repo.url}), agents`);
  await buildTemplateRoot(ssh.netns, fleet.template, repo.url);
  for (const h of hosts) resetRoot(fleet.template, h.root);
  await enrollAgents(ws, fleet);
  await waitOnline(ssh, size);
  return fleet;
}

async function enrollAgents(ws: Workspace, fleet: AnsibleFleet): Promise<void> {
  const { ssh, hosts } = fleet;
  const key = await cliText(ssh, ['controller', 'pubkey']);
  const token = await cliText(ssh, [
    'token',
    'create',
    '--ttl',
    '1h',
    '--uses',
    String(hosts.length),
    '--labels',
    LABEL,
  ]);
  const controller = `${ssh.netns.ctl.address}:${AGENT_PORT}`;
  await mapLimit(hosts, ENROLL_CONCURRENCY, async (h) => {
    const stateDir = path.join(ws.root, `h${h.index}`, 'agent');
    const args = [CONVOY_AGENT, 'enroll', '--controller', controller, '--controller-key', key];
    const r = await ssh.netns.execIn(
      h.ns,
      process.execPath,
      [...args, '--state-dir', stateDir, '--hostname', `h${h.index}`, '--json'],
      { env: { ...process.env, CONVOY_ENROLL_TOKEN: token }, timeoutMs: 60_000 },
    );
    if (r.code !== 0)
      throw new Error(`convoy-agent enroll on h${h.index} exited ${r.code}: ${r.stderr.trim()}`);
    h.hostId = (JSON.parse(r.stdout) as { hostId: string }).hostId;
    const env = { ...process.env, ...rootEnv(h.root), DEBIAN_FRONTEND: 'noninteractive' };
    h.agent = ws.withLogFile(`agent-h${h.index}.log`, (fd) =>
      ws.track(
        ssh.netns.spawnIn(h.ns, process.execPath, [CONVOY_AGENT, 'run', '--state-dir', stateDir], {
          env,
          stdio: ['ignore', fd, fd],
        }),
      ),
    );
  });
}

/**
 * Waits until `count` agents are online; returns how many were offline at the first look (0 when
 * all were). Called untimed before every Convoy run: an agent that dropped its connection (under
 * heavy load its heartbeats can miss) is waited for, not measured as a failure, and counted.
 */
export async function waitOnline(
  ssh: SshFleet,
  count: number,
  timeoutMs = ONLINE_TIMEOUT_MS,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let offlineAtFirst: number | undefined;
  for (;;) {
    const r = await ssh.cli(['status', '--json']);
    if (r.code === 0) {
      const online = (JSON.parse(r.stdout) as { hosts: { online: boolean }[] }).hosts.filter((h) => h.online);
      offlineAtFirst ??= Math.max(0, count - online.length);
      if (online.length >= count) return offlineAtFirst;
    }
    if (Date.now() > deadline) throw new Error(`fewer than ${count} agents online after ${timeoutMs} ms`);
    await sleep(500);
  }
}

async function cliText(ssh: SshFleet, args: readonly string[]): Promise<string> {
  const r = await ssh.cli(args);
  if (r.code !== 0)
    throw new Error(`convoy ${args[0] ?? ''} ${args[1] ?? ''} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function fail(message: string): never {
  throw new Error(message);
}
