/**
 * A fleet for the SSH enrollment tests: network namespaces (scripts/fixtures/netns.ts), one real
 * OpenSSH per host (scripts/fixtures/sshd.ts) with bind mounts over the agent's paths, the
 * controller in the ctl namespace and the CLI run there too; plus what the tests read back.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Netns, NetnsHost } from '../../scripts/fixtures/netns';
import { startAgentHost } from '../../scripts/fixtures/agent-host';
import { generateSshKey, type SshKey, type SshdServer } from '../../scripts/fixtures/sshd';
import { CONVOY_BIN, ROOT, run, tempDir, type RunResult } from './processes';
import { waitFor } from './wait';

export const BUILD_AGENT = path.join(ROOT, 'dist/scripts/build-agent.js');
export const HOSTS = 3;

export interface HostView {
  id: string;
  hostname: string;
  online: boolean;
  state: string;
  agentVersion: string;
  labels: Record<string, string>;
  app: { deployment: string; installed: string } | null;
}

export interface FakeHost {
  readonly ns: NetnsHost;
  readonly sshd: SshdServer;
  readonly lib: string;
  readonly state: string;
  readonly log: string;
  readonly target: string;
}

export interface EnrollJson {
  hostId: string;
  changed: boolean;
  actions: string[];
  online: boolean;
}

export class SshFleet {
  readonly root = tempDir('ssh-fleet');
  readonly stateDir = path.join(this.root, 'controller');
  readonly hosts: FakeHost[] = [];
  controller: ChildProcess | undefined;
  controllerOutput = '';
  client!: SshKey;
  bundleA = '';

  constructor(readonly netns: Netns) {}

  host(i: number): FakeHost {
    const h = this.hosts[i];
    if (h === undefined) throw new Error(`no host ${i}`);
    return h;
  }

  async start(): Promise<void> {
    this.bundleA = path.join(this.root, 'a/convoy-agent.js');
    const built = run(BUILD_AGENT, ['--out', this.bundleA, '--version', '0.1.0']);
    if (built.code !== 0) throw new Error(`build-agent: ${built.stderr}`);
    this.controller = this.netns.spawnIn(this.netns.ctl, process.execPath, [
      CONVOY_BIN,
      'controller',
      'start',
      '--state-dir',
      this.stateDir,
      '--listen',
      `${this.netns.ctl.address}:7443`,
      '--heartbeat-interval',
      '500ms',
      '--heartbeat-timeout',
      '5s',
    ]);
    this.controller.stdout?.on('data', (d: Buffer) => (this.controllerOutput += d.toString()));
    this.controller.stderr?.on('data', (d: Buffer) => (this.controllerOutput += d.toString()));
    await waitFor(
      'the controller listening',
      () => /agents on \S+; key \S+/.test(this.controllerOutput),
      20_000,
    );
    this.client = await generateSshKey(this.root, 'client');
    for (let i = 0; i < HOSTS; i++) {
      const ns = this.netns.hosts[i];
      if (ns === undefined) throw new Error(`no namespace ${i}`);
      const host = await startAgentHost({
        dir: path.join(this.root, `h${i}`),
        netns: ns.name,
        authorizedKeys: [this.client.publicKeyLine],
      });
      this.hosts.push({ ns, ...host, target: `root@${host.sshd.host}:${host.sshd.port}` });
    }
  }

  /** `convoy ARGS` in the controller's namespace (where the hosts' addresses are reachable). */
  async cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const r = await this.netns.execIn(
      this.netns.ctl,
      process.execPath,
      [CONVOY_BIN, ...args, '--state-dir', this.stateDir],
      {
        timeoutMs: 120_000,
        env: { ...process.env, ...env },
      },
    );
    return r;
  }

  async cliJson<T>(...args: string[]): Promise<T> {
    const r = await this.cli([...args, '--json']);
    if (r.code !== 0)
      throw new Error(`convoy ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}\n${this.dump()}`);
    return JSON.parse(r.stdout) as T;
  }

  enroll(i: number, ...extra: string[]): Promise<RunResult> {
    const h = this.host(i);
    return this.cli([
      'hosts',
      'enroll',
      '--ssh',
      h.target,
      '--identity',
      this.client.privateKeyFile,
      '--bundle',
      this.bundleA,
      ...(extra.includes('--known-hosts') || extra.includes('--host-key')
        ? []
        : ['--host-key', h.sshd.hostKeyFingerprint]),
      ...extra,
    ]);
  }

  async hostViews(): Promise<HostView[]> {
    return (await this.cliJson<{ hosts: HostView[] }>('hosts', 'list')).hosts;
  }

  dump(): string {
    const logs = this.hosts.map((h, i) => {
      const file = path.join(h.log, 'agent.log');
      return `host ${i} agent.log:\n${existsSync(file) ? readFileSync(file, 'utf8').slice(-3000) : '(none)'}`;
    });
    return [`controller:\n${this.controllerOutput.slice(-4000)}`, ...logs].join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.sshd.stop()));
    this.controller?.kill('SIGTERM');
    await this.netns.destroy();
  }
}

/** Every file under `dir`, recursively, with its bytes. */
export function filesUnder(dir: string): { file: string; bytes: Buffer }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      return { file, bytes: readFileSync(file) };
    });
}

export function sshdAuthLines(h: FakeHost): string[] {
  return readFileSync(h.sshd.logFile, 'utf8')
    .split('\n')
    .filter((l) => /publickey|Accepted|Failed|Invalid user/.test(l));
}

export function supervisorPid(h: FakeHost): number {
  return Number(readFileSync(path.join(h.state, 'supervisor.pid'), 'utf8'));
}

/** Command lines and environments of every process, sampled until stopped: where a leaked token would show. */
export function sampleProcesses(): { stop: () => string } {
  const seen = new Set<string>();
  const timer = setInterval(() => {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      for (const what of ['cmdline', 'environ']) {
        try {
          seen.add(readFileSync(`/proc/${pid}/${what}`, 'latin1'));
        } catch {
          // Gone already.
        }
      }
    }
  }, 20);
  return {
    stop: () => {
      clearInterval(timer);
      return [...seen].join('\n');
    },
  };
}
