/**
 * The enrollment figures (bundle, SSH enrollment, bundled agents' memory, self-update), printed as
 * readable lines, and added to the rollout figures that go into the final JSON line.
 * docs/benchmarks.md, "Enrollment over SSH and self-update", defines each one.
 */
import os from 'node:os';
import { FROM, TO, type EnrollResult } from './enroll';
import { median, round1 } from './proc';
import type { RolloutFigures } from './rollout-report';

/** The same target as the fan-out part's one idle agent, met by every bundled agent. */
const TARGET_AGENT_IDLE_MB = 60;

const mb = (kb: number): number => round1(kb / 1024);

export type EnrollFigures = ReturnType<typeof enrollFiguresOf>;

export function enrollFiguresOf(r: EnrollResult) {
  if (r.skipped !== undefined)
    return { figures: { enroll_hosts: r.hosts, enroll_skipped: r.skipped }, targets: {}, pass: {} };
  const agentKb = r.agentRss.map((a) => a.rssKb);
  const maxAgentKb = Math.max(...agentKb);
  return {
    figures: {
      enroll_hosts: r.hosts,
      bundle_kb: round1(r.bundleBytes / 1024),
      bundle_build_ms: Math.round(r.bundleBuildMs),
      bundle_signed_build_ms: Math.round(r.signedBuildMs),
      enroll_parallel_s: round1(r.enrollWallMs / 1000),
      enroll_per_host_median_ms: Math.round(median(r.enrollPerHostMs)),
      enroll_per_host_max_ms: Math.round(Math.max(...r.enrollPerHostMs)),
      enroll_rerun_s: round1(r.rerunWallMs / 1000),
      enroll_rerun_per_host_median_ms: Math.round(median(r.rerunPerHostMs)),
      bundled_idle_agent_rss_mb: mb(median(agentKb)),
      bundled_idle_agent_rss_max_mb: mb(maxAgentKb),
      bundled_idle_agent_rss_anon_mb: mb(median(r.agentRss.map((a) => a.anonKb))),
      bundled_idle_agent_rss_file_mb: mb(median(r.agentRss.map((a) => a.fileKb))),
      supervisor_idle_rss_mb: mb(median(r.supervisorRss.map((a) => a.rssKb))),
      supervisor_idle_rss_anon_mb: mb(median(r.supervisorRss.map((a) => a.anonKb))),
      self_update_s: round1(r.selfUpdateMs / 1000),
      self_update_canary: r.batches.canary,
      self_update_batch_size: r.batches.concurrency,
      enroll_loadavg_1m: round1(r.loadAvg1m),
    },
    targets: { bundled_idle_agent_rss_max_mb: TARGET_AGENT_IDLE_MB },
    // Every agent, not the median: the largest one must be under the target.
    pass: { bundled_idle_agent_rss_max: maxAgentKb / 1024 < TARGET_AGENT_IDLE_MB },
  };
}

/** The rollout figures with ours added, for joinFigures. */
export function withEnrollFigures(more: RolloutFigures, e: EnrollFigures | undefined): RolloutFigures {
  if (e === undefined) return more;
  return {
    figures: { ...more.figures, ...e.figures },
    targets: { ...more.targets, ...e.targets },
    pass: { ...more.pass, ...e.pass },
  };
}

/** The readable lines, on stdout before the JSON line. */
export function printEnrollFigures(e: EnrollFigures): void {
  const out = (line: string): void => void process.stdout.write(line + '\n');
  const f = e.figures;
  out('');
  if ('enroll_skipped' in f) {
    out(`Enrollment over SSH and self-update: skipped: ${f.enroll_skipped}`);
    return;
  }
  const verdict = e.pass.bundled_idle_agent_rss_max === true ? 'PASS' : 'MISS';
  out(`Enrollment over SSH and self-update: ${f.enroll_hosts} hosts as network namespaces, one sshd each`);
  out(
    `  agent bundle                 ${f.bundle_kb} KB, built in ${f.bundle_build_ms} ms (signed: ${f.bundle_signed_build_ms} ms)`,
  );
  out(
    `  hosts enroll --ssh, all      ${f.enroll_parallel_s} s (per host median ${f.enroll_per_host_median_ms} ms, max ${f.enroll_per_host_max_ms} ms)`,
  );
  out(
    `  again, nothing changed       ${f.enroll_rerun_s} s (per host median ${f.enroll_rerun_per_host_median_ms} ms)`,
  );
  out(
    `  bundled agent RSS, idle      median ${f.bundled_idle_agent_rss_mb} MB, max ${f.bundled_idle_agent_rss_max_mb} MB   target < ${TARGET_AGENT_IDLE_MB} MB: ${verdict}`,
  );
  out(
    `                               (${f.bundled_idle_agent_rss_anon_mb} MB private, ${f.bundled_idle_agent_rss_file_mb} MB mapped files; its supervisor ${f.supervisor_idle_rss_mb} MB, ${f.supervisor_idle_rss_anon_mb} MB private)`,
  );
  const batches =
    f.self_update_canary === 0
      ? `one batch of ${f.self_update_batch_size}`
      : `${f.self_update_canary} canary, then ${f.self_update_batch_size} at a time`;
  out(`  self-update ${FROM} -> ${TO}   ${f.self_update_s} s (${batches}; rollout start to succeeded)`);
  out(`  machine load average (1 min) ${f.enroll_loadavg_1m} at the start (${os.cpus().length} CPUs)`);
}
