/**
 * The operator's actions on a rollout, as a table: in which states each applies, and what it
 * changes (the rollout's status, host resets). Pure: the engine checks the rollout did not move
 * since it was read, and writes the result in one transaction with its audit event.
 *
 *   pause     any unfinished state, not already paused        ─▶ paused
 *   resume    halted                                          ─▶ staging (never staged) | upgrading
 *             paused                                          ─▶ not paused
 *   abort     any unfinished state but aborting               ─▶ aborting
 *   retry     held                                            ─▶ finalizing | upgrading | verifying
 *   rollback  held, halted                                    ─▶ rolling-back
 *
 * Nothing applies to a finished rollout.
 */
import { ConvoyError } from '../../shared/errors';
import {
  FAILED_HOST_STATES,
  FINISHED_ROLLOUT_STATES,
  isIn,
  type HostState,
  type RolloutHostRecord,
  type RolloutRecord,
} from './model';
import type { RolloutPatch } from './rollout-store';

export const ROLLOUT_ACTIONS = ['pause', 'resume', 'abort', 'retry', 'rollback'] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

export interface ActionResult {
  readonly patch: RolloutPatch;
  /** Hosts put back to an earlier state (retry, resume after failed staging). */
  readonly hostResets: readonly { readonly hostId: string; readonly state: HostState }[];
}

/** An action's effect, or why it does not apply (the refusal's text). */
type Decide = (r: RolloutRecord, hosts: readonly RolloutHostRecord[], actor: string) => ActionResult | string;

const ACTIONS: Record<RolloutAction, Decide> = {
  pause: (r, _hosts, actor) =>
    r.paused
      ? 'it is already paused'
      : only({ paused: true, pauseUntil: null, reason: `paused by ${actor}` }),

  resume: (r, hosts, actor) => {
    const unpause = { paused: false, pauseUntil: null, reason: `resumed by ${actor}` };
    if (r.state === 'halted') {
      // A resumed halt tolerates the failures it halted on on top of the threshold, not more of
      // them; failed staging is retried instead of tolerated. Counted afresh at each resume (a
      // failure tolerated by an earlier resume is not tolerated twice).
      const tolerated = hosts.filter((h) => isIn(FAILED_HOST_STATES, h.state) && h.state !== 'stage-failed');
      return {
        patch: {
          ...unpause,
          state: r.stagedAt === null ? 'staging' : 'upgrading',
          toleratedFailures: Math.max(r.toleratedFailures, tolerated.length),
        },
        hostResets: hosts
          .filter((h) => h.state === 'stage-failed')
          .map((h) => ({ hostId: h.hostId, state: 'pending' as const })),
      };
    }
    return r.paused ? only(unpause) : 'it is neither paused nor halted';
  },

  abort: (r, _hosts, actor) =>
    r.state === 'aborting'
      ? 'it is already aborting'
      : only({ state: 'aborting', reason: `aborted by ${actor}; hosts in flight finish` }),

  retry: (r, hosts, actor) => {
    if (r.state !== 'held') return 'retry applies to a held rollout';
    // Rolled-back hosts upgrade again from their caches; failed verifies are verified again.
    const RETRY_FROM: Partial<Record<HostState, HostState>> = {
      'rolled-back': 'staged',
      'verify-failed': 'upgraded',
    };
    const hostResets = hosts.flatMap((h) => {
      const state = RETRY_FROM[h.state];
      return state === undefined ? [] : [{ hostId: h.hostId, state }];
    });
    const reason = `retried by ${actor}`;
    if (r.finalizeState === 'failed')
      return { patch: { state: 'finalizing', finalizeState: null, reason }, hostResets };
    if (hostResets.some((x) => x.state === 'staged'))
      return { patch: { state: 'upgrading', reason }, hostResets };
    return {
      patch: { state: r.finalizeState === 'succeeded' ? 'verifying' : 'finalizing', reason },
      hostResets,
    };
  },

  rollback: (r, _hosts, actor) =>
    r.state !== 'held' && r.state !== 'halted'
      ? 'rollback applies to a held or halted rollout'
      : only({ state: 'rolling-back', reason: `rollback requested by ${actor}` }),
};

/** The effect of `action` on `r`, or a ROLLOUT_STATE error saying why it does not apply. */
export function decideAction(
  action: RolloutAction,
  r: RolloutRecord,
  hosts: readonly RolloutHostRecord[],
  actor: string,
): ActionResult {
  const result = isIn(FINISHED_ROLLOUT_STATES, r.state)
    ? `${action} does not apply to a finished rollout`
    : ACTIONS[action](r, hosts, actor);
  if (typeof result === 'string')
    throw new ConvoyError(
      'ROLLOUT_STATE',
      `rollout ${r.id} is ${r.state}${r.paused ? ' (paused)' : ''}: ${result}`,
    );
  return result;
}

function only(patch: RolloutPatch): ActionResult {
  return { patch, hostResets: [] };
}
