/**
 * "No busy loop", measured from outside: the CPU time processes spend and the rows the store
 * gains over a quiet window.
 */
import { readFileSync } from 'node:fs';
import type { ChaosFleet } from './chaos-fleet';

/** CPU time (user + system) a process used so far, ms (Linux /proc, 100 ticks per second). */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) throw new Error('no such process');
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export interface Activity {
  /** CPU ms per process name. */
  readonly cpu: Record<string, number>;
  /** Rows per store table. */
  readonly rows: Record<string, number>;
}

const TABLES = ['events', 'phase_runs', 'step_results'] as const;

export async function activity(chaos: ChaosFleet): Promise<Activity> {
  const cpu: Record<string, number> = { controller: cpuMs(chaos.fleet.controller?.pid) };
  for (const h of chaos.hosts) cpu[h.name] = cpuMs(h.agent?.pid);
  const rows: Record<string, number> = {};
  for (const t of TABLES) {
    const [row] = await chaos.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t}`);
    rows[t] = row?.n ?? -1;
  }
  return { cpu, rows };
}

/** What each process and table gained from `a` to `b`. */
export function growth(a: Activity, b: Activity): Activity {
  const diff = (x: Record<string, number>, y: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.keys(x).map((k) => [k, (y[k] ?? 0) - (x[k] ?? 0)]));
  return { cpu: diff(a.cpu, b.cpu), rows: diff(a.rows, b.rows) };
}
