/**
 * The reconnect-storm fleet: one controller process that can be killed and restarted on the same
 * state directory and port, and real `Agent`s (own keys, state dirs and HTTP/2 connections) run a
 * share per process by the benchmark's swarm (scripts/bench/agent-swarm.ts), whose log lines are
 * kept for the figures.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { isFromSwarm, type SwarmReady } from '../../../scripts/bench/protocol';
import { stopChild } from '../../../scripts/bench/workspace';
import { CONVOY_BIN, Daemon, ROOT, runAsync, tempDir, type RunResult } from '../../helpers/processes';
import { waitFor } from '../../helpers/wait';

const SWARM = path.join(ROOT, 'dist/scripts/bench/agent-swarm.js');

export type LogLine = Record<string, unknown>;

/** JSON lines from a stream, parsed as they complete. */
function collectLines(stream: NodeJS.ReadableStream, into: LogLine[]): void {
  let partial = '';
  stream.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const cut = text.lastIndexOf('\n');
    partial = text.slice(cut + 1);
    for (const line of text.slice(0, cut + 1).split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        into.push(JSON.parse(line) as LogLine);
      } catch {
        into.push({ level: 'unparsed', msg: line });
      }
    }
  });
}

export class StormFleet {
  readonly root = tempDir('storm');
  readonly stateDir = path.join(this.root, 'controller');
  /** Every controller process started, the current one last. */
  readonly controllers: Daemon[] = [];
  readonly swarms: ChildProcess[] = [];
  /** Log lines of every agent in every swarm, in arrival order per swarm. */
  readonly agentLines: LogLine[] = [];
  address = '';
  key = '';

  get controller(): Daemon | undefined {
    return this.controllers[this.controllers.length - 1];
  }

  /** Starts a controller on `port` (0: any) with the production heartbeat interval. */
  async startController(port = 0): Promise<void> {
    const daemon = new Daemon(CONVOY_BIN, [
      'controller',
      'start',
      '--state-dir',
      this.stateDir,
      '--listen',
      `127.0.0.1:${port}`,
      '--heartbeat-interval',
      '10s',
      // 300 enrollments from one address in well under a minute; the default allows 600/min.
      '--enroll-rate',
      '1200',
    ]);
    this.controllers.push(daemon);
    const m = await daemon.waitForOutput(/agents on (\S+); key (\S+)/, 60_000);
    this.address = m[1] ?? '';
    this.key = m[2] ?? '';
  }

  get port(): number {
    return Number(this.address.split(':').pop());
  }

  /** `convoy ARGS --state-dir <controller>`, without blocking this process's event loop. */
  cli(...args: string[]): Promise<RunResult> {
    return runAsync(CONVOY_BIN, [...args, '--state-dir', this.stateDir]);
  }

  async cliJson<T>(...args: string[]): Promise<T> {
    const r = await this.cli(...args, '--json');
    if (r.code !== 0) throw new Error(`convoy ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Enrolls and connects `perSwarm[i]` agents in swarm process i; resolves with every host id. */
  async startAgents(perSwarm: readonly number[]): Promise<string[]> {
    const total = perSwarm.reduce((a, b) => a + b, 0);
    const token = (await this.cli('token', 'create', '--ttl', '1h', '--uses', String(total))).stdout.trim();
    const ready = perSwarm.map((count, swarm) => this.startSwarm(swarm, count, token));
    const done = await Promise.all(ready);
    return done.flatMap((r) => r.hostIds);
  }

  /** Host ids the controller shows online, through `convoy status`. */
  async onlineIds(): Promise<Set<string>> {
    const { hosts } = await this.cliJson<{ hosts: { id: string; online: boolean }[] }>('status');
    return new Set(hosts.filter((h) => h.online).map((h) => h.id));
  }

  async waitAllOnline(ids: readonly string[], timeoutMs: number): Promise<void> {
    await waitFor(
      `${ids.length} hosts online`,
      async () => {
        const online = await this.onlineIds();
        return ids.every((id) => online.has(id));
      },
      timeoutMs,
      500,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.swarms.map((s) => stopChild(s)));
    await Promise.all(this.controllers.map((c) => c.stop()));
    rmSync(this.root, { recursive: true, force: true });
  }

  private startSwarm(swarm: number, count: number, token: string): Promise<SwarmReady> {
    const child = fork(SWARM, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.swarms.push(child);
    if (child.stderr !== null) collectLines(child.stderr, this.agentLines);
    const ready = new Promise<SwarmReady>((resolve, reject) => {
      child.on('message', (msg: unknown) => {
        if (!isFromSwarm(msg)) return;
        if (msg.type === 'ready') resolve(msg);
        else if (msg.type === 'error') reject(new Error(`swarm ${swarm}: ${msg.message}`));
      });
      child.once('exit', (code, signal) => reject(new Error(`swarm ${swarm} exited (${code ?? signal})`)));
    });
    child.send({
      type: 'start',
      swarm,
      count,
      controller: this.address,
      controllerKey: this.key,
      token,
      stateRoot: path.join(this.root, 'agents'),
      enrollConcurrency: 8,
      agentLogLevel: 'info',
    });
    return ready;
  }
}
