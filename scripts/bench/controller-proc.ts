/**
 * The controller under test: `convoy controller start` in its own process, set up and queried
 * through the `convoy` CLI as an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Options } from './options';
import { CONVOY } from './paths';
import { runNode, sleep, waitForOutput, type CliRun } from './proc';
import { note, type Workspace } from './workspace';

export async function convoy(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return runNode(CONVOY, args, timeoutMs);
}

/** Stdout of a `convoy` call that must succeed. */
async function mustConvoy(args: readonly string[]): Promise<string> {
  const r = await convoy(args);
  if (r.code !== 0) throw new Error(`convoy ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A running controller and what agents need to enroll with it. */
export interface BenchController {
  readonly child: ChildProcess;
  /** -1 if the spawn gave none; /proc reads then fail loudly. */
  readonly pid: number;
  /** Agent address, host:port. */
  readonly address: string;
  readonly stateDir: string;
  /** Public key agents pin, `ed25519:<base64>`. */
  readonly key: string;
  /** One enrollment token for the swarm agents and the idle agent. */
  readonly token: string;
  /** The same token in a file, for `convoy-agent enroll --token-file`. */
  readonly tokenFile: string;
}

/** Starts the controller, then reads its key and creates the token for N + 1 agents. */
export async function setUpController(ws: Workspace, opts: Options): Promise<BenchController> {
  const stateDir = path.join(ws.root, 'controller');
  // The default limit (600/min per address) would spread 1,000 enrollments over two minutes.
  const enrollRate = Math.max(600, 2 * (opts.agents + 1));
  const { child, address } = await startController(ws, stateDir, enrollRate, opts.controllerNodeArgs);
  const pid = child.pid ?? -1;
  note(`controller pid ${pid} listening on ${address}`);
  const key = (await mustConvoy(['controller', 'pubkey', '--state-dir', stateDir])).trim();
  const token = (
    await mustConvoy([
      'token',
      'create',
      '--state-dir',
      stateDir,
      '--ttl',
      '1h',
      '--uses',
      String(opts.agents + 1),
    ])
  ).trim();
  const tokenFile = path.join(ws.root, 'token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  return { child, pid, address, stateDir, key, token, tokenFile };
}

/** Spawns `convoy controller start` and waits for the agent address it prints. */
async function startController(
  ws: Workspace,
  stateDir: string,
  enrollRate: number,
  nodeArgs: readonly string[],
): Promise<{ child: ChildProcess; address: string }> {
  const args = [
    ...nodeArgs,
    CONVOY,
    'controller',
    'start',
    '--state-dir',
    stateDir,
    '--listen',
    '127.0.0.1:0',
    '--heartbeat-interval',
    '10s',
    '--enroll-rate',
    String(enrollRate),
  ];
  const child = ws.withLogFile('controller.log', (log) =>
    ws.track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log] })),
  );
  const address = await waitForOutput(child, child.stdout, {
    match: (out) => /controller listening for agents on (\S+); key/.exec(out)?.[1],
    timeoutMs: 30_000,
    onTimeout: () => new Error('controller did not start within 30 s'),
    onExit: (code) =>
      new Error(`controller exited (${code}) before listening:\n${ws.tail('controller.log')}`),
  });
  return { child, address };
}

interface HostStatus {
  readonly id: string;
  readonly online: boolean;
}

async function onlineHosts(stateDir: string): Promise<Set<string>> {
  const text = await mustConvoy(['status', '--state-dir', stateDir, '--json']);
  const { hosts } = JSON.parse(text) as { hosts: HostStatus[] };
  return new Set(hosts.filter((h) => h.online).map((h) => h.id));
}

/** Polls `convoy status` until the controller itself shows every one of `ids` online. */
export async function waitAllOnline(
  stateDir: string,
  ids: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const online = await onlineHosts(stateDir);
    const missing = ids.filter((id) => !online.has(id));
    if (missing.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${missing.length} of ${ids.length} agents not online after ${timeoutMs} ms`);
    await sleep(500);
  }
}
