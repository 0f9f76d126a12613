/**
 * What the sweep covers, derived from the compiled recipes so that a new step or a new recipe is
 * swept without touching the test: one case per step boundary (`before` and `after` every step of
 * every phase a rollout runs), and the phase runs a controller would send, with its run ids.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { stepsFor } from '../../../agent/phase/runner';
import { conditionHolds } from '../../../shared/recipe/step-condition';
import { compileRecipe } from '../../../shared/recipe/compile';
import type { PhaseName, Recipe, Step } from '../../../shared/recipe/types';
import { ROOT } from '../../helpers/processes';

/** The phases a rollout sends to a host (check belongs to planning and changes nothing). */
export const SWEPT_PHASES = ['download', 'upgrade', 'finalize', 'verify', 'rollback'] as const;
export type SweptPhase = (typeof SWEPT_PHASES)[number];

export interface SweepCase {
  readonly recipe: string;
  readonly phase: SweptPhase;
  readonly boundary: 'before' | 'after';
  readonly stepId: string;
}

export const RECIPES_DIR = path.join(ROOT, 'recipes');

export function builtInRecipeNames(): string[] {
  return readdirSync(RECIPES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

export function recipeFile(name: string): string {
  return path.join(RECIPES_DIR, `${name}.yaml`);
}

export function compiledRecipe(name: string): Recipe {
  const file = recipeFile(name);
  return compileRecipe(readFileSync(file, 'utf8'), file);
}

/**
 * The roles of each recipe's sweep host (app-hosts.ts, package-hosts.ts; none when not listed). A
 * step whose `when` leaves that host out never runs there, so it has no boundary to kill at:
 * ownCloud's RPM system update (`role: redhat`) is the dnf step type the kcm and bluemind-redhat
 * hosts sweep.
 */
export const SWEEP_HOST_ROLES: Readonly<Record<string, readonly string[]>> = {
  bluemind: ['core'],
  'bluemind-redhat': ['core'],
};

/**
 * Whether a step runs on a host with these roles, its version conditions aside: those decide in
 * which run of the rollout it applies (driver.ts firstRunWith), not whether it is swept.
 */
export function runsWithRoles(step: Step, roles: readonly string[]): boolean {
  return conditionHolds(
    {
      ...(step.when?.role ? { role: step.when.role } : {}),
      ...(step.when?.notRole ? { notRole: step.when.notRole } : {}),
    },
    { roles },
  );
}

export function sweptSteps(recipe: Recipe): { phase: SweptPhase; stepId: string }[] {
  const roles = SWEEP_HOST_ROLES[recipe.name] ?? [];
  return SWEPT_PHASES.flatMap((phase) =>
    stepsFor(recipe, phase)
      .filter((s) => runsWithRoles(s, roles))
      .map((s) => ({ phase, stepId: s.id })),
  );
}

export function sweepCases(name: string): SweepCase[] {
  return sweptSteps(compiledRecipe(name)).flatMap(({ phase, stepId }) =>
    (['before', 'after'] as const).map((boundary) => ({ recipe: name, phase, boundary, stepId })),
  );
}

/** One phase run as the controller sends it (controller/rollout/engine.ts, model.ts agentRunId). */
export interface PlannedRun {
  readonly phase: PhaseName;
  readonly runId: string;
  readonly readRuns: readonly string[];
  /** What the controller does when this run fails: roll the host back, or stop and report. */
  readonly onFailure: 'rollback' | 'stop';
  /**
   * The rollout's final verify: the controller then sends `{{installed}}` as the target (the host's
   * own verify passed), which `when.onTarget` steps read.
   */
  readonly onTarget?: boolean;
}

/**
 * A host's rollout: download (`-s`), upgrade and verify (`-u`, a failure of either rolls back
 * under `-u`), finalize (`-f`) when the recipe has one, the final verify (`-v`).
 */
export function rolloutPlan(recipe: Recipe, rolloutId: string): PlannedRun[] {
  const ids = ['s', 'u', 'f', 'v'].map((k) => `${rolloutId}-${k}`);
  const run = (phase: PhaseName, k: string, onFailure: PlannedRun['onFailure']): PlannedRun => {
    const runId = `${rolloutId}-${k}`;
    return { phase, runId, readRuns: ids.filter((id) => id !== runId), onFailure };
  };
  return [
    run('download', 's', 'stop'),
    run('upgrade', 'u', 'rollback'),
    run('verify', 'u', 'rollback'),
    ...(recipe.phases.finalize === undefined ? [] : [run('finalize', 'f', 'stop')]),
    { ...run('verify', 'v', 'stop'), onTarget: true },
  ];
}

export function rollbackRun(rolloutId: string): PlannedRun {
  const ids = ['s', 'u', 'f', 'v'].map((k) => `${rolloutId}-${k}`);
  const runId = `${rolloutId}-u`;
  return { phase: 'rollback', runId, readRuns: ids.filter((id) => id !== runId), onFailure: 'stop' };
}
