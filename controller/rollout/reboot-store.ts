/** Reading a reboot a phase run reported (reboot-wait.ts decides what it means). */
import { markPhaseRunLost } from '../store/phase-runs';
import type { Sqlite } from '../store/sqlite';
import type { RebootMark } from './reboot-wait';

/**
 * The `rebooting` report of phase run `phaseRunId`, if its agent sent one and no result replaced
 * it, and since when: the run's end (its answer lost as the host went down). A run with no end
 * yet (the controller that sent it died first) ends as lost now, and the wait counts from now:
 * better a host waited for too long than one rolled back in the middle of a good boot.
 */
export async function rebootMarkOf(
  db: Sqlite,
  phaseRunId: string,
  nowMs: number,
): Promise<RebootMark | undefined> {
  const rows = await db.all<{ step_id: string; finished_at: number | null }>(
    `SELECT sr.step_id, pr.finished_at FROM step_results sr
       JOIN phase_runs pr ON pr.id = sr.phase_run_id
      WHERE sr.phase_run_id = ? AND sr.status = 'rebooting' LIMIT 1`,
    [phaseRunId],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  if (row.finished_at !== null) return { stepId: row.step_id, sinceMs: row.finished_at };
  await db.write((tx) => markPhaseRunLost(tx, phaseRunId, nowMs));
  return { stepId: row.step_id, sinceMs: nowMs };
}
