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
import { runAgentPhase, runVars, type AgentExit } from './agent-phase';
import { appliesTo, stepsFor } from '../../../agent/phase/runner';
import type { Recipe } from '../../../shared/recipe/types';
import type { Snapshots } from './snapshot';
import type { SweepHost } from './sweep-host';

export const ROLLOUT_ID = 'sweep';

/** `phase:ok|FAILED` per run after the crash, for a readable failure. */
export interface CaseTrace {
  readonly crashed: AgentExit;
  readonly journalAtCrash: JournalEntry | null;
  readonly runs: string[];
  /**
   * How the rollout ended for this host; `held`: the agent refused the rollback past the recipe's
   * point of no return, and the controller holds the host for an operator.
   */
  readonly ending: 'upgraded' | 'rolled-back' | 'rollback-failed' | 'stopped' | 'held';
  /** The agent's words when it refused the rollback (backup id, manual procedure), else ''. */
  readonly held: string;
}

/** The step before the recipe's point of no return in upgrade, or null when it has none. */
export function stepBeforePoint(recipe: Recipe): string | null | undefined {
  const i = recipe.phases.upgrade.findIndex((s) => s.pointOfNoReturn === true);
  if (i < 0) return undefined;
  return i === 0 ? null : (recipe.phases.upgrade[i - 1]?.id ?? null);
}

/** The snapshot a case starts from: the host just before the phase's first run in the rollout. */
export function startLabel(recipe: Recipe, phase: SweepCase['phase']): string {
  // A rollback is sent when the upgrade's verify failed: the host as verify(-u) left it; with a
  // point of no return, before the upgrade (prepareRollback runs it up to the point).
  if (phase === 'rollback') return stepBeforePoint(recipe) === undefined ? '3' : '1';
  const i = rolloutPlan(recipe, ROLLOUT_ID).findIndex((r) => r.phase === phase);
  if (i < 0) throw new Error(`the rollout never runs ${phase}`);
  return String(i);
}

/**
 * The first run of PHASE in the rollout whose step STEPID applies on this host (a `when` on roles,
 * the installed version or `onTarget` may leave it out of a run: BlueMind's health check runs only
 * in the final verify), and the snapshot taken just before it. A step that applies in no run is a
 * sweep host that cannot exercise it: an error, never a silent pass.
 */
export function firstRunWith(
  recipe: Recipe,
  host: SweepHost,
  phase: Exclude<SweepCase['phase'], 'rollback'>,
  stepId: string,
): { readonly run: PlannedRun; readonly label: string } {
  const step = stepsFor(recipe, phase).find((s) => s.id === stepId);
  if (step === undefined) throw new Error(`${recipe.name} has no ${phase} step ${stepId}`);
  const plan = rolloutPlan(recipe, ROLLOUT_ID);
  const i = plan.findIndex(
    (r) => r.phase === phase && appliesTo(step, { roles: host.agent.roles, vars: runVars(host.agent, r) }),
  );
  const run = plan[i];
  if (run === undefined)
    throw new Error(`${recipe.name} ${phase} step ${stepId} applies in no run of this sweep host's rollout`);
  return { run, label: String(i) };
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

/**
 * For a recipe with a point of no return, a rollback can only run before it (the agent refuses one
 * after): the upgrade dies right after the step before the point, as a controller would then
 * roll the host back.
 */
async function prepareRollback(recipe: Recipe, host: SweepHost): Promise<void> {
  const before = stepBeforePoint(recipe);
  if (before === undefined || before === null) return;
  const upgrade = rolloutPlan(recipe, ROLLOUT_ID).find((r) => r.phase === 'upgrade');
  if (upgrade === undefined) throw new Error('the rollout never upgrades');
  const exit = await runAgentPhase(host.agent, upgrade, `after:${before}`);
  if (exit.signal !== 'SIGKILL') throw new Error(`upgrade up to the point did not stop: ${exit.stderr}`);
}

export async function runCase(
  recipe: Recipe,
  host: SweepHost,
  snaps: Snapshots,
  c: SweepCase,
): Promise<CaseTrace> {
  const chosen =
    c.phase === 'rollback'
      ? { run: rollbackRun(ROLLOUT_ID), label: startLabel(recipe, 'rollback') }
      : firstRunWith(recipe, host, c.phase, c.stepId);
  snaps.restore(chosen.label);
  host.reset();
  if (c.phase === 'rollback') await prepareRollback(recipe, host);
  const plan = rolloutPlan(recipe, ROLLOUT_ID);
  const first = chosen.run;
  const armed = `${c.boundary}:${c.stepId}`;
  let crashed = await runAgentPhase(host.agent, first, armed);
  // A supervised agent that exits 75 is started again with the same environment: still armed.
  for (let n = 0; crashed.code === RESTART_EXIT_CODE && n < 3; n += 1)
    crashed = await runAgentPhase(host.agent, first, armed);
  const journalAtCrash = readJournal(host.agent.stateDir);
  const rest = await liveOn(
    host,
    c.phase === 'rollback'
      ? []
      : plan.slice(plan.findIndex((r) => r.runId === first.runId && r.phase === first.phase)),
  );
  return { crashed, journalAtCrash, ...rest };
}

/**
 * The rest of a rollout as the controller lives it: each run in turn (an agent asking for a
 * restart is sent the phase again), the rollback when a run that rolls back fails; an empty plan
 * sends the rollback at once.
 */
async function liveOn(
  host: SweepHost,
  plan: readonly PlannedRun[],
): Promise<Pick<CaseTrace, 'runs' | 'ending' | 'held'>> {
  const runs: string[] = [];
  let last = '';
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
    last = exit.stdout;
    return exit.code === 0;
  };
  const rollBack = async (): Promise<Pick<CaseTrace, 'runs' | 'ending' | 'held'>> => {
    if (await send(rollbackRun(ROLLOUT_ID))) return { runs, ending: 'rolled-back', held: '' };
    const held = /^PAST_POINT_OF_NO_RETURN: [\s\S]*$/m.exec(last)?.[0] ?? '';
    return { runs, ending: held === '' ? 'rollback-failed' : 'held', held };
  };
  if (plan.length === 0) return rollBack();
  for (const run of plan) {
    if (await send(run)) continue;
    if (run.onFailure === 'rollback') return rollBack();
    return { runs, ending: 'stopped', held: '' };
  }
  return { runs, ending: 'upgraded', held: '' };
}

/** One rollback-faults case: STEP of PHASE does its work and reports failure (`fail:STEP`). */
export interface FaultTrace {
  readonly first: AgentExit;
  readonly runs: string[];
  readonly ending: CaseTrace['ending'];
  readonly held: string;
}

/**
 * Runs a rollout from the snapshot before PHASE with a failure injected at STEP (it does its work,
 * then reports failure), then lives on as the controller would: the rollback after a failed
 * upgrade or verify, a stop after a failed download.
 */
export async function runFaultCase(
  recipe: Recipe,
  host: SweepHost,
  snaps: Snapshots,
  phase: 'download' | 'upgrade' | 'verify',
  stepId: string,
): Promise<FaultTrace> {
  const { run: first, label } = firstRunWith(recipe, host, phase, stepId);
  snaps.restore(label);
  host.reset();
  const exit = await runAgentPhase(host.agent, first, `fail:${stepId}`);
  if (exit.code !== 1)
    throw new Error(`${phase} with fail:${stepId} exited ${exit.code}: ${exit.stdout}${exit.stderr}`);
  const runs = [`${phase}(${first.runId}):FAILED at ${stepId}`];
  if (first.onFailure !== 'rollback') return { first: exit, runs, ending: 'stopped', held: '' };
  const rest = await liveOn(host, []);
  return { first: exit, runs: [...runs, ...rest.runs], ending: rest.ending, held: rest.held };
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
