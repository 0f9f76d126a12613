/**
 * One sweep case, as a controller would live it: the host is put back to the state before the
 * phase, the phase runs with the failpoint armed and must die by SIGKILL at that boundary; then
 * the same phase is sent again with the same run id (the journal and the resume table decide),
 * then the rest of the rollout, and the rollback under the upgrade's run id when a phase that
 * rolls back fails.
 */
import { readFileSync } from 'node:fs';
import { RESTART_EXIT_CODE } from '../../../agent/install/systemd-unit';
import path from 'node:path';
import { PHASE_JOURNAL_FILE, type JournalEntry } from '../../../agent/phase/journal';
import { rollbackRun, rolloutPlan, type PlannedRun, type SweepCase } from './cases';
import { runAgentPhase, type AgentExit } from './agent-phase';
import type { Recipe } from '../../../shared/recipe/types';
import type { Snapshots } from './snapshot';
import type { SweepHost } from './sweep-host';

export const ROLLOUT_ID = 'sweep';

/** `phase:ok|FAILED` per run after the crash, for a readable failure. */
export interface CaseTrace {
  readonly crashed: AgentExit;
  readonly journalAtCrash: JournalEntry | null;
  readonly runs: string[];
  /** How the rollout ended for this host. */
  readonly ending: 'upgraded' | 'rolled-back' | 'rollback-failed' | 'stopped';
}

/** The snapshot a case starts from: the host just before the phase's first run in the rollout. */
export function startLabel(recipe: Recipe, phase: SweepCase['phase']): string {
  // A rollback is sent when the upgrade's verify failed: the host as verify(-u) left it.
  if (phase === 'rollback') return '3';
  const i = rolloutPlan(recipe, ROLLOUT_ID).findIndex((r) => r.phase === phase);
  if (i < 0) throw new Error(`the rollout never runs ${phase}`);
  return String(i);
}

/** Runs the whole rollout once, without faults, snapshotting before each run; throws on any failure. */
export async function goldenRun(recipe: Recipe, host: SweepHost, snaps: Snapshots): Promise<void> {
  const plan = rolloutPlan(recipe, ROLLOUT_ID);
  for (const [i, run] of plan.entries()) {
    snaps.take(String(i));
    let exit = await runAgentPhase(host.agent, run);
    if (exit.code === RESTART_EXIT_CODE) exit = await runAgentPhase(host.agent, run);
    if (exit.code !== 0)
      throw new Error(`golden ${run.phase} exited ${exit.code}: ${exit.stdout}${exit.stderr}`);
  }
}

export async function runCase(
  recipe: Recipe,
  host: SweepHost,
  snaps: Snapshots,
  c: SweepCase,
): Promise<CaseTrace> {
  snaps.restore(startLabel(recipe, c.phase));
  host.reset();
  const plan = rolloutPlan(recipe, ROLLOUT_ID);
  const first = c.phase === 'rollback' ? rollbackRun(ROLLOUT_ID) : plan.find((r) => r.phase === c.phase);
  if (first === undefined) throw new Error(`no run for ${c.phase}`);
  const armed = `${c.boundary}:${c.stepId}`;
  let crashed = await runAgentPhase(host.agent, first, armed);
  // A supervised agent that exits 75 is started again with the same environment: still armed.
  for (let n = 0; crashed.code === RESTART_EXIT_CODE && n < 3; n += 1)
    crashed = await runAgentPhase(host.agent, first, armed);
  const journalAtCrash = readJournal(host.agent.stateDir);
  const runs: string[] = [];
  const send = async (run: PlannedRun): Promise<boolean> => {
    let exit = await runAgentPhase(host.agent, run);
    // Exit 75: the agent asked its supervisor to start the new bundle; the controller resends.
    for (let n = 0; exit.code === RESTART_EXIT_CODE && n < 3; n += 1) {
      runs.push(`${run.phase}(${run.runId}):restart`);
      exit = await runAgentPhase(host.agent, run);
    }
    if (exit.code !== 0 && exit.code !== 1)
      throw new Error(`${run.phase} exited ${exit.code} ${exit.signal ?? ''}: ${exit.stdout}${exit.stderr}`);
    runs.push(`${run.phase}(${run.runId}):${exit.code === 0 ? 'ok' : 'FAILED'}${resumedLine(exit.stdout)}`);
    return exit.code === 0;
  };
  const rollBack = async (): Promise<CaseTrace['ending']> =>
    (await send(rollbackRun(ROLLOUT_ID))) ? 'rolled-back' : 'rollback-failed';

  if (c.phase === 'rollback') return { crashed, journalAtCrash, runs, ending: await rollBack() };
  for (const run of plan.slice(plan.indexOf(first))) {
    if (await send(run)) continue;
    const ending = run.onFailure === 'rollback' ? await rollBack() : 'stopped';
    return { crashed, journalAtCrash, runs, ending };
  }
  return { crashed, journalAtCrash, runs, ending: 'upgraded' };
}

function resumedLine(stdout: string): string {
  const m = /^resumed: (.*)$/m.exec(stdout);
  return m === null ? '' : ` [resumed: ${m[1]}]`;
}

export function readJournal(stateDir: string): JournalEntry | null {
  try {
    return JSON.parse(readFileSync(path.join(stateDir, PHASE_JOURNAL_FILE), 'utf8')) as JournalEntry;
  } catch {
    return null;
  }
}
