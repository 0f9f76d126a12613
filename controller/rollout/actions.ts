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
 *   resolve   held, halted, with hosts held past the point of no return: the operator ran the
 *             manual procedure; those hosts become rolled-back (failed hosts, as a rollback would
 *             leave them), the rollout stays where it is
 *
 * Resume and retry are refused while a host is held (held-host.ts): resolve it first, or abort.
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

export const ROLLOUT_ACTIONS = ['pause', 'resume', 'abort', 'retry', 'rollback', 'resolve'] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

export interface ActionResult {
  readonly patch: RolloutPatch;
  /** Hosts put back to an earlier state (retry, resume after failed staging). */
  readonly hostResets: readonly {
    readonly hostId: string;
    readonly state: HostState;
    /** The reason the host shows from then on; cleared when absent (resolve keeps what held it). */
    readonly reason?: string;
  }[];
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
    if (r.state === 'halted' && heldIn(hosts) !== '') return `${heldIn(hosts)} held: resolve first`;
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
    if (heldIn(hosts) !== '') return `${heldIn(hosts)} held: resolve first`;
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

  resolve: (r, hosts, actor) => {
    if (r.state !== 'held' && r.state !== 'halted') return 'resolve applies to a held or halted rollout';
    const held = hosts.filter((h) => h.state === 'held');
    if (held.length === 0) return 'no host is held past the point of no return';
    return {
      patch: { reason: `${held.map((h) => h.hostId).join(', ')} resolved by ${actor} (manual recovery)` },
      hostResets: held.map((h) => ({
        hostId: h.hostId,
        state: 'rolled-back' as const,
        reason: `resolved by ${actor} after the manual procedure; was: ${h.reason}`,
      })),
    };
  },
};

/** The held hosts' ids, '' when none. */
function heldIn(hosts: readonly RolloutHostRecord[]): string {
  return hosts
    .filter((h) => h.state === 'held')
    .map((h) => h.hostId)
    .join(', ');
}

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
