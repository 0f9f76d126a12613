/**
 * The rollout figures (downtime with and without staging, orchestration overhead), printed as
 * readable lines with PASS or MISS, and joined with the fan-out figures into the final JSON line.
 * docs/benchmarks.md, "Rollouts", defines each one.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import type { DowntimeResult } from './downtime';
import { ROOT } from './paths';
import { percentile, round1 } from './proc';
import type { Figures } from './report';
import type { RolloutBenchOptions } from './rollout-options';
import type { RolloutSimResult } from './rollout-sim';

const TARGET_DOWNTIME_RATIO = 0.2;
const TARGET_STAGED_VS_BARE = 1.2;
const TARGET_MS_PER_HOST_STEP = 5;

function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function downtimeFigures(o: RolloutBenchOptions, d: DowntimeResult) {
  const staged = mean(d.stagedMs);
  const ratio = staged / mean(d.unstagedMs);
  const vsBare = staged / mean(d.bare.commandMs);
  return {
    figures: {
      downtime_hosts: o.downtimeHosts,
      downtime_payload_mb: o.payloadMb,
      downtime_repo_mb_per_s: o.repoMbPerSecond,
      downtime_postinst_ms: o.applyMs,
      downtime_staged_ms: d.stagedMs.map(Math.round),
      downtime_unstaged_ms: d.unstagedMs.map(Math.round),
      bare_apply_ms: d.bare.commandMs.map(Math.round),
      bare_dpkg_ms: d.bare.dpkgMs.map(Math.round),
      downtime_ratio_staged: round3(ratio),
      staged_vs_bare_apply: round3(vsBare),
      downtime_rollout_staged_s: round1(d.stagedRolloutMs / 1000),
      downtime_rollout_unstaged_s: round1(d.unstagedRolloutMs / 1000),
      downtime_loadavg_1m: round1(d.loadAvg1m),
    },
    pass: {
      downtime_ratio_staged: ratio <= TARGET_DOWNTIME_RATIO,
      staged_vs_bare_apply: vsBare <= TARGET_STAGED_VS_BARE,
    },
  };
}

function rolloutFigures(r: RolloutSimResult) {
  const perStep = r.wallMs / r.hostSteps;
  return {
    figures: {
      rollout_hosts: r.hosts,
      rollout_concurrency: r.concurrency,
      rollout_200_hosts_s: r.hosts === 200 ? round1(r.wallMs / 1000) : null,
      rollout_wall_s: round1(r.wallMs / 1000),
      rollout_start_cli_s: round1(r.startCliMs / 1000),
      rollout_host_steps: r.hostSteps,
      overhead_per_host_step_ms: round3(perStep),
      controller_cpu_per_host_step_ms: round3(r.controllerCpuMs / r.hostSteps),
      rollout_controller_cpu_s: round1(r.controllerCpuMs / 1000),
      rollout_sim_agents_cpu_s: round1(r.simAgentsCpuMs / 1000),
      rollout_connect_s: round1(r.connectMs / 1000),
      rollout_store_fdatasync_p50_ms: round1(percentile(r.storeFsyncMs, 50)),
      rollout_store_fdatasync_p99_ms: round1(percentile(r.storeFsyncMs, 99)),
      rollout_loadavg_1m: round1(r.loadAvg1m),
    },
    pass: { overhead_per_host_step: perStep <= TARGET_MS_PER_HOST_STEP },
  };
}

export type RolloutFigures = ReturnType<typeof rolloutFiguresOf>;

export function rolloutFiguresOf(
  o: RolloutBenchOptions,
  d: DowntimeResult | undefined,
  r: RolloutSimResult | undefined,
) {
  const dt = d === undefined ? undefined : downtimeFigures(o, d);
  const ro = r === undefined ? undefined : rolloutFigures(r);
  return {
    figures: { ...dt?.figures, ...ro?.figures },
    targets: {
      ...(dt === undefined
        ? {}
        : { downtime_ratio_staged: TARGET_DOWNTIME_RATIO, staged_vs_bare_apply: TARGET_STAGED_VS_BARE }),
      ...(ro === undefined ? {} : { overhead_per_host_step_ms: TARGET_MS_PER_HOST_STEP }),
    },
    pass: { ...dt?.pass, ...ro?.pass },
  };
}

/** The final JSON object: the fan-out figures (when that part ran), ours, then targets, verdicts and provenance. */
export function joinFigures(fanout: Figures | undefined, more: RolloutFigures): Record<string, unknown> {
  if (fanout === undefined) {
    return {
      ...more.figures,
      targets: more.targets,
      pass: more.pass,
      commit: treeVersion(),
      node: process.version,
      cpus: os.cpus().length,
      date: new Date().toISOString(),
    };
  }
  const { targets, pass, commit, node, cpus, date, ...rest } = fanout;
  return {
    ...rest,
    ...more.figures,
    targets: { ...targets, ...more.targets },
    pass: { ...pass, ...more.pass },
    commit,
    node,
    cpus,
    date,
  };
}

function treeVersion(): string {
  const r = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

function verdict(ok: boolean | undefined): string {
  return ok === true ? 'PASS' : 'MISS';
}

/** The readable lines, on stdout before the JSON line. */
export function printRolloutFigures(o: RolloutBenchOptions, more: RolloutFigures): void {
  const out = (line: string): void => void process.stdout.write(line + '\n');
  const f = more.figures;
  if (f.downtime_ratio_staged !== undefined) {
    out('');
    out(
      `Downtime of one bm-core upgrade: ${o.downtimeHosts} hosts at once, ${o.payloadMb} MB at ${o.repoMbPerSecond} MB/s per host, postinst ${o.applyMs} ms`,
    );
    out(`  machine load average (1 min) ${f.downtime_loadavg_1m} at the start (${os.cpus().length} CPUs)`);
    out(
      `  staged (maintenance spans)   ${f.downtime_staged_ms?.join(', ')} ms   (rollout ${f.downtime_rollout_staged_s} s)`,
    );
    out(
      `  unstaged                     ${f.downtime_unstaged_ms?.join(', ')} ms   (rollout ${f.downtime_rollout_unstaged_s} s)`,
    );
    out(
      `  bare apply (command)         ${f.bare_apply_ms?.join(', ')} ms   (dpkg preinst -> postinst ${f.bare_dpkg_ms?.join(', ')} ms)`,
    );
    out(
      `  staged / unstaged            ${f.downtime_ratio_staged}   target <= ${TARGET_DOWNTIME_RATIO}: ${verdict(more.pass.downtime_ratio_staged)}`,
    );
    out(
      `  staged / bare apply          ${f.staged_vs_bare_apply}   target <= ${TARGET_STAGED_VS_BARE}: ${verdict(more.pass.staged_vs_bare_apply)}`,
    );
  }
  if (f.overhead_per_host_step_ms !== undefined) {
    out('');
    out(
      `Rollout of a no-op recipe: ${f.rollout_hosts} simulated hosts, ${f.rollout_concurrency} at a time (canary 1)`,
    );
    out(
      `  wall time                    ${f.rollout_wall_s} s (rollout start ${f.rollout_start_cli_s} s of it: CLI, check on every host)`,
    );
    out(
      `  per host-step                ${f.overhead_per_host_step_ms} ms (${f.rollout_host_steps} host-steps)   target <= ${TARGET_MS_PER_HOST_STEP} ms: ${verdict(more.pass.overhead_per_host_step)}`,
    );
    out(
      `  CPU                          controller ${f.rollout_controller_cpu_s} s (${f.controller_cpu_per_host_step_ms} ms per host-step), simulated agents ${f.rollout_sim_agents_cpu_s} s`,
    );
    out(
      `  controller store disk        one append + fdatasync p50 ${f.rollout_store_fdatasync_p50_ms} ms, p99 ${f.rollout_store_fdatasync_p99_ms} ms (each transition commits)`,
    );
    out(`  machine load average (1 min) ${f.rollout_loadavg_1m} at the start (${os.cpus().length} CPUs)`);
  }
}
