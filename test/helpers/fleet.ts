/**
 * A controller process and agent processes on loopback, driven through the real CLIs.
 * Every test gets its own temp directory and port 0.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { AGENT_BIN, CONVOY_BIN, Daemon, run, tempDir, type RunResult } from './processes';
import { waitFor } from './wait';

export interface StatusHost {
  id: string;
  hostname: string;
  online: boolean;
  lastSeen: string | null;
  agentVersion: string;
  labels: Record<string, string>;
  state: string;
}

export interface ControllerOptions {
  heartbeatInterval?: string;
  heartbeatTimeout?: string;
  extraArgs?: string[];
}

export class TestFleet {
  readonly root = tempDir('fleet');
  readonly stateDir = path.join(this.root, 'controller');
  controller: Daemon | undefined;
  address = '';
  key = '';
  readonly agents = new Map<string, Daemon>();

  constructor(private readonly options: ControllerOptions = {}) {}

  async startController(): Promise<void> {
    this.controller = new Daemon(CONVOY_BIN, [
      'controller',
      'start',
      '--state-dir',
      this.stateDir,
      '--listen',
      '127.0.0.1:0',
      '--heartbeat-interval',
      this.options.heartbeatInterval ?? '300ms',
      '--heartbeat-timeout',
      this.options.heartbeatTimeout ?? '1500ms',
      ...(this.options.extraArgs ?? []),
    ]);
    const m = await this.controller.waitForOutput(/agents on (\S+); key (\S+)/);
    this.address = m[1] ?? '';
    this.key = m[2] ?? '';
  }

  /** `convoy ARGS --state-dir <controller>`. */
  cli(...args: string[]): RunResult {
    return run(CONVOY_BIN, [...args, '--state-dir', this.stateDir]);
  }

  cliJson<T>(...args: string[]): T {
    const r = this.cli(...args, '--json');
    if (r.code !== 0) throw new Error(`convoy ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  createToken(...flags: string[]): string {
    const r = this.cli('token', 'create', ...flags);
    if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
    return r.stdout.trim();
  }

  agentDir(name: string): string {
    return path.join(this.root, `agent-${name}`);
  }

  enroll(name: string, token: string, ...extra: string[]): RunResult {
    return run(AGENT_BIN, [
      'enroll',
      '--controller',
      this.address,
      '--token',
      token,
      '--controller-key',
      this.key,
      '--state-dir',
      this.agentDir(name),
      '--json',
      ...extra,
    ]);
  }

  /** Enrolls and returns the host id, failing loudly otherwise. */
  enrollOk(name: string, token: string, ...extra: string[]): string {
    const r = this.enroll(name, token, ...extra);
    if (r.code !== 0) throw new Error(`enroll ${name} exited ${r.code}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { hostId: string }).hostId;
  }

  startAgent(name: string): Daemon {
    const agent = new Daemon(AGENT_BIN, ['run', '--state-dir', this.agentDir(name)]);
    this.agents.set(name, agent);
    return agent;
  }

  status(): StatusHost[] {
    return this.cliJson<{ hosts: StatusHost[] }>('status').hosts;
  }

  async waitOnline(count: number, timeoutMs = 10_000): Promise<StatusHost[]> {
    return waitFor(
      `${count} hosts online`,
      () => {
        const hosts = this.status();
        return hosts.filter((h) => h.online).length === count ? hosts : undefined;
      },
      timeoutMs,
      100,
    );
  }

  async waitHost(id: string, online: boolean, timeoutMs = 10_000): Promise<StatusHost> {
    return waitFor(
      `host ${id} ${online ? 'online' : 'offline'}`,
      () => {
        const host = this.status().find((h) => h.id === id);
        return host !== undefined && host.online === online ? host : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Output of every process, for a failing test's message. */
  dump(): string {
    const parts = [`controller:\n${this.controller?.stderr ?? ''}`];
    for (const [name, d] of this.agents) parts.push(`agent ${name}:\n${d.stderr}`);
    return parts.join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    await this.controller?.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}
