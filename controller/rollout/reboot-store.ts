/** Reading a reboot a phase run reported (reboot-wait.ts decides what it means). */
import type { Tx } from '../store/sqlite';
import type { RebootMark } from './reboot-wait';

/**
 * The `rebooting` report of phase run `phaseRunId`, if its agent sent one and no result replaced
 * it; since when: the run's end (its answer lost as the host went down), else its start.
 */
export async function rebootMarkOf(db: Tx, phaseRunId: string): Promise<RebootMark | undefined> {
  const rows = await db.all<{ step_id: string; started_at: number; finished_at: number | null }>(
    `SELECT sr.step_id, pr.started_at, pr.finished_at FROM step_results sr
       JOIN phase_runs pr ON pr.id = sr.phase_run_id
      WHERE sr.phase_run_id = ? AND sr.status = 'rebooting' LIMIT 1`,
    [phaseRunId],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return { stepId: row.step_id, sinceMs: row.finished_at ?? row.started_at };
}
