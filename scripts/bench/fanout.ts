/**
 * `npm run bench`: figures for the fleet-scale targets, measured on real processes.
 *
 *   - ping fan-out round trip to N connected agents (p50, p99; target p99 < 500 ms)
 *   - controller memory per connected agent (VmRSS delta / N; target < 100 KB)
 *   - one idle agent process (VmRSS; target < 60 MB)
 *
 * The controller is `convoy controller start` in its own process; the N agents run in a few swarm
 * processes (./agent-swarm), each agent with its own key, state directory and HTTP/2 connection;
 * the idle agent is a real `convoy-agent run` process. Everything is driven through the CLIs an
 * operator would use. The last line printed is one JSON object with every figure.
 *
 * Usage: see USAGE below; docs/benchmarks.md explains each figure.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isFromSwarm, type FromSwarm, type ToSwarm } from './protocol';
import {
  fdatasyncLatencyMs,
  median,
  percentile,
  readCpuMs,
  readRssBreakdown,
  readRssKb,
  round1,
  runningClis,
  runNode,
  sleep,
  type CliRun,
  type RssBreakdown,
} from './proc';

const ROOT = path.resolve(__dirname, '../../..');
const CONVOY = path.join(ROOT, 'bin/convoy.js');
const CONVOY_AGENT = path.join(ROOT, 'bin/convoy-agent.js');
const SWARM = path.join(__dirname, 'agent-swarm.js');

const TARGET_P99_MS = 500;
const TARGET_CONTROLLER_KB_PER_AGENT = 100;
const TARGET_AGENT_IDLE_MB = 60;
const SETTLE_MS = 2000;
const IDLE_MS = 3000;

interface Options {
  readonly agents: number;
  readonly swarms: number;
  /**
   * Scheduling niceness of the swarm processes (default 0). At 19 the simulated agents only take
   * CPU the controller leaves idle, but then any other load on the machine starves them too: on
   * the reference machine it made the round trips noisier, not better (docs/benchmarks.md).
   */
  readonly swarmNice: number;
  readonly rounds: number;
  readonly warmup: number;
  readonly enrollConcurrency: number;
  readonly pingTimeout: string;
  readonly timeoutMinutes: number;
  /** Parent of the swarm agents' state directories (see defaultAgentStateRoot). */
  readonly agentStateRoot: string;
  /** Extra node flags for the controller process only, for profiling (e.g. `--cpu-prof`). */
  readonly controllerNodeArgs: readonly string[];
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      agents: { type: 'string', default: '1000' },
      swarms: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      'enroll-concurrency': { type: 'string', default: '20' },
      'ping-timeout': { type: 'string', default: '10s' },
      'timeout-minutes': { type: 'string', default: '10' },
      'swarm-nice': { type: 'string', default: '0' },
      'agent-state-root': { type: 'string' },
      'controller-node-args': { type: 'string' },
    },
    strict: true,
  });
  const int = (name: string, text: string | undefined, min: number): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const agents = int('agents', values.agents, 1);
  return {
    agents,
    swarms: Math.min(agents, int('swarms', values.swarms, 1)),
    swarmNice: Math.min(19, int('swarm-nice', values['swarm-nice'], 0)),
    rounds: int('rounds', values.rounds, 1),
    warmup: int('warmup', values.warmup, 0),
    enrollConcurrency: int('enroll-concurrency', values['enroll-concurrency'], 1),
    pingTimeout: values['ping-timeout'] ?? '10s',
    timeoutMinutes: int('timeout-minutes', values['timeout-minutes'], 1),
    agentStateRoot: values['agent-state-root'] ?? defaultAgentStateRoot(),
    controllerNodeArgs: (values['controller-node-args'] ?? '').split(/\s+/).filter((a) => a !== ''),
  };
}

/**
 * Where the simulated agents keep their state: tmpfs when there is one. Every agent fdatasyncs
 * its journal before acting on a command; 1,000 simulated hosts sharing this machine's one disk
 * would serialize 1,000 journal commits per round, which no real fleet does (each host has its
 * own disk). The per-host cost of that fsync is measured on the real disk instead and reported
 * beside the round trips (`disk_fdatasync_*`). `--agent-state-root /tmp` shows the shared-disk case.
 */
function defaultAgentStateRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

/** Filesystem type of `dir` from /proc/mounts (longest mount-point prefix), for the report. */
function fsType(dir: string): string {
  let best = { mount: '', type: 'unknown' };
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mount, type] = line.split(' ');
    if (mount === undefined || type === undefined) continue;
    const inside = dir === mount || dir.startsWith(mount.endsWith('/') ? mount : mount + '/');
    if (inside && mount.length >= best.mount.length) best = { mount, type };
  }
  return best.type;
}

/** `git describe --always --dirty` of the tree measured, or 'unknown' outside a checkout. */
function treeVersion(): string {
  const r = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

/** Progress for people goes to stderr; stdout carries only the figures. */
function note(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

/** Every long-lived child and the temp directory, torn down once whatever happens. */
class Workspace {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-'));
  private readonly dirs = [this.root];
  private readonly children = new Set<ChildProcess>();
  private cleaned: Promise<void> | undefined;

  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** A fresh directory under `parent`, removed at clean-up. */
  tempDir(parent: string): string {
    const dir = mkdtempSync(path.join(parent, 'convoy-bench-'));
    this.dirs.push(dir);
    return dir;
  }

  logFile(name: string): number {
    return openSync(path.join(this.root, name), 'a', 0o600);
  }

  tail(name: string, lines = 20): string {
    try {
      return readFileSync(path.join(this.root, name), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  cleanup(): Promise<void> {
    this.cleaned ??= this.doCleanup();
    return this.cleaned;
  }

  private async doCleanup(): Promise<void> {
    for (const cli of runningClis) cli.kill('SIGKILL');
    const children = [...this.children];
    await Promise.all(children.map((c) => stopChild(c)));
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** Asks a child to stop (IPC `stop` for swarms, SIGTERM otherwise), SIGKILL after 5 s. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    if (child.connected) child.send({ type: 'stop' } satisfies ToSwarm);
    else child.kill('SIGTERM');
  });
}

async function convoy(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return runNode(CONVOY, args, timeoutMs);
}

async function mustConvoy(args: readonly string[]): Promise<string> {
  const r = await convoy(args);
  if (r.code !== 0) throw new Error(`convoy ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

interface ControllerProc {
  readonly child: ChildProcess;
  readonly address: string;
}

async function startController(
  ws: Workspace,
  stateDir: string,
  enrollRate: number,
  nodeArgs: readonly string[],
): Promise<ControllerProc> {
  const log = ws.logFile('controller.log');
  const child = ws.track(
    spawn(
      process.execPath,
      [
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
      ],
      { stdio: ['ignore', 'pipe', log] },
    ),
  );
  closeSync(log);
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('controller did not start within 30 s')), 30_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /controller listening for agents on (\S+); key/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`controller exited (${code}) before listening:\n${ws.tail('controller.log')}`));
    });
  });
  return { child, address };
}

interface SwarmProc {
  readonly child: ChildProcess;
  readonly ready: Promise<Extract<FromSwarm, { type: 'ready' }>>;
  enrolled: number;
  online: number;
}

function startSwarm(ws: Workspace, start: Extract<ToSwarm, { type: 'start' }>, nice: number): SwarmProc {
  const log = ws.logFile('swarms.log');
  const child = ws.track(fork(SWARM, [], { stdio: ['ignore', log, log, 'ipc'] }));
  closeSync(log);
  if (child.pid !== undefined && nice > 0) os.setPriority(child.pid, nice);
  const proc: SwarmProc = {
    child,
    enrolled: 0,
    online: 0,
    ready: new Promise((resolve, reject) => {
      child.on('message', (msg: unknown) => {
        if (!isFromSwarm(msg)) return;
        if (msg.type === 'progress') {
          proc.enrolled = msg.enrolled;
          proc.online = msg.online;
        } else if (msg.type === 'ready') {
          proc.enrolled = msg.hostIds.length;
          proc.online = msg.hostIds.length;
          resolve(msg);
        } else {
          reject(new Error(`swarm ${start.swarm}: ${msg.message}`));
        }
      });
      child.once('exit', (code, signal) =>
        reject(new Error(`swarm ${start.swarm} exited (${code ?? signal}):\n${ws.tail('swarms.log')}`)),
      );
    }),
  };
  child.send(start);
  return proc;
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

async function waitAllOnline(stateDir: string, ids: readonly string[], timeoutMs: number): Promise<void> {
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

interface PingResult {
  readonly hostId: string;
  readonly outcome: string;
  readonly rttMs: number;
  readonly errorCode?: string;
}

interface Round {
  readonly wallMs: number;
  readonly rtts: number[];
  readonly failures: number;
  readonly failureCodes: Record<string, number>;
}

async function pingRound(stateDir: string, expected: number, timeout: string): Promise<Round> {
  const r = await convoy(['ping', '--state-dir', stateDir, '--json', '--timeout', timeout], 120_000);
  let results: PingResult[] = [];
  const failureCodes: Record<string, number> = {};
  try {
    results = (JSON.parse(r.stdout) as { results?: PingResult[] }).results ?? [];
  } catch {
    failureCodes['CLI_OUTPUT'] = 1;
  }
  const rtts: number[] = [];
  for (const res of results) {
    if (res.outcome === 'ok') rtts.push(res.rttMs);
    else {
      const code = res.errorCode || res.outcome;
      failureCodes[code] = (failureCodes[code] ?? 0) + 1;
    }
  }
  const missing = Math.max(0, expected - results.length);
  if (missing > 0) failureCodes['NO_RESULT'] = missing;
  // Every host answered, yet the CLI failed: count the round's failure once.
  if (r.code !== 0 && rtts.length === expected) failureCodes[`CLI_EXIT_${r.code ?? 'signal'}`] = 1;
  const failures = Object.values(failureCodes).reduce((a, b) => a + b, 0);
  if (failures > 0) note(`ping round: ${JSON.stringify(failureCodes)} ${r.stderr.trim()}`);
  return { wallMs: r.wallMs, rtts, failures, failureCodes };
}

/** RSS of a bare `node` process, for reference: the floor any Node agent starts from. */
async function bareNodeRssKb(ws: Workspace): Promise<number> {
  const child = ws.track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }));
  await sleep(IDLE_MS);
  const kb = readRssKb(child.pid ?? -1);
  await stopChild(child);
  return kb;
}

/** Enrolls one more agent with the CLI and runs it as its own `convoy-agent run` process. */
async function idleAgentRss(
  ws: Workspace,
  controller: ControllerProc,
  controllerKey: string,
  tokenFile: string,
): Promise<RssBreakdown & { minKb: number; maxKb: number }> {
  const stateDir = path.join(ws.root, 'idle-agent');
  const enrolled = await runNode(CONVOY_AGENT, [
    'enroll',
    '--controller',
    controller.address,
    '--token-file',
    tokenFile,
    '--controller-key',
    controllerKey,
    '--state-dir',
    stateDir,
    '--hostname',
    'bench-idle',
  ]);
  if (enrolled.code !== 0) throw new Error(`convoy-agent enroll: ${enrolled.stderr.trim()}`);
  const child = ws.track(
    spawn(process.execPath, [CONVOY_AGENT, 'run', '--state-dir', stateDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`idle agent not online in 30 s: ${err}`)), 30_000);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (err.includes('"connected to controller"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`idle agent exited (${code}): ${err}`));
    });
  });
  await sleep(IDLE_MS);
  // A garbage collection can move one reading by a few MB: take five, 200 ms apart, keep the median.
  const samples: RssBreakdown[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(200);
    samples.push(readRssBreakdown(child.pid ?? -1));
  }
  samples.sort((a, b) => a.rssKb - b.rssKb);
  const mid = samples[2] ?? samples[0];
  if (mid === undefined) throw new Error('no RSS sample of the idle agent');
  return { ...mid, minKb: samples[0]?.rssKb ?? mid.rssKb, maxKb: samples[4]?.rssKb ?? mid.rssKb };
}

function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'MISS';
}

async function bench(opts: Options, ws: Workspace) {
  const stateDir = path.join(ws.root, 'controller');
  const agentRoot = ws.tempDir(opts.agentStateRoot);
  const agentFs = fsType(agentRoot);
  note(`simulated agents' state under ${agentRoot} (${agentFs})`);
  note(`workspace ${ws.root}`);

  // The default limit (600/min per address) would spread 1,000 enrollments over two minutes.
  const controller = await startController(
    ws,
    stateDir,
    Math.max(600, 2 * (opts.agents + 1)),
    opts.controllerNodeArgs,
  );
  const controllerPid = controller.child.pid ?? -1;
  note(`controller pid ${controllerPid} listening on ${controller.address}`);
  const controllerKey = (await mustConvoy(['controller', 'pubkey', '--state-dir', stateDir])).trim();
  // One token for the swarm agents and the idle agent.
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

  await sleep(SETTLE_MS);
  const rssBaselineKb = readRssKb(controllerPid);
  note(`controller baseline RSS ${round1(rssBaselineKb / 1024)} MB`);

  // Enroll and connect N agents across the swarms.
  const connectStart = Date.now();
  const perSwarm = Math.floor(opts.agents / opts.swarms);
  const swarms: SwarmProc[] = [];
  for (let s = 0; s < opts.swarms; s++) {
    const count = perSwarm + (s < opts.agents % opts.swarms ? 1 : 0);
    swarms.push(
      startSwarm(
        ws,
        {
          type: 'start',
          swarm: s,
          count,
          controller: controller.address,
          controllerKey,
          token,
          stateRoot: agentRoot,
          enrollConcurrency: Math.max(1, Math.ceil(opts.enrollConcurrency / opts.swarms)),
        },
        opts.swarmNice,
      ),
    );
  }
  const progress = setInterval(() => {
    const enrolled = swarms.reduce((a, s) => a + s.enrolled, 0);
    const online = swarms.reduce((a, s) => a + s.online, 0);
    note(`enrolled ${enrolled}/${opts.agents}, online ${online}/${opts.agents}`);
  }, 3000);
  let ready;
  try {
    ready = await Promise.all(swarms.map((s) => s.ready));
  } finally {
    clearInterval(progress);
  }
  const hostIds = ready.flatMap((r) => r.hostIds);
  await waitAllOnline(stateDir, hostIds, 60_000);
  const connectMs = Date.now() - connectStart;
  note(`${hostIds.length} agents enrolled and online in ${round1(connectMs / 1000)} s`);

  await sleep(SETTLE_MS);
  const rssLoadedKb = readRssKb(controllerPid);
  const perAgentKb = (rssLoadedKb - rssBaselineKb) / opts.agents;
  note(`controller RSS with ${opts.agents} agents ${round1(rssLoadedKb / 1024)} MB`);
  const swarmRssKb = ready.reduce((a, r) => a + r.rssKb, 0);

  // Fan-out rounds: warm-up first, then the measured ones.
  // CPU time each side spends per round tells the controller's work from the simulation's.
  const swarmPids = swarms.map((s) => s.child.pid ?? -1);
  const swarmCpuMs = (): number => swarmPids.reduce((a, pid) => a + readCpuMs(pid), 0);
  const rounds: Round[] = [];
  const warmupP99: number[] = [];
  const roundP99: number[] = [];
  const controllerCpu: number[] = [];
  const swarmCpu: number[] = [];
  for (let i = 0; i < opts.warmup + opts.rounds; i++) {
    const cpuBefore = { controller: readCpuMs(controllerPid), swarms: swarmCpuMs() };
    const round = await pingRound(stateDir, opts.agents, opts.pingTimeout);
    const cpu = {
      controller: readCpuMs(controllerPid) - cpuBefore.controller,
      swarms: swarmCpuMs() - cpuBefore.swarms,
    };
    const measured = i >= opts.warmup;
    const sorted = [...round.rtts].sort((a, b) => a - b);
    note(
      `${measured ? 'round' : 'warm-up'} ${i + 1}: wall ${Math.round(round.wallMs)} ms, ` +
        `p50 ${round1(percentile(sorted, 50))} ms, p99 ${round1(percentile(sorted, 99))} ms, ` +
        `max ${round1(sorted[sorted.length - 1] ?? NaN)} ms, failures ${round.failures}, ` +
        `cpu controller ${cpu.controller} ms, swarms ${cpu.swarms} ms, ` +
        `controller RSS ${round1(readRssKb(controllerPid) / 1024)} MB`,
    );
    (measured ? roundP99 : warmupP99).push(round1(percentile(sorted, 99)));
    if (measured) {
      rounds.push(round);
      controllerCpu.push(cpu.controller);
      swarmCpu.push(cpu.swarms);
    }
    await sleep(500);
  }
  const rtts = rounds.flatMap((r) => r.rtts).sort((a, b) => a - b);
  const failures = rounds.reduce((a, r) => a + r.failures, 0);
  const failureCodes: Record<string, number> = {};
  for (const r of rounds)
    for (const [code, n] of Object.entries(r.failureCodes))
      failureCodes[code] = (failureCodes[code] ?? 0) + n;
  const p50 = percentile(rtts, 50);
  const p99 = percentile(rtts, 99);
  const roundWalls = rounds.map((r) => r.wallMs);
  const rssAfterFanoutKb = readRssKb(controllerPid);

  note('idle agent: enrolling and running one convoy-agent process');
  const agentIdle = await idleAgentRss(ws, controller, controllerKey, tokenFile);
  const agentIdleKb = agentIdle.rssKb;
  const bareKb = await bareNodeRssKb(ws);
  // One host's durable journal append on this machine's disk (where the idle agent lives).
  const fsyncMs = fdatasyncLatencyMs(ws.root);

  const figures = {
    agents: opts.agents,
    swarms: opts.swarms,
    rounds: opts.rounds,
    warmup_rounds: opts.warmup,
    samples: rtts.length,
    fanout_p50_ms: round1(p50),
    fanout_p99_ms: round1(p99),
    fanout_max_ms: round1(rtts[rtts.length - 1] ?? NaN),
    fanout_failures: failures,
    fanout_failure_codes: failureCodes,
    round_p99_ms: roundP99,
    warmup_round_p99_ms: warmupP99,
    round_wall_ms: roundWalls.map((w) => Math.round(w)),
    round_wall_median_ms: Math.round(median(roundWalls)),
    controller_cpu_ms_per_round: Math.round(median(controllerCpu)),
    swarms_cpu_ms_per_round: Math.round(median(swarmCpu)),
    connect_all_s: round1(connectMs / 1000),
    controller_rss_baseline_mb: round1(rssBaselineKb / 1024),
    controller_rss_loaded_mb: round1(rssLoadedKb / 1024),
    controller_rss_after_fanout_mb: round1(rssAfterFanoutKb / 1024),
    controller_rss_per_agent_kb: round1(perAgentKb),
    controller_rss_per_agent_after_fanout_kb: round1((rssAfterFanoutKb - rssBaselineKb) / opts.agents),
    swarm_rss_per_agent_kb: round1((swarmRssKb - opts.swarms * bareKb) / opts.agents),
    agent_idle_rss_mb: round1(agentIdleKb / 1024),
    agent_idle_rss_range_mb: [round1(agentIdle.minKb / 1024), round1(agentIdle.maxKb / 1024)],
    agent_idle_rss_anon_mb: round1(agentIdle.anonKb / 1024),
    agent_idle_rss_file_mb: round1(agentIdle.fileKb / 1024),
    node_bare_rss_mb: round1(bareKb / 1024),
    swarm_nice: opts.swarmNice,
    agent_state_fs: agentFs,
    disk_fs: fsType(ws.root),
    disk_fdatasync_p50_ms: round1(percentile(fsyncMs, 50)),
    disk_fdatasync_p99_ms: round1(percentile(fsyncMs, 99)),
    targets: {
      fanout_p99_ms: TARGET_P99_MS,
      controller_rss_per_agent_kb: TARGET_CONTROLLER_KB_PER_AGENT,
      agent_idle_rss_mb: TARGET_AGENT_IDLE_MB,
    },
    pass: {
      fanout_p99: failures === 0 && p99 < TARGET_P99_MS,
      controller_rss_per_agent: perAgentKb < TARGET_CONTROLLER_KB_PER_AGENT,
      agent_idle_rss: agentIdleKb / 1024 < TARGET_AGENT_IDLE_MB,
    },
    commit: treeVersion(),
    node: process.version,
    cpus: os.cpus().length,
    date: new Date().toISOString(),
  };

  const out = (line: string): void => void process.stdout.write(line + '\n');
  out('');
  out(
    `Convoy fan-out benchmark: ${opts.agents} agents in ${opts.swarms} swarm processes, ` +
      `${opts.rounds} measured ping rounds after ${opts.warmup} warm-up ` +
      `(${figures.commit}, node ${process.version}, ${os.cpus().length} CPUs)`,
  );
  out(
    `  ping round trip     p50 ${figures.fanout_p50_ms} ms, p99 ${figures.fanout_p99_ms} ms ` +
      `(max ${figures.fanout_max_ms} ms, ${rtts.length} samples)   target p99 < ${TARGET_P99_MS} ms: ${verdict(figures.pass.fanout_p99)}`,
  );
  out(
    `  ping failures       ${failures}${failures > 0 ? ' ' + JSON.stringify(failureCodes) : ''}   expected 0: ${verdict(failures === 0)}`,
  );
  out(
    `  p99 by round        ${figures.round_p99_ms.join(', ')} ms` +
      (warmupP99.length > 0 ? ` (warm-up, not counted: ${warmupP99.join(', ')} ms)` : ''),
  );
  out(
    `  round wall time     median ${figures.round_wall_median_ms} ms (CLI start to exit; rounds ${figures.round_wall_ms.join(', ')} ms)`,
  );
  out(
    `  CPU per round       controller ${figures.controller_cpu_ms_per_round} ms, agent swarms ${figures.swarms_cpu_ms_per_round} ms (medians)`,
  );
  out(
    `  controller RSS      ${figures.controller_rss_baseline_mb} MB idle -> ${figures.controller_rss_loaded_mb} MB with ${opts.agents} agents ` +
      `(${figures.controller_rss_after_fanout_mb} MB after fan-out)`,
  );
  out(
    `  per connected agent ${figures.controller_rss_per_agent_kb} KB ` +
      `(${figures.controller_rss_per_agent_after_fanout_kb} KB after fan-out)   target < ${TARGET_CONTROLLER_KB_PER_AGENT} KB: ${verdict(figures.pass.controller_rss_per_agent)}`,
  );
  out(
    `  idle agent RSS      ${figures.agent_idle_rss_mb} MB (bare node: ${figures.node_bare_rss_mb} MB)   target < ${TARGET_AGENT_IDLE_MB} MB: ${verdict(figures.pass.agent_idle_rss)}`,
  );
  out(
    `                      (median of 5 readings ${figures.agent_idle_rss_range_mb.join('-')} MB: ${figures.agent_idle_rss_anon_mb} MB private, ${figures.agent_idle_rss_file_mb} MB mapped files, mostly the node binary)`,
  );
  out(`  connect all agents  ${figures.connect_all_s} s (enroll + handshake)`);
  out(
    `  simulated agents' state on ${agentFs}; one journal fdatasync on this disk (${figures.disk_fs}): ` +
      `p50 ${figures.disk_fdatasync_p50_ms} ms, p99 ${figures.disk_fdatasync_p99_ms} ms (add to a real host's round trip)`,
  );
  return figures;
}

const USAGE =
  'usage: node dist/scripts/bench/fanout.js [--agents 1000] [--swarms 4] [--rounds 5] [--warmup 1]\n' +
  '         [--enroll-concurrency 20] [--ping-timeout 10s] [--timeout-minutes 10]\n' +
  '         [--swarm-nice 0] [--agent-state-root DIR] [--controller-node-args="--cpu-prof --cpu-prof-dir=DIR"]\n';

async function main(): Promise<void> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const ws = new Workspace();
  const hardTimeout = setTimeout(() => {
    note(`hard timeout: ${opts.timeoutMinutes} min elapsed; cleaning up`);
    void ws.cleanup().finally(() => process.exit(1));
  }, opts.timeoutMinutes * 60_000);
  const onSignal = (signal: string): void => {
    note(`${signal}: cleaning up`);
    void ws.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const figures = await bench(opts, ws);
    process.stdout.write(JSON.stringify(figures) + '\n');
    if (figures.fanout_failures > 0) process.exitCode = 1;
  } catch (err) {
    note(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    note(`controller log:\n${ws.tail('controller.log')}`);
    note(`swarm log:\n${ws.tail('swarms.log')}`);
    process.exitCode = 1;
  } finally {
    await ws.cleanup();
    clearTimeout(hardTimeout);
  }
}

void main();
