/**
 * Medians, ratios and the two outputs of the Ansible comparison: a table for people and one JSON
 * line (always the last line of stdout) for scripts. ratio = Ansible median / Convoy median, both
 * wall times of the operator command from spawn to exit.
 */
import { median } from '../proc';
import type { AnsibleConfig, Workload } from './options';
import { TASKS_PER_HOST } from './workloads';

/** Raw wall times of one (size, workload), ms per run. */
export interface Samples {
  readonly size: number;
  readonly workload: Workload;
  readonly convoyMs: number[];
  /** staged only: each rollout's createdAt..finishedAt. */
  readonly convoyRolloutMs: number[];
  /** noop only: the slowest agent's round trip of each run. */
  readonly convoyMaxRttMs: number[];
  /** Agents found offline (and waited for, untimed) before each Convoy run. */
  readonly convoyOfflineBefore: number[];
  /** `convoy --version` spawn to exit on this fleet (CLI start-up), median of 3. */
  readonly convoyStartupMs: number;
  readonly ansibleMs: Partial<Record<AnsibleConfig, number[]>>;
}

export interface Row {
  readonly size: number;
  readonly workload: Workload;
  readonly convoy_s: number;
  readonly convoy_rollout_s?: number;
  readonly convoy_cli_startup_s: number;
  readonly convoy_ping_max_rtt_ms?: number;
  /** Agents found offline before each Convoy run (waited for, untimed), one entry per run. */
  readonly convoy_offline_before_runs: readonly number[];
  readonly ansible_default_s?: number;
  readonly ansible_tuned_s?: number;
  readonly ratio_default?: number;
  readonly ratio_tuned?: number;
  readonly convoy_ms_per_host_task: number;
  readonly ansible_default_ms_per_host_task?: number;
  readonly ansible_tuned_ms_per_host_task?: number;
  readonly runs: number;
}

/** The targets at N = 100: Ansible-tuned / Convoy. */
const TARGETS: Partial<Record<Workload, number>> = { noop: 200, check: 100 };
const JSON_NAME: Record<Workload, string> = { noop: 'noop', check: 'check', staged: 'staged_upgrade' };

const r3 = (n: number): number => Math.round(n * 1000) / 1000;
const r1 = (n: number): number => Math.round(n * 10) / 10;

export function rowOf(s: Samples): Row {
  const convoy = median(s.convoyMs);
  const hostTasks = s.size * TASKS_PER_HOST[s.workload];
  const side = (c: AnsibleConfig): Partial<Row> => {
    const ms = s.ansibleMs[c];
    if (ms === undefined || ms.length === 0) return {};
    const m = median(ms);
    return {
      [`ansible_${c}_s`]: r3(m / 1000),
      [`ratio_${c}`]: r1(m / convoy),
      [`ansible_${c}_ms_per_host_task`]: r1(m / hostTasks),
    };
  };
  return {
    size: s.size,
    workload: s.workload,
    convoy_s: r3(convoy / 1000),
    ...(s.convoyRolloutMs.length > 0 ? { convoy_rollout_s: r3(median(s.convoyRolloutMs) / 1000) } : {}),
    convoy_cli_startup_s: r3(s.convoyStartupMs / 1000),
    convoy_offline_before_runs: s.convoyOfflineBefore,
    ...(s.convoyMaxRttMs.length > 0 ? { convoy_ping_max_rtt_ms: r1(median(s.convoyMaxRttMs)) } : {}),
    ...side('default'),
    ...side('tuned'),
    convoy_ms_per_host_task: r3(convoy / hostTasks),
    runs: s.convoyMs.length,
  };
}

export function printTable(rows: readonly Row[]): void {
  const head = [
    'N',
    'workload',
    'convoy s',
    'ansible default s',
    'ansible tuned s',
    'default/convoy',
    'tuned/convoy',
    'convoy ms/host-task',
    'tuned ms/host-task',
  ];
  const cell = (v: number | undefined, suffix = ''): string => (v === undefined ? '-' : `${v}${suffix}`);
  const lines = rows.map((r) => [
    String(r.size),
    r.workload,
    cell(r.convoy_s),
    cell(r.ansible_default_s),
    cell(r.ansible_tuned_s),
    cell(r.ratio_default, 'x'),
    cell(r.ratio_tuned, 'x'),
    cell(r.convoy_ms_per_host_task),
    cell(r.ansible_tuned_ms_per_host_task),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cols: readonly string[]): string =>
    `| ${cols.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(
    `${[fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n')}\n`,
  );
}

/** The final JSON object: `<workload>_ratio_n<N>` (tuned/convoy) for every size, the medians, targets. */
export function summaryJson(rows: readonly Row[], runs: number, loadAvg: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    bench: 'ansible',
    noop_ratio_n100: null,
    check_ratio_n100: null,
    staged_upgrade_ratio_n100: null,
  };
  for (const r of rows) out[`${JSON_NAME[r.workload]}_ratio_n${r.size}`] = r.ratio_tuned ?? null;
  const targets: Record<string, { target: number; met: boolean | null }> = {};
  for (const [w, target] of Object.entries(TARGETS) as [Workload, number][]) {
    const ratio = out[`${JSON_NAME[w]}_ratio_n100`];
    targets[`${JSON_NAME[w]}_n100`] = { target, met: typeof ratio === 'number' ? ratio >= target : null };
  }
  return { ...out, targets, runs, load_avg_1m_at_start: r1(loadAvg), medians: rows };
}
