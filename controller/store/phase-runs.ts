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
