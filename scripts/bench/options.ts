/** Command-line options of the benchmark, their defaults and the usage text. */
import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';

export interface Options {
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
  /** Hosts (network namespaces, one sshd each) of the enrollment part (default 10, at most 200). */
  readonly enrollHosts: number;
}

export const USAGE =
  'usage: node dist/scripts/bench/fanout.js [--agents 1000] [--swarms 4] [--rounds 5] [--warmup 1]\n' +
  '         [--enroll-concurrency 20] [--ping-timeout 10s] [--timeout-minutes 10]\n' +
  '         [--swarm-nice 0] [--agent-state-root DIR] [--controller-node-args="--cpu-prof --cpu-prof-dir=DIR"]\n' +
  '         [--enroll-hosts 10]\n';

/** Throws on an unknown option or a value out of range; the caller prints USAGE. */
export function parseOptions(argv: readonly string[]): Options {
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
      'enroll-hosts': { type: 'string', default: '10' },
    },
    strict: true,
  });
  const agents = parseInteger('agents', values.agents, 1);
  const enrollHosts = parseInteger('enroll-hosts', values['enroll-hosts'], 1);
  // The namespaces' subnet holds 200 hosts (scripts/fixtures/netns.ts).
  if (enrollHosts > 200) throw new Error('--enroll-hosts must be at most 200');
  return {
    agents,
    swarms: Math.min(agents, parseInteger('swarms', values.swarms, 1)),
    swarmNice: Math.min(19, parseInteger('swarm-nice', values['swarm-nice'], 0)),
    rounds: parseInteger('rounds', values.rounds, 1),
    warmup: parseInteger('warmup', values.warmup, 0),
    enrollConcurrency: parseInteger('enroll-concurrency', values['enroll-concurrency'], 1),
    pingTimeout: values['ping-timeout'] ?? '10s',
    timeoutMinutes: parseInteger('timeout-minutes', values['timeout-minutes'], 1),
    agentStateRoot: values['agent-state-root'] ?? defaultAgentStateRoot(),
    controllerNodeArgs: (values['controller-node-args'] ?? '').split(/\s+/).filter((a) => a !== ''),
    enrollHosts,
  };
}

function parseInteger(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
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
