/**
 * How a rollout moves, as data and pure functions: given what the store holds (the rollout, its
 * hosts), the scheduler's time and which agents are online, `decideRollout` says which commands
 * the engine must carry out, in order, and when the rollout next needs the clock. No I/O, no
 * clock of its own: the engine (engine.ts) reads, asks, and writes one transaction per command.
 *
 *   scheduled ─(staging time)─▶ staging ─(every host staged)─▶ staged ─(window, batch)─▶ upgrading
 *        ─(every host upgraded)─▶ finalizing ─(finalize ok, or none)─▶ verifying ─(all ok)─▶ succeeded
 *   staging ─(a host failed)─▶ halted;   upgrading ─(failures past the threshold)─▶ halted
 *   upgrading ─(a host rolled back)─▶ held;   finalizing ─(no host of the role)─▶ held
 *   verifying ─(a verify failed)─▶ held;   rolling-back ─▶ rolled-back | failed
 *   aborting ─(nothing in flight)─▶ aborted
 *   upgrading, rolling-back ─(a host held past the point of no return)─▶ halted, whatever the
 *   error threshold (held-host.ts): a held host counts as failed, but needs the operator first
 *
 * Operator actions (pause, resume, abort, retry, rollback) are in actions.ts; what a host's answer
 * does is in host-results.ts.
 */
import { mayStart } from '../../shared/schedule';
import {
  FAILED_HOST_STATES,
  UPGRADE_DONE_HOST_STATES,
  isIn,
  type HostState,
  type RolloutHostRecord,
  type RolloutRecord,
  type RolloutState,
} from './model';
import { heldRolloutReason } from './held-host';
import type { RolloutPatch } from './rollout-store';

/** Everything a decision may look at; the engine gathers it, the tables never fetch. */
export interface RolloutSnapshot {
  readonly rollout: RolloutRecord;
  readonly hosts: readonly RolloutHostRecord[];
  /** The scheduler's clock (windows, staging times, timed pauses). */
  readonly now: number;
  /** The wall clock (finishedAt). */
  readonly wallNow: number;
  readonly online: ReadonlySet<string>;
  /** Whether the rollout's recipe has a `finalize` phase. */
  readonly hasFinalize: boolean;
}

/**
 * What the engine does for a decision, in order; each is one transaction. A command decided from a
 * rollout that moved since it was read (an operator's pause, say) is dropped by the engine, and so
 * are the commands after it: the next tick decides again.
 */
export type RolloutCommand =
  /** A transition of the rollout's status (an event `rollout.<state>`, or `rollout.updated`). */
  | { readonly kind: 'patch'; readonly patch: RolloutPatch }
  /** Only the reason status shows: no event, it is not a transition. */
  | { readonly kind: 'reason'; readonly reason: string }
  /** Write the host's new state and its phase in flight ahead, then send the phase. */
  | { readonly kind: 'start-host'; readonly hostId: string; readonly state: PhaseHostState }
  /** Write `finalize sent` ahead, then send finalize to this host. */
  | { readonly kind: 'start-finalize'; readonly hostId: string };

/** Host states entered by sending a phase. */
export type PhaseHostState = 'staging' | 'upgrading' | 'verifying' | 'final-verifying' | 'rolling-back';

export interface RolloutDecision {
  readonly commands: readonly RolloutCommand[];
  /** When the rollout next needs the clock: `now` to look again at once, Infinity for never. */
  readonly wakeAt: number;
}

const NEVER = Number.POSITIVE_INFINITY;

/** Rollout states the clock and the hosts move; the others wait for an operator or are over. */
type MovingState =
  'scheduled' | 'staging' | 'staged' | 'upgrading' | 'finalizing' | 'verifying' | 'rolling-back' | 'aborting';

/** The decision of each moving state; held, halted and the finished states decide nothing. */
const DECIDE: Record<MovingState, (s: RolloutSnapshot) => RolloutDecision> = {
  scheduled: decideScheduled,
  staging: decideStaging,
  staged: decideUpgrade,
  upgrading: decideUpgrade,
  finalizing: decideFinalize,
  verifying: decideVerify,
  'rolling-back': decideRollback,
  aborting: decideAborting,
};

export function decideRollout(s: RolloutSnapshot): RolloutDecision {
  const decide = (DECIDE as Partial<Record<RolloutState, (s: RolloutSnapshot) => RolloutDecision>>)[
    s.rollout.state
  ];
  return decide === undefined ? idle() : decide(s);
}

/** Failed hosts the rollout tolerates: the spec's threshold plus what resumed halts accepted. */
export function failureAllowance(r: RolloutRecord): number {
  return r.spec.maxFailures + r.toleratedFailures;
}

function decideScheduled({ rollout: r, now }: RolloutSnapshot): RolloutDecision {
  if (now < r.stageAt) return idle(r.stageAt);
  return { commands: [transition({ state: 'staging', reason: '' })], wakeAt: now };
}

function decideStaging({ rollout: r, hosts, now, online }: RolloutSnapshot): RolloutDecision {
  const running = hosts.filter((h) => h.state === 'staging').length;
  const failed = hosts.filter((h) => h.state === 'stage-failed');
  const pending = hosts.filter((h) => h.state === 'pending');
  if (failed.length > 0 && running === 0) {
    const which = failed.map((h) => `${h.hostId} (${h.reason})`).join(', ');
    return idle(
      NEVER,
      transition({ state: 'halted', reason: `staging failed on ${which}; resume retries it` }),
    );
  }
  const commands: RolloutCommand[] = [];
  if (failed.length === 0) {
    const free = Math.max(0, r.spec.staging.concurrency - running);
    // An offline host stages when it is back (the rollout's reason names it meanwhile).
    const reachable = pending.filter((h) => online.has(h.hostId));
    if (reachable.length === 0 && pending.length > 0 && running === 0)
      commands.push(reason(`waiting for ${ids(pending)} (offline) to stage`));
    for (const h of reachable.slice(0, free)) commands.push(startHost(h, 'staging'));
  }
  if (hosts.every((h) => h.state === 'staged' || h.state === 'current')) {
    commands.push(transition({ state: 'staged', stagedAt: now, reason: 'every host is staged' }));
    return { commands, wakeAt: now };
  }
  return { commands, wakeAt: NEVER };
}

/** Staged and upgrading: batch by batch, inside the window, within the error threshold. */
function decideUpgrade({ rollout: r, hosts, now, online }: RolloutSnapshot): RolloutDecision {
  const busy = hosts.filter((h) => h.phase !== null);
  const failures = hosts.filter((h) => isIn(FAILED_HOST_STATES, h.state));
  const held = hosts.filter((h) => h.state === 'held');
  if (held.length > 0) {
    // No automatic way back exists for these: in-flight hosts finish, nothing new starts.
    if (busy.length > 0) return idle();
    return idle(
      NEVER,
      transition({
        state: 'halted',
        reason: heldRolloutReason(
          held.map((h) => h.hostId),
          'resume',
        ),
      }),
    );
  }
  const allowance = failureAllowance(r);
  if (failures.length > allowance) {
    // In-flight hosts finish; nothing new starts; then the rollout halts.
    if (busy.length > 0) return idle();
    const why = `${failures.length} failed host(s) exceed the error threshold of ${allowance}: ${ids(failures)}`;
    return idle(NEVER, transition({ state: 'halted', reason: why }));
  }
  const remaining = hosts.filter((h) => !isIn(UPGRADE_DONE_HOST_STATES, h.state));
  if (remaining.length === 0) {
    const next =
      failures.length > 0
        ? transition({
            state: 'held',
            reason: `finalize needs every host upgraded; ${ids(failures)} rolled back: retry or rollback`,
          })
        : transition({ state: 'finalizing', reason: '' });
    return { commands: [next], wakeAt: now };
  }
  const unknown = hosts.filter((h) => h.unknown);
  if (unknown.length > 0) return idle(NEVER, reason(`waiting for ${ids(unknown)} (state unknown)`));
  const batch = Math.min(...remaining.map((h) => h.batch));
  if (r.paused) {
    if (r.pauseUntil !== null && now >= r.pauseUntil)
      return { commands: [transition({ paused: false, pauseUntil: null, reason: '' })], wakeAt: now };
    return idle(r.pauseUntil ?? NEVER);
  }
  const batchBusy = busy.some((h) => h.batch === batch);
  const pause = r.spec.batches.pause;
  const released = pause.kind === 'none' || batch === 0 || r.releasedBatch >= batch;
  if (!released && !batchBusy) {
    if (pause.kind === 'manual')
      return idle(
        NEVER,
        transition({
          paused: true,
          releasedBatch: batch,
          reason: `batch ${batch} is next; resume to start it`,
        }),
      );
    if (pause.kind === 'timed')
      return idle(
        now + pause.ms,
        transition({
          paused: true,
          pauseUntil: now + pause.ms,
          releasedBatch: batch,
          reason: `pausing ${Math.round(pause.ms / 1000)} s before batch ${batch}`,
        }),
      );
  }
  const ready = remaining.filter((h) => h.batch === batch && h.state === 'staged');
  if (ready.length === 0) return idle();
  const gate = mayStart(r.spec.window, now, r.spec.estimateMsPerHost ?? 0);
  if (!gate.ok) return idle(gate.retryAtMs, reason(`waiting: ${gate.reason}`));
  // An offline host is not started: the command would be lost at once, and its maintenance and
  // downtime would count from now rather than from when its upgrade can really begin.
  const reachable = ready.filter((h) => online.has(h.hostId));
  if (reachable.length === 0) return idle(NEVER, reason(`waiting for ${ids(ready)} (offline)`));
  const commands: RolloutCommand[] = [];
  if (r.state === 'staged')
    commands.push(transition({ state: 'upgrading', windowOpenedAt: now, reason: `batch ${batch}` }));
  for (const h of reachable) commands.push(startHost(h, 'upgrading'));
  return { commands, wakeAt: NEVER };
}

function decideFinalize({ rollout: r, hosts, now, hasFinalize }: RolloutSnapshot): RolloutDecision {
  if (!hasFinalize || !hosts.some((h) => h.state === 'upgraded'))
    return { commands: [transition({ state: 'verifying', reason: '' })], wakeAt: now };
  if (r.finalizeState !== null) return idle();
  const role = r.spec.finalizeRole;
  const host = hosts.find((h) => h.role === role && (h.state === 'upgraded' || h.state === 'current'));
  if (host === undefined)
    return idle(
      NEVER,
      transition({ state: 'held', reason: `no host of this deployment has role ${role ?? '?'}` }),
    );
  return idle(NEVER, { kind: 'start-finalize', hostId: host.hostId });
}

function decideVerify({ hosts, wallNow }: RolloutSnapshot): RolloutDecision {
  const start = hosts.filter((h) => (h.state === 'upgraded' || h.state === 'current') && h.phase === null);
  if (start.length > 0) return { commands: start.map((h) => startHost(h, 'final-verifying')), wakeAt: NEVER };
  if (hosts.some((h) => h.phase !== null)) return idle();
  const failed = hosts.filter((h) => h.state === 'verify-failed');
  if (failed.length > 0)
    return idle(
      NEVER,
      transition({ state: 'held', reason: `verify failed on ${ids(failed)}: retry or rollback` }),
    );
  if (hosts.every((h) => h.state === 'verified'))
    return idle(NEVER, transition({ state: 'succeeded', reason: '', finishedAt: wallNow }));
  return idle();
}

/** Host states a rollback of the rollout undoes. */
const UNDO: readonly HostState[] = ['upgraded', 'verified', 'verify-failed'];

function decideRollback({ hosts, wallNow }: RolloutSnapshot): RolloutDecision {
  const start = hosts.filter((h) => UNDO.includes(h.state) && h.phase === null);
  if (start.length > 0) return { commands: start.map((h) => startHost(h, 'rolling-back')), wakeAt: NEVER };
  if (hosts.some((h) => h.phase !== null || UNDO.includes(h.state))) return idle();
  const held = hosts.filter((h) => h.state === 'held');
  if (held.length > 0)
    return idle(
      NEVER,
      transition({
        state: 'halted',
        reason: heldRolloutReason(
          held.map((h) => h.hostId),
          'rollback',
        ),
      }),
    );
  const stuck = hosts.filter((h) => h.state === 'rollback-failed');
  return idle(
    NEVER,
    transition(
      stuck.length > 0
        ? { state: 'failed', reason: `rollback failed on ${ids(stuck)}`, finishedAt: wallNow }
        : { state: 'rolled-back', reason: '', finishedAt: wallNow },
    ),
  );
}

/** Hosts in flight finish, and so does a finalize in flight; then the rollout is aborted. */
function decideAborting({ rollout: r, hosts, wallNow }: RolloutSnapshot): RolloutDecision {
  if (hosts.some((h) => h.phase !== null) || r.finalizeState === 'sent') return idle();
  return idle(NEVER, transition({ state: 'aborted', finishedAt: wallNow }));
}

/**
 * What a finalize answer does to the rollout. An abort written while finalize ran stands: the
 * outcome is recorded, the rollout does not move on. A finalize that failed after it started a
 * step marked `pointOfNoReturn` (`pastStep`; BlueMind's /setup) holds the rollout too, but says
 * so: the way on is retry (the vendor's own: run it again); a rollback is refused on the finalize
 * host, which would then be held with its backup and manual procedure.
 */
export function decideFinalizeResult(
  state: RolloutState,
  ok: boolean,
  why: string,
  pastStep?: string,
): RolloutPatch {
  const finalizeState = ok ? 'succeeded' : 'failed';
  if (state !== 'finalizing') return { finalizeState };
  if (ok) return { finalizeState, state: 'verifying', reason: '' };
  if (pastStep === undefined)
    return { finalizeState, state: 'held', reason: `finalize failed: ${why}; retry or rollback` };
  return {
    finalizeState,
    state: 'held',
    reason:
      `finalize failed past the point of no return (step ${pastStep}): ${why}; retry, or rollback ` +
      `(refused on the finalize host, held for its manual procedure), or abort`,
  };
}

function idle(wakeAt = NEVER, ...commands: RolloutCommand[]): RolloutDecision {
  return { commands, wakeAt };
}

function transition(patch: RolloutPatch): RolloutCommand {
  return { kind: 'patch', patch };
}

function reason(text: string): RolloutCommand {
  return { kind: 'reason', reason: text };
}

function startHost(h: RolloutHostRecord, state: PhaseHostState): RolloutCommand {
  return { kind: 'start-host', hostId: h.hostId, state };
}

function ids(hosts: readonly RolloutHostRecord[]): string {
  return hosts.map((h) => h.hostId).join(', ');
}
