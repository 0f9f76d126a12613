/**
 * The fan-out measurement: `convoy ping` to every connected agent, one round at a time, with the
 * CPU time the controller and the swarms spend on each round.
 */
import { convoy } from './controller-proc';
import type { Options } from './options';
import { percentile, readCpuMs, readRssKb, round1, sleep, type CliRun } from './proc';
import { note } from './workspace';

/** One host's entry in `convoy ping --json`. */
interface PingResult {
  readonly hostId: string;
  readonly outcome: string;
  readonly rttMs: number;
  readonly errorCode?: string;
}

interface Round {
  /** `convoy ping` from spawn to exit, ms. */
  readonly wallMs: number;
  /** Controller-measured round trips of the hosts that answered `ok`, ms. */
  readonly rtts: number[];
  readonly failures: number;
  readonly failureCodes: Record<string, number>;
}

interface CpuMs {
  readonly controller: number;
  readonly swarms: number;
}

/** The measured rounds (warm-up rounds only leave their p99). */
export interface FanoutRounds {
  readonly measured: readonly Round[];
  readonly roundP99: readonly number[];
  readonly warmupP99: readonly number[];
  readonly controllerCpuMs: readonly number[];
  readonly swarmsCpuMs: readonly number[];
}

/** Runs `opts.warmup` warm-up rounds, then `opts.rounds` measured ones, 0.5 s apart. */
export async function runPingRounds(
  opts: Options,
  controller: { readonly pid: number; readonly stateDir: string },
  swarmPids: readonly number[],
): Promise<FanoutRounds> {
  // CPU time each side spends per round tells the controller's work from the simulation's.
  const cpuNow = (): CpuMs => ({
    controller: readCpuMs(controller.pid),
    swarms: swarmPids.reduce((a, pid) => a + readCpuMs(pid), 0),
  });
  const rounds = { measured: [] as Round[], roundP99: [] as number[], warmupP99: [] as number[] };
  const cpu = { controller: [] as number[], swarms: [] as number[] };
  for (let i = 0; i < opts.warmup + opts.rounds; i++) {
    const before = cpuNow();
    const round = await pingRound(controller.stateDir, opts.agents, opts.pingTimeout);
    const after = cpuNow();
    const used = { controller: after.controller - before.controller, swarms: after.swarms - before.swarms };
    const measured = i >= opts.warmup;
    const p99 = noteRound(`${measured ? 'round' : 'warm-up'} ${i + 1}`, round, used, controller.pid);
    (measured ? rounds.roundP99 : rounds.warmupP99).push(round1(p99));
    if (measured) {
      rounds.measured.push(round);
      cpu.controller.push(used.controller);
      cpu.swarms.push(used.swarms);
    }
    await sleep(500);
  }
  return { ...rounds, controllerCpuMs: cpu.controller, swarmsCpuMs: cpu.swarms };
}

/** Notes one round's figures and the controller's RSS after it; returns the round's p99. */
function noteRound(label: string, round: Round, cpu: CpuMs, controllerPid: number): number {
  const sorted = [...round.rtts].sort((a, b) => a - b);
  const p99 = percentile(sorted, 99);
  note(
    `${label}: wall ${Math.round(round.wallMs)} ms, ` +
      `p50 ${round1(percentile(sorted, 50))} ms, p99 ${round1(p99)} ms, ` +
      `max ${round1(sorted[sorted.length - 1] ?? NaN)} ms, failures ${round.failures}, ` +
      `cpu controller ${cpu.controller} ms, swarms ${cpu.swarms} ms, ` +
      `controller RSS ${round1(readRssKb(controllerPid) / 1024)} MB`,
  );
  return p99;
}

async function pingRound(stateDir: string, expected: number, timeout: string): Promise<Round> {
  const r = await convoy(['ping', '--state-dir', stateDir, '--json', '--timeout', timeout], 120_000);
  const round = tallyPingOutput(r, expected);
  if (round.failures > 0) note(`ping round: ${JSON.stringify(round.failureCodes)} ${r.stderr.trim()}`);
  return round;
}

/** Round trips of the `ok` answers; everything else, and every missing host, counted by code. */
function tallyPingOutput(r: CliRun, expected: number): Round {
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
    else addCount(failureCodes, res.errorCode || res.outcome, 1);
  }
  const missing = Math.max(0, expected - results.length);
  if (missing > 0) failureCodes['NO_RESULT'] = missing;
  // Every host answered, yet the CLI failed: count the round's failure once.
  if (r.code !== 0 && rtts.length === expected) failureCodes[`CLI_EXIT_${r.code ?? 'signal'}`] = 1;
  const failures = Object.values(failureCodes).reduce((a, b) => a + b, 0);
  return { wallMs: r.wallMs, rtts, failures, failureCodes };
}

function addCount(counts: Record<string, number>, key: string, n: number): void {
  counts[key] = (counts[key] ?? 0) + n;
}

/** The measured rounds pooled: the figures the report gives for the fan-out. */
export interface FanoutSummary {
  /** Every measured round trip, sorted. */
  readonly rtts: readonly number[];
  readonly p50: number;
  readonly p99: number;
  readonly failures: number;
  readonly failureCodes: Record<string, number>;
  readonly roundWalls: readonly number[];
}

export function summarizeRounds(rounds: FanoutRounds): FanoutSummary {
  const rtts = rounds.measured.flatMap((r) => r.rtts).sort((a, b) => a - b);
  const failureCodes: Record<string, number> = {};
  for (const r of rounds.measured)
    for (const [code, n] of Object.entries(r.failureCodes)) addCount(failureCodes, code, n);
  return {
    rtts,
    p50: percentile(rtts, 50),
    p99: percentile(rtts, 99),
    failures: rounds.measured.reduce((a, r) => a + r.failures, 0),
    failureCodes,
    roundWalls: rounds.measured.map((r) => r.wallMs),
  };
}
