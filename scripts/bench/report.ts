/**
 * The figures: one object with every figure, printed as readable lines with a PASS or MISS for
 * each target, then as the final JSON line.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import type { IdleAgentRss } from './idle-agent';
import type { Options } from './options';
import { ROOT } from './paths';
import type { FanoutRounds, FanoutSummary } from './ping-rounds';
import { median, percentile, round1 } from './proc';

const TARGET_P99_MS = 500;
const TARGET_CONTROLLER_KB_PER_AGENT = 100;
const TARGET_AGENT_IDLE_MB = 60;

/** Controller VmRSS idle, with every agent connected, and after the ping rounds, kB. */
export interface ControllerRss {
  readonly baselineKb: number;
  readonly loadedKb: number;
  readonly afterFanoutKb: number;
}

/** Everything the benchmark measured, raw. */
export interface Measurements {
  readonly opts: Options;
  readonly connectMs: number;
  readonly controllerRss: ControllerRss;
  readonly swarmRssKb: number;
  readonly rounds: FanoutRounds;
  readonly fanout: FanoutSummary;
  readonly idleAgent: IdleAgentRss;
  readonly bareNodeKb: number;
  /** Sorted latencies of journal appends with fdatasync on the real disk, ms. */
  readonly fsyncMs: readonly number[];
  readonly agentStateFs: string;
  readonly diskFs: string;
}

export type Figures = ReturnType<typeof figuresOf>;

/** The figures as printed in the JSON line, in that order (docs/benchmarks.md names them). */
export function figuresOf(m: Measurements) {
  const { opts, fanout, controllerRss: rss, idleAgent } = m;
  const perAgentKb = (rss.loadedKb - rss.baselineKb) / opts.agents;
  return {
    agents: opts.agents,
    swarms: opts.swarms,
    rounds: opts.rounds,
    warmup_rounds: opts.warmup,
    samples: fanout.rtts.length,
    fanout_p50_ms: round1(fanout.p50),
    fanout_p99_ms: round1(fanout.p99),
    fanout_max_ms: round1(fanout.rtts[fanout.rtts.length - 1] ?? NaN),
    fanout_failures: fanout.failures,
    fanout_failure_codes: fanout.failureCodes,
    round_p99_ms: m.rounds.roundP99,
    warmup_round_p99_ms: m.rounds.warmupP99,
    round_wall_ms: fanout.roundWalls.map((w) => Math.round(w)),
    round_wall_median_ms: Math.round(median(fanout.roundWalls)),
    controller_cpu_ms_per_round: Math.round(median(m.rounds.controllerCpuMs)),
    swarms_cpu_ms_per_round: Math.round(median(m.rounds.swarmsCpuMs)),
    connect_all_s: round1(m.connectMs / 1000),
    controller_rss_baseline_mb: round1(rss.baselineKb / 1024),
    controller_rss_loaded_mb: round1(rss.loadedKb / 1024),
    controller_rss_after_fanout_mb: round1(rss.afterFanoutKb / 1024),
    controller_rss_per_agent_kb: round1(perAgentKb),
    controller_rss_per_agent_after_fanout_kb: round1((rss.afterFanoutKb - rss.baselineKb) / opts.agents),
    swarm_rss_per_agent_kb: round1((m.swarmRssKb - opts.swarms * m.bareNodeKb) / opts.agents),
    agent_idle_rss_mb: round1(idleAgent.rssKb / 1024),
    agent_idle_rss_range_mb: [round1(idleAgent.minKb / 1024), round1(idleAgent.maxKb / 1024)],
    agent_idle_rss_anon_mb: round1(idleAgent.anonKb / 1024),
    agent_idle_rss_file_mb: round1(idleAgent.fileKb / 1024),
    node_bare_rss_mb: round1(m.bareNodeKb / 1024),
    swarm_nice: opts.swarmNice,
    agent_state_fs: m.agentStateFs,
    disk_fs: m.diskFs,
    disk_fdatasync_p50_ms: round1(percentile(m.fsyncMs, 50)),
    disk_fdatasync_p99_ms: round1(percentile(m.fsyncMs, 99)),
    targets: {
      fanout_p99_ms: TARGET_P99_MS,
      controller_rss_per_agent_kb: TARGET_CONTROLLER_KB_PER_AGENT,
      agent_idle_rss_mb: TARGET_AGENT_IDLE_MB,
    },
    // Verdicts use the unrounded figures.
    pass: {
      fanout_p99: fanout.failures === 0 && fanout.p99 < TARGET_P99_MS,
      controller_rss_per_agent: perAgentKb < TARGET_CONTROLLER_KB_PER_AGENT,
      agent_idle_rss: idleAgent.rssKb / 1024 < TARGET_AGENT_IDLE_MB,
    },
    commit: treeVersion(),
    node: process.version,
    cpus: os.cpus().length,
    date: new Date().toISOString(),
  };
}

/** `git describe --always --dirty` of the tree measured, or 'unknown' outside a checkout. */
function treeVersion(): string {
  const r = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'MISS';
}

/** The readable lines, on stdout before the JSON line. */
export function printFigures(f: Figures): void {
  const out = (line: string): void => void process.stdout.write(line + '\n');
  out('');
  out(
    `Convoy fan-out benchmark: ${f.agents} agents in ${f.swarms} swarm processes, ` +
      `${f.rounds} measured ping rounds after ${f.warmup_rounds} warm-up ` +
      `(${f.commit}, node ${f.node}, ${f.cpus} CPUs)`,
  );
  out(
    `  ping round trip     p50 ${f.fanout_p50_ms} ms, p99 ${f.fanout_p99_ms} ms ` +
      `(max ${f.fanout_max_ms} ms, ${f.samples} samples)   target p99 < ${TARGET_P99_MS} ms: ${verdict(f.pass.fanout_p99)}`,
  );
  const failures = f.fanout_failures;
  out(
    `  ping failures       ${failures}${failures > 0 ? ' ' + JSON.stringify(f.fanout_failure_codes) : ''}   expected 0: ${verdict(failures === 0)}`,
  );
  out(
    `  p99 by round        ${f.round_p99_ms.join(', ')} ms` +
      (f.warmup_round_p99_ms.length > 0
        ? ` (warm-up, not counted: ${f.warmup_round_p99_ms.join(', ')} ms)`
        : ''),
  );
  out(
    `  round wall time     median ${f.round_wall_median_ms} ms (CLI start to exit; rounds ${f.round_wall_ms.join(', ')} ms)`,
  );
  out(
    `  CPU per round       controller ${f.controller_cpu_ms_per_round} ms, agent swarms ${f.swarms_cpu_ms_per_round} ms (medians)`,
  );
  out(
    `  controller RSS      ${f.controller_rss_baseline_mb} MB idle -> ${f.controller_rss_loaded_mb} MB with ${f.agents} agents ` +
      `(${f.controller_rss_after_fanout_mb} MB after fan-out)`,
  );
  out(
    `  per connected agent ${f.controller_rss_per_agent_kb} KB ` +
      `(${f.controller_rss_per_agent_after_fanout_kb} KB after fan-out)   target < ${TARGET_CONTROLLER_KB_PER_AGENT} KB: ${verdict(f.pass.controller_rss_per_agent)}`,
  );
  out(
    `  idle agent RSS      ${f.agent_idle_rss_mb} MB (bare node: ${f.node_bare_rss_mb} MB)   target < ${TARGET_AGENT_IDLE_MB} MB: ${verdict(f.pass.agent_idle_rss)}`,
  );
  out(
    `                      (median of 5 readings ${f.agent_idle_rss_range_mb.join('-')} MB: ${f.agent_idle_rss_anon_mb} MB private, ${f.agent_idle_rss_file_mb} MB mapped files, mostly the node binary)`,
  );
  out(`  connect all agents  ${f.connect_all_s} s (enroll + handshake)`);
  out(
    `  simulated agents' state on ${f.agent_state_fs}; one journal fdatasync on this disk (${f.disk_fs}): ` +
      `p50 ${f.disk_fdatasync_p50_ms} ms, p99 ${f.disk_fdatasync_p99_ms} ms (add to a real host's round trip)`,
  );
}
