/**
 * What the runner checks before a phase's first step, so that a phase refused here changes
 * nothing on the host:
 *
 * - the point of no return: a rollback after the upgrade started a step the recipe marks
 *   `pointOfNoReturn` is refused (PAST_POINT_OF_NO_RETURN). The vendor gives no way back there
 *   (a Cells binary that migrated its data refuses to run the old binary on it), so an automatic
 *   rollback would leave a host that runs nothing; the report names the step, the newest backup
 *   and the recipe's manual procedure, and the controller holds the host for an operator;
 * - host facts: each step whose executor has a `preflight` (service: no systemd and no command)
 *   is asked, placeholders filled, whether it can run here.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { interpolateStep } from '../../shared/recipe/interpolate';
import { fsyncDir } from '../seq-journal';
import type { Recipe, Step } from '../../shared/recipe/types';
import type { StepExecutor, StepResult } from '../steps/step';

/** Why a rollback was refused, as the phase report carries it. */
export interface PointOfNoReturn {
  /** The step marked `pointOfNoReturn` that the upgrade (or finalize) completed. */
  readonly stepId: string;
  /** The newest backup the run's steps took before it (null when none did). */
  readonly backupId: string | null;
  /** The recipe's `manualRecovery`. */
  readonly manualRecovery: string;
}

/** The file where the runner records that it started a point-of-no-return step. */
export const POINT_OF_NO_RETURN_FILE = 'point-of-no-return.json';

interface PointMark {
  readonly runId: string;
  readonly stepId: string;
}

/**
 * Records, durably and before the step starts, that `stepId` of `runId` is being run: a step that
 * failed or was interrupted may still have done what cannot be undone (a start that migrated the
 * data and then died), so the point counts as passed from its start, not its success.
 */
export function markPointOfNoReturn(stateDir: string, mark: PointMark): void {
  const file = path.join(stateDir, POINT_OF_NO_RETURN_FILE);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(mark));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(stateDir);
}

function readMark(stateDir: string): PointMark | undefined {
  try {
    const mark = JSON.parse(readFileSync(path.join(stateDir, POINT_OF_NO_RETURN_FILE), 'utf8')) as unknown;
    if (typeof mark !== 'object' || mark === null) return undefined;
    const { runId, stepId } = mark as Record<string, unknown>;
    return typeof runId === 'string' && typeof stepId === 'string' ? { runId, stepId } : undefined;
  } catch {
    return undefined; // no mark: no point of no return started on this host
  }
}

/**
 * The point of no return a run the rollback belongs to (`runs`: its own id and `readRuns`) has
 * started, or undefined when the rollback may run. `results`: those runs' completed steps, for
 * the newest backup taken before the point.
 */
export function pastPointOfNoReturn(
  recipe: Recipe,
  stateDir: string,
  runs: readonly string[],
  results: ReadonlyMap<string, StepResult>,
): PointOfNoReturn | undefined {
  const mark = readMark(stateDir);
  if (mark === undefined || !runs.includes(mark.runId)) return undefined;
  const passed = [...recipe.phases.upgrade, ...(recipe.phases.finalize?.steps ?? [])];
  const point = passed.find((s) => s.id === mark.stepId && s.pointOfNoReturn === true);
  if (point === undefined) return undefined;
  let backupId: string | null = null;
  for (const step of passed.slice(0, passed.indexOf(point))) {
    const r = results.get(step.id);
    if (r?.ok === true && r.backupId !== undefined) backupId = r.backupId;
  }
  return { stepId: point.id, backupId, manualRecovery: recipe.manualRecovery ?? '' };
}

/** The first step (of those that apply to this host) that cannot run here, and why; or undefined. */
export function preflight(
  steps: readonly Step[],
  vars: Readonly<Record<string, string>>,
  registry: ReadonlyMap<string, StepExecutor>,
): { readonly step: Step; readonly result: StepResult } | undefined {
  for (const raw of steps) {
    const executor = registry.get(raw.type);
    if (executor?.preflight === undefined) continue;
    let step: Step;
    try {
      step = interpolateStep(raw, vars);
    } catch {
      continue; // the runner reports a missing value when it reaches the step
    }
    const problem = executor.preflight(step);
    if (problem !== undefined)
      return { step, result: { ok: false, error: problem, durationMs: 0, outputTail: '' } };
  }
  return undefined;
}
