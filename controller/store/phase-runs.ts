/** Phase runs and their step results: recorded before the command leaves, completed when it answers. */
import type { WireStepReport } from '../../proto/wire';
import { appendEvent } from './events';
import type { Sqlite, Tx } from './sqlite';

export interface NewPhaseRun {
  /** This phase command. */
  readonly id: string;
  /** The agent's journal run, shared by the phases of one rollout. */
  readonly runId: string;
  readonly hostId: string;
  readonly recipe: string;
  readonly digest: string;
  readonly phase: string;
  readonly nowMs: number;
  /** Set when a rollout sent it: the event is then found by `convoy events --rollout`. */
  readonly rolloutId?: string;
}

/** Write-ahead: the intent to run a phase is durable before anything is sent. */
export async function recordPhaseRunStart(db: Sqlite, run: NewPhaseRun): Promise<void> {
  await db.write((tx) => insertPhaseRun(tx, run));
}

/** The same, inside the caller's transaction (a rollout writes its own transition with it). */
export async function insertPhaseRun(tx: Tx, run: NewPhaseRun, actor = 'operator'): Promise<void> {
  {
    await tx.run(
      `INSERT INTO phase_runs (id, run_id, host_id, recipe, digest, phase, state, started_at)
         VALUES (?, ?, ?, ?, ?, ?, 'sent', ?)`,
      [run.id, run.runId, run.hostId, run.recipe, run.digest, run.phase, run.nowMs],
    );
    await appendEvent(tx, {
      at: run.nowMs,
      actor,
      kind: 'phase.sent',
      hostId: run.hostId,
      data: {
        phaseRunId: run.id,
        runId: run.runId,
        recipe: run.recipe,
        phase: run.phase,
        digest: run.digest,
        ...(run.rolloutId === undefined ? {} : { rolloutId: run.rolloutId }),
      },
    });
  }
}

export interface PhaseRunEnd {
  readonly id: string;
  readonly hostId: string;
  readonly state: 'succeeded' | 'failed' | 'lost';
  readonly seq: number;
  readonly resumedJson: string | null;
  readonly steps: readonly WireStepReport[];
  readonly nowMs: number;
  readonly rolloutId?: string;
}

export async function recordPhaseRunEnd(db: Sqlite, end: PhaseRunEnd): Promise<void> {
  await db.write(async (tx) => {
    await tx.run('UPDATE phase_runs SET state = ?, seq = ?, resumed_json = ?, finished_at = ? WHERE id = ?', [
      end.state,
      end.seq,
      end.resumedJson,
      end.nowMs,
      end.id,
    ]);
    for (const s of end.steps) await insertStepResult(tx, end.id, s);
    await appendEvent(tx, {
      at: end.nowMs,
      actor: `agent:${end.hostId}`,
      kind: `phase.${end.state}`,
      hostId: end.hostId,
      data: {
        phaseRunId: end.id,
        seq: end.seq,
        ...(end.rolloutId === undefined ? {} : { rolloutId: end.rolloutId }),
      },
    });
  });
}

/** A step result streamed while its phase still runs: durable at once, replaced by the final one. */
export async function recordStepResult(db: Sqlite, phaseRunId: string, step: WireStepReport): Promise<void> {
  await db.write((tx) => insertStepResult(tx, phaseRunId, step));
}

async function insertStepResult(tx: Tx, phaseRunId: string, s: WireStepReport): Promise<void> {
  await tx.run(
    `INSERT OR REPLACE INTO step_results (phase_run_id, step_id, type, status, attempts, ok, exit_code, duration_ms, output_tail,
           backup_id, versions_json, error_code, error_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      phaseRunId,
      s.stepId,
      s.type,
      s.status,
      s.attempts,
      s.status === 'ran' ? (s.ok ? 1 : 0) : null,
      s.exitCode < 0 ? null : s.exitCode,
      s.durationMs,
      s.outputTail,
      s.backupId || null,
      JSON.stringify(s.versions),
      s.errorCode || null,
      s.errorMessage || null,
    ],
  );
}

/**
 * At start: phase runs still `sent` were cut off by the previous controller's end. Those of an
 * unfinished rollout are left for its reconciliation (their run ids start with the rollout id);
 * the others (`convoy phase run`, plans) have nobody left to wait for them and become `lost`.
 */
export async function markOrphanedPhaseRunsLost(db: Sqlite, nowMs: number): Promise<number> {
  return db.write(async (tx) => {
    const result = await tx.run(
      `UPDATE phase_runs SET state = 'lost', finished_at = ?
        WHERE state = 'sent'
          AND NOT EXISTS (SELECT 1 FROM rollouts r
                           WHERE r.state NOT IN ('succeeded', 'aborted', 'rolled-back', 'failed')
                             AND phase_runs.run_id LIKE r.id || '-%')`,
      [nowMs],
    );
    if (result.changes > 0)
      await appendEvent(tx, {
        at: nowMs,
        actor: 'controller',
        kind: 'phase.orphans-lost',
        data: { count: result.changes, reason: 'the controller restarted while they were in flight' },
      });
    return result.changes;
  });
}

/** The mean duration of past successful runs of each of these phases of `recipe`. */
export function meanPhaseDurations(
  db: Tx,
  recipe: string,
  phases: readonly string[],
): Promise<{ phase: string; mean: number | null }[]> {
  return db.all<{ phase: string; mean: number | null }>(
    `SELECT phase, AVG(finished_at - started_at) AS mean FROM phase_runs
      WHERE recipe = ? AND state = 'succeeded' AND finished_at IS NOT NULL
        AND phase IN (SELECT value FROM json_each(?)) GROUP BY phase`,
    [recipe, JSON.stringify(phases)],
  );
}

/** A send whose answer never came ends as lost when a new send takes over (reconcile). */
export async function markPhaseRunLost(tx: Tx, id: string, nowMs: number): Promise<void> {
  await tx.run("UPDATE phase_runs SET state = 'lost', finished_at = ? WHERE id = ? AND state = 'sent'", [
    nowMs,
    id,
  ]);
}

/** The newest phase run of `phase` in the agent run `runId` on `hostId`. */
export async function latestPhaseRunId(
  db: Tx,
  q: { runId: string; phase: string; hostId: string },
): Promise<string | undefined> {
  const row = await db.get<{ id: string }>(
    'SELECT id FROM phase_runs WHERE run_id = ? AND phase = ? AND host_id = ? ORDER BY started_at DESC LIMIT 1',
    [q.runId, q.phase, q.hostId],
  );
  return row?.id;
}

/**
 * Step ids of `phase` the store already has a result for, for the send `phaseRunId`: recorded for
 * this send, or ran on this host in an earlier send of the same run and phase (a step done before
 * is not a second run).
 */
export async function knownStepIds(db: Tx, phaseRunId: string, phase: string): Promise<Set<string>> {
  const rows = await db.all<{ step_id: string }>(
    `SELECT sr.step_id FROM step_results sr JOIN phase_runs pr ON pr.id = sr.phase_run_id
      WHERE (pr.run_id, pr.host_id) = (SELECT run_id, host_id FROM phase_runs WHERE id = ?) AND pr.phase = ?
        AND (sr.phase_run_id = ? OR sr.status = 'ran')`,
    [phaseRunId, phase, phaseRunId],
  );
  return new Set(rows.map((row) => row.step_id));
}

/**
 * The versions the steps of this phase reported (streamed as each ended), over every send of the
 * phase in its run: what a phase settled from the agent's journal read back (its report was lost).
 */
export async function reportedStepVersions(db: Tx, phaseRunId: string, phase: string): Promise<string[]> {
  const rows = await db.all<{ versions_json: string }>(
    `SELECT sr.versions_json FROM step_results sr JOIN phase_runs pr ON pr.id = sr.phase_run_id
      WHERE (pr.run_id, pr.host_id) = (SELECT run_id, host_id FROM phase_runs WHERE id = ?) AND pr.phase = ?
        AND sr.status = 'ran' AND sr.ok = 1`,
    [phaseRunId, phase],
  );
  return rows.flatMap((row) => JSON.parse(row.versions_json) as string[]);
}
