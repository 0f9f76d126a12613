/**
 * The engine's writes: each transition is one transaction holding the change, the phase run it
 * sends (write-ahead) and its audit event, so the store never holds a transition without the
 * event that explains it. A change decided from a rollout that has moved since it was read (an
 * operator's pause, abort or resume won the race) writes nothing and says so. After each durable
 * transition the failpoint of its name runs (the kill -9 tests stop the controller right there).
 */
import type { PhaseName } from '../../shared/recipe/types';
import type { OperatorDeps } from '../deps';
import type { PreparedRecipe } from '../phase/recipe';
import { appendEvent } from '../store/events';
import { insertPhaseRun, markPhaseRunLost } from '../store/phase-runs';
import type { Tx } from '../store/sqlite';
import type { ActionResult, RolloutAction } from './actions';
import type { Failpoint } from './failpoint';
import type { HostResult } from './host-results';
import {
  PHASE_OF_STATE,
  agentRunId,
  type HostState,
  type RolloutHostRecord,
  type RolloutRecord,
} from './model';
import {
  patchHost,
  patchHostApp,
  patchRollout,
  rolloutUnchanged,
  type HostAppPatch,
  type HostPatch,
  type RolloutPatch,
} from './rollout-store';
import type { PhaseHostState } from './transitions';

export interface WriterDeps extends Pick<OperatorDeps, 'store' | 'now'> {
  readonly failpoint: Failpoint;
}

/** A phase about to be sent: which run of the agent's journal it belongs to, and its row. */
export interface PhaseSend {
  readonly phase: PhaseName;
  readonly runId: string;
  readonly phaseRunId: string;
}

export class RolloutWriter {
  constructor(private readonly deps: WriterDeps) {}

  /** A transition of the rollout's status; false when the rollout moved since `r` was read. */
  async transition(r: RolloutRecord, patch: RolloutPatch): Promise<boolean> {
    const kind =
      patch.state !== undefined && patch.state !== r.state ? `rollout.${patch.state}` : 'rollout.updated';
    const written = await this.write(r, kind, { reason: patch.reason }, async (tx, now) => {
      if (!(await rolloutUnchanged(tx, r))) return false;
      await patchRollout(tx, r.id, patch, now);
      return true;
    });
    if (written && patch.state !== undefined) this.deps.failpoint(`rollout.${patch.state}`);
    return written;
  }

  /** The reason shown in status; written only when it changes, without an event (not a transition). */
  async reason(r: RolloutRecord, reason: string): Promise<void> {
    if (r.reason === reason) return;
    await this.deps.store.db.write((tx) => patchRollout(tx, r.id, { reason }, this.deps.now()));
  }

  /** Write-ahead of a host phase: its new state, the phase in flight and its phase run. */
  async startHost(
    r: RolloutRecord,
    h: RolloutHostRecord,
    state: PhaseHostState,
    send: PhaseSend,
    prepared: PreparedRecipe,
  ): Promise<HostPatch | undefined> {
    const patch: HostPatch = {
      state,
      phase: send.phase,
      phaseRunId: send.phaseRunId,
      unknown: false,
      reason: '',
      resends: 0,
    };
    if (state === 'upgrading' || (state === 'staging' && h.startedAt === null))
      patch.startedAt = this.deps.now();
    // A host upgraded again (retry) is not finished before it started.
    if (state === 'upgrading') patch.finishedAt = null;
    const written = await this.write(r, `rollout.host.${state}`, { hostId: h.hostId }, async (tx, now) => {
      if (!(await rolloutUnchanged(tx, r))) return false;
      await patchHost(tx, r.id, h.hostId, patch);
      await this.insertRun(tx, r, h.hostId, send, prepared);
      // Maintenance, as status shows it: from the start of a host's upgrade until it is verified
      // or rolled back (a failed rollback leaves it on: the host needs an operator).
      const app: HostAppPatch =
        state === 'upgrading' ? { rolloutId: r.id, maintenance: true } : { rolloutId: r.id };
      await this.hostApp(tx, r, h.hostId, app, now);
      return true;
    });
    if (!written) return undefined;
    this.deps.failpoint(`host.${state}`);
    return patch;
  }

  /** Write-ahead of the rollout's one finalize. */
  async startFinalize(
    r: RolloutRecord,
    hostId: string,
    send: PhaseSend,
    prepared: PreparedRecipe,
  ): Promise<boolean> {
    const written = await this.write(r, 'rollout.finalize.sent', { hostId }, async (tx, now) => {
      if (!(await rolloutUnchanged(tx, r))) return false;
      await patchRollout(tx, r.id, { finalizeState: 'sent', finalizeHost: hostId, finalizeResends: 0 }, now);
      await this.insertRun(tx, r, hostId, send, prepared);
      return true;
    });
    if (written) this.deps.failpoint('finalize.sent');
    return written;
  }

  /**
   * A host's answer, and the next phase of its chain in the same transaction: a crash between the
   * two can never leave a host between phases with nothing in flight.
   */
  async hostResult(
    r: RolloutRecord,
    h: RolloutHostRecord,
    result: HostResult,
    prepared: PreparedRecipe,
  ): Promise<void> {
    const chained = result.chained;
    const data = {
      hostId: h.hostId,
      reason: result.why,
      next: chained?.state,
      ...result.readBack,
      // A host held past the point of no return: the audit log names the step, backup, procedure.
      ...(result.pointOfNoReturn === undefined ? {} : { pointOfNoReturn: result.pointOfNoReturn }),
    };
    await this.write(r, result.event, data, async (tx, now) => {
      await patchHost(tx, r.id, h.hostId, result.hostPatch);
      await this.hostApp(tx, r, h.hostId, result.appPatch, now);
      if (chained !== undefined && result.hostPatch.phaseRunId)
        await this.insertRun(
          tx,
          r,
          h.hostId,
          hostSend(r.id, chained.state, result.hostPatch.phaseRunId),
          prepared,
        );
    });
    // A host that rests after this answer (staged, upgraded, rolled-back...) is a transition too.
    this.deps.failpoint(`host.${chained?.state ?? (result.hostPatch.state as string)}`);
  }

  /** The host went silent (or busy) with a phase in flight: nothing new starts until reconciled. */
  async hostUnknown(r: RolloutRecord, h: RolloutHostRecord, unknown: boolean, why: string): Promise<void> {
    await this.write(
      r,
      unknown ? 'rollout.host.unknown' : 'rollout.host.known',
      { hostId: h.hostId, reason: why },
      (tx) => patchHost(tx, r.id, h.hostId, { unknown, reason: why }),
    );
  }

  /**
   * The host is rebooting inside its phase (reboot-wait.ts): waiting, neither failed nor unknown;
   * or (`back`) it came back and its phase is about to be sent again.
   */
  async hostRebooting(r: RolloutRecord, h: RolloutHostRecord, why: string, back = false): Promise<void> {
    const kind = back ? 'rollout.host.rebooted' : 'rollout.host.rebooting';
    await this.write(r, kind, { hostId: h.hostId, reason: why }, (tx) =>
      patchHost(tx, r.id, h.hostId, { unknown: false, reason: why }),
    );
  }

  /**
   * Send again what the agent never received (or was interrupted in): the earlier send ends as
   * lost, a new phase run takes over.
   */
  async resend(
    r: RolloutRecord,
    what: {
      readonly hostId: string;
      readonly finalize: boolean;
      readonly journal: string | null;
      /** The loop guard's count after this re-send; absent for a re-send that does not count (busy). */
      readonly resends?: number;
    },
    lostPhaseRunId: string | null,
    send: PhaseSend,
    prepared: PreparedRecipe,
  ): Promise<void> {
    const kind = what.finalize ? 'rollout.finalize.resent' : 'rollout.host.resent';
    const resends = what.resends;
    await this.write(
      r,
      kind,
      { hostId: what.hostId, phase: send.phase, journal: what.journal, resends },
      async (tx, now) => {
        if (!what.finalize)
          await patchHost(tx, r.id, what.hostId, {
            phaseRunId: send.phaseRunId,
            unknown: false,
            ...(resends === undefined ? {} : { resends }),
          });
        else if (resends !== undefined) await patchRollout(tx, r.id, { finalizeResends: resends }, now);
        if (lostPhaseRunId !== null) await markPhaseRunLost(tx, lostPhaseRunId, now);
        await this.insertRun(tx, r, what.hostId, send, prepared);
      },
    );
  }

  /** The agent answered PHASE_BUSY (or its journal shows another phase running): the flight waits. */
  async busy(
    r: RolloutRecord,
    what: {
      readonly hostId: string;
      readonly finalize: boolean;
      readonly waits: number;
      readonly waitMs: number;
    },
  ): Promise<void> {
    const kind = what.finalize ? 'rollout.finalize.busy' : 'rollout.host.busy';
    await this.write(
      r,
      kind,
      { hostId: what.hostId, waits: what.waits, waitMs: what.waitMs },
      async () => {},
    );
  }

  /** The operator's action; false when the rollout moved since it was read. */
  async action(
    r: RolloutRecord,
    action: RolloutAction,
    result: ActionResult,
    actor: string,
  ): Promise<boolean> {
    const written = await this.write(
      r,
      `rollout.${action}`,
      { actor },
      async (tx, now) => {
        if (!(await rolloutUnchanged(tx, r))) return false;
        await patchRollout(tx, r.id, result.patch, now);
        for (const x of result.hostResets)
          await patchHost(tx, r.id, x.hostId, { state: x.state, reason: x.reason ?? '' });
        return true;
      },
      actor,
    );
    // The operator's transition is durable before the engine acts on it or the caller hears back.
    if (written && result.patch.state !== undefined) this.deps.failpoint(`rollout.${result.patch.state}`);
    return written;
  }

  private insertRun(
    tx: Tx,
    r: RolloutRecord,
    hostId: string,
    send: PhaseSend,
    prepared: PreparedRecipe,
  ): Promise<void> {
    const run = {
      id: send.phaseRunId,
      runId: send.runId,
      hostId,
      recipe: prepared.recipe.name,
      digest: prepared.digest,
      phase: send.phase,
      nowMs: this.deps.now(),
      rolloutId: r.id,
    };
    return insertPhaseRun(tx, run, 'controller');
  }

  private hostApp(tx: Tx, r: RolloutRecord, hostId: string, patch: HostAppPatch, now: number): Promise<void> {
    return patchHostApp(tx, hostId, { deployment: r.deployment, application: r.spec.recipeName }, patch, now);
  }

  /** One transaction: `change` (false: write nothing, event included), then the audit event. */
  private async write(
    r: RolloutRecord,
    kind: string,
    data: Record<string, unknown>,
    change: (tx: Tx, now: number) => Promise<void | boolean>,
    actor = 'controller',
  ): Promise<boolean> {
    const now = this.deps.now();
    const hostId = typeof data['hostId'] === 'string' ? data['hostId'] : undefined;
    return this.deps.store.db.write(async (tx) => {
      if ((await change(tx, now)) === false) return false;
      await appendEvent(tx, {
        // Read again: rows the change appended (phase.sent) carry times after `now`, and the
        // log's times must not go backwards.
        at: this.deps.now(),
        actor,
        kind,
        ...(hostId === undefined ? {} : { hostId }),
        data: { rolloutId: r.id, ...withoutUndefined(data) },
      });
      return true;
    });
  }
}

/** The journal run a host state's phase belongs to: staging, the final verify, or the upgrade's. */
export function hostRunId(rolloutId: string, state: HostState): string {
  if (state === 'staging') return agentRunId(rolloutId, 'stage');
  if (state === 'final-verifying') return agentRunId(rolloutId, 'final-verify');
  return agentRunId(rolloutId, 'upgrade');
}

/** The send for a host entering `state` (which has a phase). */
export function hostSend(rolloutId: string, state: PhaseHostState, phaseRunId: string): PhaseSend {
  return { phase: PHASE_OF_STATE[state] as PhaseName, runId: hostRunId(rolloutId, state), phaseRunId };
}

function withoutUndefined(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
}
