/**
 * How a rollout advances. One loop (`tick`) reads every unfinished rollout from the store and
 * moves it forward; every transition is written (with its audit event and, for a phase, its
 * phase_runs row) before the command it causes is sent. Nothing lives only in memory but the
 * promises of commands in flight, so a controller killed at any instant resumes from the store:
 * a host row with a phase in flight and no promise is reconciled with the agent's journal
 * (finished: take its outcome; running: wait; interrupted: send again, the agent's resume table
 * decides; never received: send).
 *
 * Order of a rollout (model.ts has the state diagram):
 *   scheduled ─(staging time)─▶ staging: every host runs `download`, `staging.concurrency` at a time
 *   staged gate: upgrade starts only when every host is staged
 *   upgrading: batch by batch (canary first), each host upgrade ─▶ verify, on failure rollback;
 *              a host starts only when the window lets it (cutoff, estimate); past the error
 *              threshold nothing new starts and the rollout halts once in-flight hosts finish
 *   finalizing: `finalize` once, on the host with the recipe's role
 *   verifying: `verify` on every host ─▶ succeeded
 */
import { randomUUID } from 'node:crypto';
import { ConvoyError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { placeholderValues } from '../../shared/recipe/interpolate';
import type { PhaseName } from '../../shared/recipe/types';
import { mayStart } from '../../shared/schedule';
import type { WirePhaseReport, WireStepReport } from '../../proto/wire';
import type { OperatorDeps } from '../operator/handlers';
import { prepareRecipe, sendPhase, type PhaseCallResult, type PreparedRecipe } from '../operator/run-phase';
import { appendEvent } from '../store/events';
import { insertPhaseRun, recordPhaseRunEnd } from '../store/phase-runs';
import type { Tx } from '../store/sqlite';
import type { SchedulerClock } from './clock';
import type { Failpoint } from './failpoint';
import {
  agentRunId,
  relatedRunIds,
  PHASE_OF_STATE,
  type HostState,
  type RolloutHostRecord,
  type RolloutRecord,
} from './model';
import { varsOf } from './plan';
import {
  getRollout,
  listRollouts,
  patchHost,
  patchHostApp,
  patchRollout,
  rolloutHosts,
  type HostAppPatch,
  type HostPatch,
  type RolloutPatch,
} from './rollout-store';

export interface EngineDeps extends OperatorDeps {
  readonly clock: SchedulerClock;
  readonly failpoint: Failpoint;
  /** How often the loop looks at unfinished rollouts. Default 500 ms. */
  readonly tickMs?: number;
}

/** Host states that are done for the upgrade part of the rollout. */
const UPGRADE_DONE: readonly HostState[] = ['upgraded', 'current', 'rolled-back', 'rollback-failed'];
const FAILED: readonly HostState[] = ['rolled-back', 'rollback-failed', 'stage-failed'];

export class RolloutEngine {
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly advancing = new Set<string>();
  private readonly recipes = new Map<string, PreparedRecipe>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private again = false;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly deps: EngineDeps) {
    this.log = deps.log.child({ component: 'rollout' });
  }

  start(): void {
    this.timer = setInterval(() => this.poke(), this.deps.tickMs ?? 500);
    this.timer.unref();
    this.poke();
  }

  /** Stops starting work; commands in flight are left to the agents (their journals keep them). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** Runs a tick soon (after an operator action or an answer). */
  poke(): void {
    if (this.stopped) return;
    if (this.ticking) {
      // An answer landed during a tick: look again right after it rather than at the next timer.
      this.again = true;
      return;
    }
    this.ticking = true;
    this.again = false;
    this.tick()
      .catch((err: unknown) => this.log.error('rollout tick failed', { err }))
      .finally(() => {
        this.ticking = false;
        if (this.again) setImmediate(() => this.poke());
      });
  }

  /** Resolves when no command of the rollout is in flight in this process (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight.values()]);
  }

  private async tick(): Promise<void> {
    const rollouts = await listRollouts(this.deps.store.db, { unfinishedOnly: true });
    let nextWake = Number.POSITIVE_INFINITY;
    for (const r of rollouts) {
      if (this.advancing.has(r.id)) continue;
      this.advancing.add(r.id);
      try {
        nextWake = Math.min(nextWake, await this.advance(r));
      } catch (err) {
        this.log.error('could not advance rollout', { rolloutId: r.id, err });
      } finally {
        this.advancing.delete(r.id);
      }
    }
    // Warp mode (demo, tests): nothing to wait for but the clock, so move the clock.
    if (this.inflight.size === 0 && Number.isFinite(nextWake) && this.deps.clock.warpTo(nextWake)) {
      this.log.info('scheduler clock warped', { to: new Date(nextWake).toISOString() });
      setImmediate(() => this.poke());
    }
  }

  /** Moves one rollout as far as it can go now; returns when it next needs the clock (or Infinity). */
  private async advance(r: RolloutRecord): Promise<number> {
    const hosts = await rolloutHosts(this.deps.store.db, r.id);
    for (const h of hosts) {
      if (h.phase !== null && !this.inflight.has(hostKey(r.id, h.hostId))) this.launch(r, h, 'reconcile');
    }
    if (r.finalizeState === 'sent' && !this.inflight.has(finalizeKey(r.id)))
      this.launchFinalize(r, 'reconcile');
    const now = this.deps.clock.now();
    const busy = hosts.filter((h) => h.phase !== null);
    switch (r.state) {
      case 'scheduled':
        if (now < r.stageAt) return r.stageAt;
        await this.setRollout(r, { state: 'staging', reason: '' });
        return now;
      case 'staging':
        return this.advanceStaging(r, hosts);
      case 'staged':
      case 'upgrading':
        return this.advanceUpgrade(r, hosts, now);
      case 'finalizing':
        return this.advanceFinalize(r, hosts);
      case 'verifying':
        return this.advanceVerify(r, hosts);
      case 'rolling-back':
        return this.advanceRollback(r, hosts);
      case 'aborting':
        // Hosts in flight finish, and so does a finalize in flight.
        if (busy.length === 0 && r.finalizeState !== 'sent')
          await this.setRollout(r, { state: 'aborted', finishedAt: this.deps.now() });
        return Number.POSITIVE_INFINITY;
      default:
        return Number.POSITIVE_INFINITY;
    }
  }

  private async advanceStaging(r: RolloutRecord, hosts: readonly RolloutHostRecord[]): Promise<number> {
    const running = hosts.filter((h) => h.state === 'staging').length;
    const failed = hosts.filter((h) => h.state === 'stage-failed');
    const pending = hosts.filter((h) => h.state === 'pending');
    if (failed.length > 0 && running === 0) {
      await this.setRollout(r, {
        state: 'halted',
        reason: `staging failed on ${failed.map((h) => `${h.hostId} (${h.reason})`).join(', ')}; resume retries it`,
      });
      return Number.POSITIVE_INFINITY;
    }
    if (failed.length === 0) {
      const free = Math.max(0, r.spec.staging.concurrency - running);
      // An offline host stages when it is back (the rollout's reason names it meanwhile).
      const reachable = pending.filter((h) => this.deps.gateway.isOnline(h.hostId));
      if (reachable.length < pending.length && running === 0 && reachable.length === 0)
        await this.setReason(r, `waiting for ${pending.map((h) => h.hostId).join(', ')} (offline) to stage`);
      for (const h of reachable.slice(0, free)) await this.startHostPhase(r, h, 'staging');
    }
    if (hosts.every((h) => h.state === 'staged' || h.state === 'current')) {
      await this.setRollout(r, {
        state: 'staged',
        stagedAt: this.deps.clock.now(),
        reason: 'every host is staged',
      });
      return this.deps.clock.now();
    }
    return Number.POSITIVE_INFINITY;
  }

  private async advanceUpgrade(
    r: RolloutRecord,
    hosts: readonly RolloutHostRecord[],
    now: number,
  ): Promise<number> {
    const busy = hosts.filter((h) => h.phase !== null);
    const failures = hosts.filter((h) => FAILED.includes(h.state));
    if (failures.length > r.spec.maxFailures) {
      // In-flight hosts finish; nothing new starts; then the rollout halts.
      if (busy.length === 0) {
        await this.setRollout(r, {
          state: 'halted',
          reason: `${failures.length} failed host(s) exceed the error threshold of ${r.spec.maxFailures}: ${failures
            .map((h) => h.hostId)
            .join(', ')}`,
        });
      }
      return Number.POSITIVE_INFINITY;
    }
    const remaining = hosts.filter((h) => !UPGRADE_DONE.includes(h.state));
    if (remaining.length === 0) {
      if (failures.length > 0) {
        await this.setRollout(r, {
          state: 'held',
          reason: `finalize needs every host upgraded; ${failures.map((h) => h.hostId).join(', ')} rolled back: retry or rollback`,
        });
      } else {
        await this.setRollout(r, { state: 'finalizing', reason: '' });
      }
      return now;
    }
    if (hosts.some((h) => h.unknown)) {
      await this.setReason(
        r,
        `waiting for ${hosts
          .filter((h) => h.unknown)
          .map((h) => h.hostId)
          .join(', ')} (state unknown)`,
      );
      return Number.POSITIVE_INFINITY;
    }
    const batch = Math.min(...remaining.map((h) => h.batch));
    const batchBusy = busy.some((h) => h.batch === batch);
    if (r.paused) {
      if (r.pauseUntil !== null && now >= r.pauseUntil) {
        await this.setRollout(r, { paused: false, pauseUntil: null, reason: '' });
        return now;
      }
      return r.pauseUntil ?? Number.POSITIVE_INFINITY;
    }
    const released = r.spec.batches.pause.kind === 'none' || batch === 0 || r.releasedBatch >= batch;
    if (!released && !batchBusy) {
      const pause = r.spec.batches.pause;
      if (pause.kind === 'manual') {
        await this.setRollout(r, {
          paused: true,
          releasedBatch: batch,
          reason: `batch ${batch} is next; resume to start it`,
        });
        return Number.POSITIVE_INFINITY;
      }
      if (pause.kind === 'timed') {
        await this.setRollout(r, {
          paused: true,
          pauseUntil: now + pause.ms,
          releasedBatch: batch,
          reason: `pausing ${Math.round(pause.ms / 1000)} s before batch ${batch}`,
        });
        return now + pause.ms;
      }
    }
    const ready = remaining.filter((h) => h.batch === batch && h.state === 'staged');
    if (ready.length === 0) return Number.POSITIVE_INFINITY;
    const estimate = r.spec.estimateMsPerHost ?? 0;
    const gate = mayStart(r.spec.window, now, estimate);
    if (!gate.ok) {
      await this.setReason(r, `waiting: ${gate.reason}`);
      return gate.retryAtMs;
    }
    // An offline host is not started: the command would be lost at once, and its maintenance and
    // downtime would count from now rather than from when its upgrade can really begin.
    const reachable = ready.filter((h) => this.deps.gateway.isOnline(h.hostId));
    if (reachable.length === 0) {
      await this.setReason(r, `waiting for ${ready.map((h) => h.hostId).join(', ')} (offline)`);
      return Number.POSITIVE_INFINITY;
    }
    if (r.state === 'staged')
      await this.setRollout(r, { state: 'upgrading', windowOpenedAt: now, reason: `batch ${batch}` });
    for (const h of reachable) await this.startHostPhase({ ...r, state: 'upgrading' }, h, 'upgrading');
    return Number.POSITIVE_INFINITY;
  }

  private async advanceFinalize(r: RolloutRecord, hosts: readonly RolloutHostRecord[]): Promise<number> {
    const prepared = this.recipeOf(r);
    if (prepared.recipe.phases.finalize === undefined || !hosts.some((h) => h.state === 'upgraded')) {
      await this.setRollout(r, { state: 'verifying', reason: '' });
      return this.deps.clock.now();
    }
    if (r.finalizeState !== null) return Number.POSITIVE_INFINITY;
    const role = r.spec.finalizeRole;
    const host = hosts.find((h) => h.role === role && (h.state === 'upgraded' || h.state === 'current'));
    if (host === undefined) {
      await this.setRollout(r, {
        state: 'held',
        reason: `no host of this deployment has role ${role ?? '?'}`,
      });
      return Number.POSITIVE_INFINITY;
    }
    const phaseRunId = randomUUID();
    const sent = await this.write(r, 'rollout.finalize.sent', { hostId: host.hostId }, async (tx, now) => {
      if (!(await this.unchanged(tx, r))) return false;
      await patchRollout(tx, r.id, { finalizeState: 'sent', finalizeHost: host.hostId }, now);
      await this.insertRun(tx, r, host.hostId, 'finalize', agentRunId(r.id, 'finalize'), phaseRunId);
      return true;
    });
    if (!sent) return Number.POSITIVE_INFINITY;
    this.deps.failpoint('finalize.sent');
    this.launchFinalize({ ...r, finalizeState: 'sent', finalizeHost: host.hostId }, 'send');
    return Number.POSITIVE_INFINITY;
  }

  private async advanceVerify(r: RolloutRecord, hosts: readonly RolloutHostRecord[]): Promise<number> {
    for (const h of hosts.filter(
      (x) => (x.state === 'upgraded' || x.state === 'current') && x.phase === null,
    ))
      await this.startHostPhase(r, h, 'final-verifying');
    const fresh = await rolloutHosts(this.deps.store.db, r.id);
    if (fresh.some((h) => h.phase !== null)) return Number.POSITIVE_INFINITY;
    const failed = fresh.filter((h) => h.state === 'verify-failed');
    if (failed.length > 0) {
      await this.setRollout(r, {
        state: 'held',
        reason: `verify failed on ${failed.map((h) => h.hostId).join(', ')}: retry or rollback`,
      });
    } else if (fresh.every((h) => h.state === 'verified')) {
      await this.setRollout(r, { state: 'succeeded', reason: '', finishedAt: this.deps.now() });
    }
    return Number.POSITIVE_INFINITY;
  }

  private async advanceRollback(r: RolloutRecord, hosts: readonly RolloutHostRecord[]): Promise<number> {
    const undo: readonly HostState[] = ['upgraded', 'verified', 'verify-failed'];
    for (const h of hosts.filter((x) => undo.includes(x.state) && x.phase === null))
      await this.startHostPhase(r, h, 'rolling-back');
    const fresh = await rolloutHosts(this.deps.store.db, r.id);
    if (fresh.some((h) => h.phase !== null || undo.includes(h.state))) return Number.POSITIVE_INFINITY;
    const stuck = fresh.filter((h) => h.state === 'rollback-failed');
    await this.setRollout(
      r,
      stuck.length > 0
        ? {
            state: 'failed',
            reason: `rollback failed on ${stuck.map((h) => h.hostId).join(', ')}`,
            finishedAt: this.deps.now(),
          }
        : { state: 'rolled-back', reason: '', finishedAt: this.deps.now() },
    );
    return Number.POSITIVE_INFINITY;
  }

  // ---- host phases -------------------------------------------------------------------------

  /** Write-ahead: the host's new state, the phase in flight and its phase_runs row, then send. */
  private async startHostPhase(r: RolloutRecord, h: RolloutHostRecord, state: HostState): Promise<void> {
    const phase = PHASE_OF_STATE[state];
    if (phase === undefined) throw new Error(`host state ${state} has no phase`);
    const phaseRunId = randomUUID();
    const patch: HostPatch = { state, phase, phaseRunId, unknown: false, reason: '' };
    if (state === 'upgrading' || (state === 'staging' && h.startedAt === null))
      patch.startedAt = this.deps.now();
    // A host upgraded again (retry) is not finished before it started.
    if (state === 'upgrading') patch.finishedAt = null;
    const written = await this.write(r, `rollout.host.${state}`, { hostId: h.hostId }, async (tx, now) => {
      if (!(await this.unchanged(tx, r))) return false;
      await patchHost(tx, r.id, h.hostId, patch);
      await this.insertRun(tx, r, h.hostId, phase, runIdFor(r.id, state), phaseRunId);
      // Maintenance, as status shows it: from the start of a host's upgrade until it is verified
      // or rolled back (a failed rollback leaves it on: the host needs an operator).
      await this.hostApp(
        tx,
        r,
        h.hostId,
        state === 'upgrading' ? { rolloutId: r.id, maintenance: true } : { rolloutId: r.id },
        now,
      );
      return true;
    });
    if (!written) return;
    this.deps.failpoint(`host.${state}`);
    this.launch(r, { ...h, ...patch, phase, phaseRunId }, 'send');
  }

  private launch(r: RolloutRecord, h: RolloutHostRecord, mode: 'send' | 'reconcile'): void {
    const key = hostKey(r.id, h.hostId);
    const work = (mode === 'send' ? this.sendHostPhase(r, h) : this.reconcileHost(r, h))
      .catch((err: unknown) =>
        this.log.error('host phase failed in the controller', { rolloutId: r.id, hostId: h.hostId, err }),
      )
      .finally(() => {
        this.inflight.delete(key);
        this.poke();
      });
    this.inflight.set(key, work);
  }

  private async sendHostPhase(r: RolloutRecord, h: RolloutHostRecord): Promise<void> {
    const host = await this.deps.store.getHost(h.hostId);
    if (host === undefined || h.phase === null || h.phaseRunId === null) return;
    const prepared = this.recipeOf(r);
    const result = await sendPhase(this.deps, host, prepared, {
      phase: h.phase as PhaseName,
      runId: runIdFor(r.id, h.state),
      phaseRunId: h.phaseRunId,
      roles: h.role === '' ? [] : [h.role],
      vars: this.varsFor(r, h, prepared),
      timeoutMs: 0,
      rolloutId: r.id,
      readRuns: relatedRunIds(r.id, runIdFor(r.id, h.state)),
    });
    await this.onPhaseResult(r, h, result);
  }

  /** A phase in flight that no promise of this process waits for: ask the agent's journal. */
  private async reconcileHost(r: RolloutRecord, seen: RolloutHostRecord): Promise<void> {
    // The snapshot may predate an answer that landed meanwhile: act only on the row as it is now.
    const h = (await rolloutHosts(this.deps.store.db, r.id)).find((x) => x.hostId === seen.hostId);
    if (h === undefined || h.phase === null || h.phaseRunId !== seen.phaseRunId) return;
    const host = await this.deps.store.getHost(h.hostId);
    if (host === undefined) return;
    // Each of these returns ends the promise and pokes the next tick, which reconciles again at
    // once: without a pause an offline host kept the controller spinning on the store.
    if (!this.deps.gateway.isOnline(h.hostId)) {
      if (!h.unknown) await this.markUnknown(r, h, 'offline with a phase in flight');
      return delay(500);
    }
    const journal = await this.queryJournal(host.id);
    if (journal === undefined) return delay(500);
    const runId = runIdFor(r.id, h.state);
    if (journal !== null && journal.runId === runId && journal.phase === h.phase) {
      if (journal.state === 'running') {
        if (h.unknown)
          await this.write(r, 'rollout.host.known', { hostId: h.hostId }, (tx) =>
            patchHost(tx, r.id, h.hostId, { unknown: false, reason: 'still running on the agent' }),
          );
        await delay(500);
        return;
      }
      if (journal.state === 'succeeded' || journal.state === 'failed') {
        const ok = journal.state === 'succeeded';
        if (h.phaseRunId !== null)
          await recordPhaseRunEnd(this.deps.store.db, {
            id: h.phaseRunId,
            hostId: h.hostId,
            state: ok ? 'succeeded' : 'failed',
            seq: 0,
            resumedJson: JSON.stringify({ reconciled: 'from the agent journal' }),
            steps: await this.stepsFromJournal(r, h.phase as PhaseName, h.phaseRunId, journal.completed),
            nowMs: this.deps.now(),
            rolloutId: r.id,
          });
        await this.onPhaseResult(r, h, { kind: 'answered', report: reconciledReport(h, runId, ok) });
        return;
      }
    }
    // Never received, or interrupted by an agent crash: send again (write-ahead a new phase run).
    const phaseRunId = randomUUID();
    await this.write(
      r,
      'rollout.host.resent',
      { hostId: h.hostId, phase: h.phase, journal: journal?.state ?? null },
      async (tx, now) => {
        await patchHost(tx, r.id, h.hostId, { phaseRunId, unknown: false });
        // The earlier send never got its answer: it ends as lost, the new one takes over.
        if (h.phaseRunId !== null)
          await tx.run(
            "UPDATE phase_runs SET state = 'lost', finished_at = ? WHERE id = ? AND state = 'sent'",
            [now, h.phaseRunId],
          );
        await this.insertRun(tx, r, h.hostId, h.phase as PhaseName, runId, phaseRunId);
      },
    );
    await this.sendHostPhase(r, { ...h, phaseRunId, unknown: false });
  }

  private async onPhaseResult(
    r: RolloutRecord,
    h: RolloutHostRecord,
    result: PhaseCallResult,
  ): Promise<void> {
    if (result.kind === 'lost' || (result.kind === 'refused' && result.code === 'PHASE_BUSY')) {
      await this.markUnknown(r, h, `${result.code}: ${result.message}`);
      return;
    }
    const ok = result.kind === 'answered' && result.report.ok;
    const why = result.kind === 'answered' ? failureOf(result.report) : `${result.code}: ${result.message}`;
    const target = r.spec.target;
    const now = this.deps.now();
    const report = result.kind === 'answered' ? result.report : undefined;
    const backupId = report?.steps.find((s) => s.backupId !== '')?.backupId;
    const next: { state: HostState; app: HostAppPatch; then?: HostState } = ((): {
      state: HostState;
      app: HostAppPatch;
      then?: HostState;
    } => {
      switch (h.state) {
        case 'staging':
          return ok ? { state: 'staged', app: { staged: target } } : { state: 'stage-failed', app: {} };
        case 'upgrading':
          return ok
            ? { state: 'upgrading', app: backupId ? { lastBackupId: backupId } : {}, then: 'verifying' }
            : { state: 'upgrading', app: {}, then: 'rolling-back' };
        case 'verifying':
          return ok
            ? {
                state: 'upgraded',
                app: { installed: target, maintenance: false, lastHealth: 'ok', lastHealthAt: now },
              }
            : {
                state: 'verifying',
                app: { lastHealth: `failed: ${why}`, lastHealthAt: now },
                then: 'rolling-back',
              };
        case 'final-verifying':
          return ok
            ? { state: 'verified', app: { installed: target, lastHealth: 'ok', lastHealthAt: now } }
            : { state: 'verify-failed', app: { lastHealth: `failed: ${why}`, lastHealthAt: now } };
        case 'rolling-back':
          return ok
            ? { state: 'rolled-back', app: { maintenance: false } }
            : { state: 'rollback-failed', app: {} };
        default:
          throw new Error(`host ${h.hostId} answered in state ${h.state}`);
      }
    })();
    const patch: HostPatch = {
      phase: null,
      phaseRunId: null,
      unknown: false,
      // A rolled-back host keeps why its upgrade or verify failed: status must still say why.
      reason: ok ? (h.state === 'rolling-back' ? h.reason : '') : why,
      state: next.state,
    };
    if (h.state === 'staging' && ok) patch.staged = target;
    if (h.state === 'verifying' && ok) patch.installed = target;
    if (h.state === 'upgrading') patch.downtimeMs = Math.max(0, now - (h.startedAt ?? now));
    const then = next.then;
    const thenPhase = then === undefined ? undefined : PHASE_OF_STATE[then];
    const thenRunId = randomUUID();
    if (then !== undefined && thenPhase !== undefined)
      Object.assign(patch, { state: then, phase: thenPhase, phaseRunId: thenRunId });
    else patch.finishedAt = now;
    const kind = `rollout.host.${h.state}.${ok ? 'ok' : 'failed'}`;
    await this.write(r, kind, { hostId: h.hostId, reason: ok ? undefined : why, next: then }, async (tx) => {
      await patchHost(tx, r.id, h.hostId, patch);
      await this.hostApp(tx, r, h.hostId, next.app, now);
      // The next phase of the chain is written in the same transaction: a crash between the
      // two can never leave a host between phases with nothing in flight.
      if (then !== undefined && thenPhase !== undefined)
        await this.insertRun(tx, r, h.hostId, thenPhase, runIdFor(r.id, then), thenRunId);
    });
    // A host that rests after this answer (staged, upgraded, rolled-back...) is a transition too.
    if (then === undefined || thenPhase === undefined) this.deps.failpoint(`host.${next.state}`);
    if (then !== undefined && thenPhase !== undefined) {
      this.deps.failpoint(`host.${then}`);
      await this.sendHostPhase(r, {
        ...h,
        state: then,
        phase: thenPhase,
        phaseRunId: thenRunId,
        unknown: false,
        reason: patch.reason ?? '',
      });
    }
  }

  private async markUnknown(r: RolloutRecord, h: RolloutHostRecord, why: string): Promise<void> {
    await this.write(r, 'rollout.host.unknown', { hostId: h.hostId, reason: why }, (tx) =>
      patchHost(tx, r.id, h.hostId, { unknown: true, reason: why }),
    );
  }

  // ---- finalize ----------------------------------------------------------------------------

  private launchFinalize(r: RolloutRecord, mode: 'send' | 'reconcile'): void {
    const key = finalizeKey(r.id);
    const work = this.runFinalize(r, mode)
      .catch((err: unknown) => this.log.error('finalize failed in the controller', { rolloutId: r.id, err }))
      .finally(() => {
        this.inflight.delete(key);
        this.poke();
      });
    this.inflight.set(key, work);
  }

  private async runFinalize(seen: RolloutRecord, mode: 'send' | 'reconcile'): Promise<void> {
    const r = await getRollout(this.deps.store.db, seen.id);
    if (r.finalizeState !== 'sent') return;
    const hostId = r.finalizeHost;
    if (hostId === null) return;
    const host = await this.deps.store.getHost(hostId);
    const h = (await rolloutHosts(this.deps.store.db, r.id)).find((x) => x.hostId === hostId);
    if (host === undefined || h === undefined) return;
    const runId = agentRunId(r.id, 'finalize');
    if (mode === 'reconcile') {
      if (!this.deps.gateway.isOnline(hostId)) {
        await this.setReason(r, `finalize host ${hostId} is offline; waiting for it`);
        return delay(500);
      }
      const journal = await this.queryJournal(hostId);
      if (journal === undefined) return delay(500);
      if (journal !== null && journal.runId === runId && journal.phase === 'finalize') {
        if (journal.state === 'running') return delay(500);
        if (journal.state === 'succeeded' || journal.state === 'failed') {
          // As for a host phase: the phase run ends in the store too, not only the rollout.
          const ok = journal.state === 'succeeded';
          const row = await this.lastFinalizeRun(runId);
          if (row !== undefined)
            await recordPhaseRunEnd(this.deps.store.db, {
              id: row.id,
              hostId,
              state: ok ? 'succeeded' : 'failed',
              seq: 0,
              resumedJson: JSON.stringify({ reconciled: 'from the agent journal' }),
              steps: await this.stepsFromJournal(r, 'finalize', row.id, journal.completed),
              nowMs: this.deps.now(),
              rolloutId: r.id,
            });
          return this.onFinalizeResult(r, ok, 'from the agent journal');
        }
      }
    }
    const phaseRunId = randomUUID();
    if (mode === 'reconcile') {
      await this.write(r, 'rollout.finalize.resent', { hostId }, (tx) =>
        this.insertRun(tx, r, hostId, 'finalize', runId, phaseRunId),
      );
    } else {
      const row = await this.lastFinalizeRun(runId);
      if (row === undefined) return;
      return this.sendFinalize(r, h, row.id);
    }
    return this.sendFinalize(r, h, phaseRunId);
  }

  private lastFinalizeRun(runId: string): Promise<{ id: string } | undefined> {
    return this.deps.store.db.get<{ id: string }>(
      "SELECT id FROM phase_runs WHERE run_id = ? AND phase = 'finalize' ORDER BY started_at DESC LIMIT 1",
      [runId],
    );
  }

  private async sendFinalize(r: RolloutRecord, h: RolloutHostRecord, phaseRunId: string): Promise<void> {
    const host = await this.deps.store.getHost(h.hostId);
    if (host === undefined) return;
    const prepared = this.recipeOf(r);
    const result = await sendPhase(this.deps, host, prepared, {
      phase: 'finalize',
      runId: agentRunId(r.id, 'finalize'),
      phaseRunId,
      roles: h.role === '' ? [] : [h.role],
      vars: this.varsFor(r, h, prepared),
      timeoutMs: 0,
      rolloutId: r.id,
      readRuns: relatedRunIds(r.id, agentRunId(r.id, 'finalize')),
    });
    if (result.kind === 'lost' || (result.kind === 'refused' && result.code === 'PHASE_BUSY')) {
      await this.setReason(r, `finalize answer lost (${result.code}); reconciling with ${h.hostId}`);
      return;
    }
    const ok = result.kind === 'answered' && result.report.ok;
    await this.onFinalizeResult(
      r,
      ok,
      result.kind === 'answered' ? failureOf(result.report) : `${result.code}: ${result.message}`,
    );
  }

  private async onFinalizeResult(r: RolloutRecord, ok: boolean, why: string): Promise<void> {
    const current = await getRollout(this.deps.store.db, r.id);
    if (current.finalizeState !== 'sent') return;
    // An abort written while finalize ran stands: record the outcome, do not move the rollout on.
    const move: RolloutPatch =
      current.state !== 'finalizing'
        ? {}
        : ok
          ? { state: 'verifying', reason: '' }
          : { state: 'held', reason: `finalize failed: ${why}; retry or rollback` };
    await this.setRollout(current, { finalizeState: ok ? 'succeeded' : 'failed', ...move });
  }

  // ---- operator actions --------------------------------------------------------------------

  async act(
    id: string,
    action: 'pause' | 'resume' | 'abort' | 'retry' | 'rollback',
    actor: string,
  ): Promise<RolloutRecord> {
    const r = await getRollout(this.deps.store.db, id);
    const refuse = (why: string): never => {
      throw new ConvoyError(
        'ROLLOUT_STATE',
        `rollout ${id} is ${r.state}${r.paused ? ' (paused)' : ''}: ${why}`,
      );
    };
    const finished = ['succeeded', 'aborted', 'rolled-back', 'failed'].includes(r.state);
    if (finished) refuse(`${action} does not apply to a finished rollout`);
    const patch: RolloutPatch = {};
    const hostResets: { hostId: string; state: HostState }[] = [];
    let toleratedMore = 0;
    switch (action) {
      case 'pause':
        if (r.paused) refuse('it is already paused');
        Object.assign(patch, { paused: true, pauseUntil: null, reason: `paused by ${actor}` });
        break;
      case 'resume': {
        if (r.state === 'halted') {
          const hosts = await rolloutHosts(this.deps.store.db, id);
          for (const h of hosts.filter((x) => x.state === 'stage-failed'))
            hostResets.push({ hostId: h.hostId, state: 'pending' });
          Object.assign(patch, {
            state: r.stagedAt === null ? 'staging' : 'upgrading',
            paused: false,
            pauseUntil: null,
            reason: `resumed by ${actor}`,
          });
          // A resumed halt tolerates the failures it halted on, not more of them.
          toleratedMore = hosts.filter((h) => FAILED.includes(h.state) && h.state !== 'stage-failed').length;
        } else if (r.paused) {
          Object.assign(patch, { paused: false, pauseUntil: null, reason: `resumed by ${actor}` });
        } else refuse('it is neither paused nor halted');
        break;
      }
      case 'abort':
        if (r.state === 'aborting') refuse('it is already aborting');
        Object.assign(patch, { state: 'aborting', reason: `aborted by ${actor}; hosts in flight finish` });
        break;
      case 'retry': {
        if (r.state !== 'held') refuse('retry applies to a held rollout');
        const hosts = await rolloutHosts(this.deps.store.db, id);
        for (const h of hosts) {
          if (h.state === 'rolled-back') hostResets.push({ hostId: h.hostId, state: 'staged' });
          if (h.state === 'verify-failed') hostResets.push({ hostId: h.hostId, state: 'upgraded' });
        }
        if (r.finalizeState === 'failed') Object.assign(patch, { state: 'finalizing', finalizeState: null });
        else if (hostResets.some((x) => x.state === 'staged')) Object.assign(patch, { state: 'upgrading' });
        else Object.assign(patch, { state: r.finalizeState === 'succeeded' ? 'verifying' : 'finalizing' });
        patch.reason = `retried by ${actor}`;
        break;
      }
      case 'rollback':
        if (r.state !== 'held' && r.state !== 'halted')
          refuse('rollback applies to a held or halted rollout');
        Object.assign(patch, { state: 'rolling-back', reason: `rollback requested by ${actor}` });
        break;
    }
    await this.write(
      r,
      `rollout.${action}`,
      { actor },
      async (tx, now) => {
        // The engine may have moved the rollout since it was read (to succeeded, say): act only
        // on the state the operator saw, or say so.
        if (!(await this.unchanged(tx, r)))
          throw new ConvoyError(
            'ROLLOUT_STATE',
            `rollout ${id} changed while ${action} was asked; look at it again`,
          );
        await patchRollout(tx, id, patch, now);
        for (const x of hostResets) await patchHost(tx, id, x.hostId, { state: x.state, reason: '' });
        if (toleratedMore > 0) {
          const spec = { ...r.spec, maxFailures: r.spec.maxFailures + toleratedMore };
          await tx.run('UPDATE rollouts SET spec_json = ? WHERE id = ?', [JSON.stringify(spec), id]);
        }
      },
      actor,
    );
    // The operator's transition is durable before the engine acts on it or the caller hears back.
    if (patch.state !== undefined) this.deps.failpoint(`rollout.${patch.state}`);
    this.poke();
    return getRollout(this.deps.store.db, id);
  }

  // ---- helpers -----------------------------------------------------------------------------

  private recipeOf(r: RolloutRecord): PreparedRecipe {
    let prepared = this.recipes.get(r.id);
    if (prepared === undefined) {
      prepared = prepareRecipe(r.spec.recipeYaml, r.spec.recipeLabel);
      this.recipes.set(r.id, prepared);
    }
    return prepared;
  }

  private varsFor(r: RolloutRecord, h: RolloutHostRecord, prepared: PreparedRecipe): Record<string, string> {
    const installed = h.installed === '' ? {} : { installed: h.installed };
    return placeholderValues(
      prepared.recipe,
      { target: r.spec.target, ...installed },
      varsOf(prepared.recipe, h.vars),
    );
  }

  private async queryJournal(hostId: string): Promise<JournalView | null | undefined> {
    const host = await this.deps.store.getHost(hostId);
    if (host === undefined) return undefined;
    const [answer] = await this.deps.gateway.dispatch([host], 'status', {}, 10_000);
    const outcome = answer?.outcome;
    if (outcome?.outcome !== 'ok') return undefined;
    const j = outcome.result.body['phaseJournal'];
    if (typeof j !== 'object' || j === null) return null;
    const v = j as Record<string, unknown>;
    const completed = Array.isArray(v['completed']) ? v['completed'] : [];
    return {
      runId: typeof v['runId'] === 'string' ? v['runId'] : '',
      phase: typeof v['phase'] === 'string' ? v['phase'] : '',
      state: typeof v['state'] === 'string' ? v['state'] : '',
      completed: completed.filter((x): x is string => typeof x === 'string').slice(0, 1000),
    };
  }

  /**
   * The steps of `phase` the agent's journal lists as completed that the store has no result for
   * (they ended while no controller listened): recorded as ran and ok, marked as from the journal.
   */
  private async stepsFromJournal(
    r: RolloutRecord,
    phase: PhaseName,
    phaseRunId: string,
    completed: readonly string[],
  ): Promise<WireStepReport[]> {
    const recipe = this.recipeOf(r).recipe;
    const steps = phase === 'finalize' ? (recipe.phases.finalize?.steps ?? []) : recipe.phases[phase];
    // Known: recorded for this send, or ran on this host in an earlier send of the same run and
    // phase (a step done before is not a second run). The run id is shared by every host.
    const rows = await this.deps.store.db.all<{ step_id: string }>(
      `SELECT sr.step_id FROM step_results sr JOIN phase_runs pr ON pr.id = sr.phase_run_id
        WHERE (pr.run_id, pr.host_id) = (SELECT run_id, host_id FROM phase_runs WHERE id = ?) AND pr.phase = ?
          AND (sr.phase_run_id = ? OR sr.status = 'ran')`,
      [phaseRunId, phase, phaseRunId],
    );
    const known = new Set(rows.map((row) => row.step_id));
    return steps
      .filter((st) => completed.includes(st.id) && !known.has(st.id))
      .map((st) => ({
        stepId: st.id,
        type: st.type,
        status: 'ran',
        attempts: 0,
        ok: true,
        exitCode: -1,
        durationMs: 0,
        outputTail: '(from the agent journal: this step ended while the controller was away)',
        backupId: '',
        versions: [],
        errorCode: '',
        errorMessage: '',
      }));
  }

  private async insertRun(
    tx: Tx,
    r: RolloutRecord,
    hostId: string,
    phase: PhaseName,
    runId: string,
    id: string,
  ): Promise<void> {
    const prepared = this.recipeOf(r);
    await insertPhaseRun(
      tx,
      {
        id,
        runId,
        hostId,
        recipe: prepared.recipe.name,
        digest: prepared.digest,
        phase,
        nowMs: this.deps.now(),
        rolloutId: r.id,
      },
      'controller',
    );
  }

  private hostApp(tx: Tx, r: RolloutRecord, hostId: string, patch: HostAppPatch, now: number): Promise<void> {
    return patchHostApp(tx, hostId, { deployment: r.deployment, application: r.spec.recipeName }, patch, now);
  }

  /** Writes a transition decided from `r`; false (nothing written) when the rollout moved since. */
  private async setRollout(r: RolloutRecord, patch: RolloutPatch): Promise<boolean> {
    const kind =
      patch.state !== undefined && patch.state !== r.state ? `rollout.${patch.state}` : 'rollout.updated';
    const written = await this.write(r, kind, { reason: patch.reason }, async (tx, now) => {
      if (!(await this.unchanged(tx, r))) return false;
      await patchRollout(tx, r.id, patch, now);
      return true;
    });
    if (written && patch.state !== undefined) this.deps.failpoint(`rollout.${patch.state}`);
    // The new state may allow the next move at once: look again right after this tick.
    if (written) this.again = true;
    return written;
  }

  /**
   * Whether the rollout is still in the state (and pause) it was read in. The engine decides from a
   * read made before its write, and an operator's abort, pause or resume may be written in between:
   * that must win, so a transition or a start decided from the older read is dropped (the next
   * tick decides again from the new state).
   */
  private async unchanged(tx: Tx, r: RolloutRecord): Promise<boolean> {
    const row = await tx.get<{ state: string; paused: number }>(
      'SELECT state, paused FROM rollouts WHERE id = ?',
      [r.id],
    );
    return row !== undefined && row.state === r.state && row.paused === (r.paused ? 1 : 0);
  }

  /** The reason shown in status; written only when it changes, without an event (it is not a transition). */
  private async setReason(r: RolloutRecord, reason: string): Promise<void> {
    if (r.reason === reason) return;
    await this.deps.store.db.write((tx) => patchRollout(tx, r.id, { reason }, this.deps.now()));
  }

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
      // `change` answers false to write nothing, event included.
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

interface JournalView {
  readonly runId: string;
  readonly phase: string;
  readonly state: string;
  /** Step ids the journal's run completed (every phase of the run). */
  readonly completed: readonly string[];
}

function runIdFor(rolloutId: string, state: HostState): string {
  if (state === 'staging') return agentRunId(rolloutId, 'stage');
  if (state === 'final-verifying') return agentRunId(rolloutId, 'final-verify');
  return agentRunId(rolloutId, 'upgrade');
}

function hostKey(rolloutId: string, hostId: string): string {
  return `${rolloutId}/${hostId}`;
}

function finalizeKey(rolloutId: string): string {
  return `${rolloutId}/finalize`;
}

function failureOf(report: WirePhaseReport): string {
  const failed = report.steps.find((s) => s.status === 'ran' && !s.ok);
  if (failed !== undefined)
    return `${failed.stepId}: ${failed.errorCode || 'failed'} ${failed.errorMessage}`.trim();
  if (report.resumed !== '') return `resume decided: ${report.resumed}`;
  return report.ok ? '' : 'the phase failed';
}

function reconciledReport(h: RolloutHostRecord, runId: string, ok: boolean): WirePhaseReport {
  return {
    runId,
    hostId: h.hostId,
    recipe: '',
    digest: '',
    phase: h.phase ?? '',
    ok,
    resumed: '',
    steps: [],
    seq: 0,
    phaseRunId: h.phaseRunId ?? '',
    installed: '',
    available: [],
  };
}

function withoutUndefined(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
