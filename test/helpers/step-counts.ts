/**
 * How often each recipe step ran on each host during one rollout, as the controller's store
 * records the agents' step results: the once-only checks of the kill -9 suites read it.
 */
import { queryStore } from './store-query';

export interface StepCount {
  hostId: string;
  stepId: string;
  n: number;
}

/** Step results reported with status `ran`, per host and step, for every phase run of `rolloutId`. */
export function ranSteps(stateDir: string, rolloutId: string): Promise<StepCount[]> {
  return queryStore<StepCount>(
    stateDir,
    `SELECT pr.host_id AS hostId, sr.step_id AS stepId, COUNT(*) AS n
       FROM step_results sr JOIN phase_runs pr ON pr.id = sr.phase_run_id
      WHERE pr.run_id LIKE ? AND sr.status = 'ran'
      GROUP BY pr.host_id, sr.step_id`,
    [`${rolloutId}-%`],
  );
}

/** Runs of `stepId`, on one host or (without `hostId`) on all of them. */
export function countOf(steps: readonly StepCount[], stepId: string, hostId?: string): number {
  return steps
    .filter((s) => s.stepId === stepId && (hostId === undefined || s.hostId === hostId))
    .reduce((sum, s) => sum + s.n, 0);
}
