/**
 * Every transition the controller writes, as failpoint names (controller/rollout/failpoint.ts),
 * derived from the model's state lists so a new state cannot slip past the sweep: each name maps
 * to the scenarios that pass through it (scenarios.ts), and the few states no failpoint can name
 * are listed with the reason, which the sweep checks against engine.ts.
 */
import {
  HOST_STATES,
  ROLLOUT_STATES,
  type HostState,
  type RolloutState,
} from '../../../controller/rollout/model';
import type { ScenarioName } from './scenarios';

/**
 * States written somewhere other than after a failpoint, and why. `scheduled` is the row the
 * start RPC inserts (rollout-store.ts) before the engine ever reads it; `pending` and `current`
 * are what the plan gives a host when the rollout is created (`pending` also comes back from an
 * operator's resume, whose failpoint is the rollout's). A kill right after any of them is a kill
 * before the next transition, which the sweep covers.
 */
export const WITHOUT_FAILPOINT: Readonly<
  Partial<Record<`rollout.${RolloutState}` | `host.${HostState}`, string>>
> = {
  'rollout.scheduled': 'inserted by the start RPC, before the engine reads the rollout',
  'host.pending': 'the plan writes it at creation; resume resets to it under the rollout failpoint',
  'host.current': 'the plan writes it at creation for a host already on the target',
};

/**
 * Transitions no scenario of the sweep's BlueMind fleet passes through yet: a gap, listed with the
 * test that proves the state without a controller kill, so that it cannot hide. `host.held` needs a
 * point of no return in the fleet's recipe; BlueMind's /setup is one but is not declared yet (its
 * hold must cover the whole deployment, not only the core host).
 */
export const NOT_YET_SWEPT: Readonly<Record<string, { readonly test: string; readonly why: string }>> = {
  'host.held': {
    test: 'test/e2e/rollout-held.test.ts',
    why: 'no point of no return in the BlueMind fleet yet; proven on a Cells host, without a controller kill',
  },
};

/** The failpoint names the engine can fire: every state of both lists, plus the finalize send. */
export function engineFailpoints(): string[] {
  return [
    ...ROLLOUT_STATES.map((s) => `rollout.${s}`),
    ...HOST_STATES.map((s) => `host.${s}`),
    'finalize.sent',
  ].filter((name) => !(name in WITHOUT_FAILPOINT));
}

/**
 * Which scenario passes through each failpoint. Two names fire from two places in the engine and
 * get a scenario for each: `host.rolling-back` (a failed verify chains into rollback; an operator's
 * rollback starts it) and `rollout.halted` (the error threshold; a failed staging).
 */
export const COVERAGE: Readonly<Record<string, readonly ScenarioName[]>> = {
  'rollout.staging': ['success'],
  'rollout.staged': ['success'],
  'rollout.upgrading': ['success'],
  'rollout.finalizing': ['success'],
  'rollout.verifying': ['success'],
  'rollout.succeeded': ['success'],
  'rollout.halted': ['canary-unhealthy', 'stage-failure'],
  'rollout.aborting': ['canary-unhealthy'],
  'rollout.aborted': ['canary-unhealthy'],
  'rollout.held': ['verify-failed-rollback'],
  'rollout.rolling-back': ['verify-failed-rollback'],
  'rollout.rolled-back': ['verify-failed-rollback'],
  'rollout.failed': ['rollback-fails'],
  'host.staging': ['success'],
  'host.staged': ['success'],
  'host.stage-failed': ['stage-failure'],
  'host.upgrading': ['success'],
  'host.verifying': ['success'],
  'host.upgraded': ['success'],
  'host.final-verifying': ['success'],
  'host.verified': ['success'],
  'host.verify-failed': ['verify-failed-rollback'],
  'host.rolling-back': ['canary-unhealthy', 'verify-failed-rollback'],
  'host.rolled-back': ['canary-unhealthy'],
  'host.rollback-failed': ['rollback-fails'],
  'finalize.sent': ['success'],
};

/** The sweep's cases: per scenario, the failpoints it is killed at (one rollout each). */
export function sweepCases(): { scenario: ScenarioName; failpoints: string[] }[] {
  const byScenario = new Map<ScenarioName, string[]>();
  for (const [failpoint, scenarios] of Object.entries(COVERAGE))
    for (const s of scenarios) byScenario.set(s, [...(byScenario.get(s) ?? []), failpoint]);
  return [...byScenario].map(([scenario, failpoints]) => ({ scenario, failpoints }));
}
