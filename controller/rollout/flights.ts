/**
 * Phases in flight: sending a host's phase or the rollout's finalize, taking its answer, and
 * reconciling a phase the store says is in flight that no promise of this process waits for
 * (after a restart, or a lost answer). Reconcile is written once, for hosts and finalize alike:
 * a `Flight` says how each differs (what it re-reads, what an answer does).
 *
 * Two bounds keep a flight from sending forever (loop-guard.ts): an interrupted phase is re-sent
 * at most MAX_PHASE_RESENDS times before the host fails with PHASE_LOOP, and a PHASE_BUSY answer
 * is waited out with a jittered backoff rather than asked again at once.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../shared/logger';
import { parsePhaseJournalSummary } from '../../shared/phase-contract';
import type { PhaseName } from '../../shared/recipe/types';
import { formatProblem } from '../../shared/schema';
import type { WirePhaseReport, WireStepReport } from '../../proto/wire';
import type { OperatorDeps } from '../deps';
import type { PreparedRecipe } from '../phase/recipe';
import { sendPhase, type PhaseCallResult } from '../phase/send';
import { knownStepIds, latestPhaseRunId, recordPhaseRunEnd, reportedStepVersions } from '../store/phase-runs';
import { pointStepRan } from './held-host';
import { decideHostResult, type PhaseOutcome } from './host-results';
import { BUSY_BACKOFF, decideBusyWait, decideResend, type BusyBackoff } from './loop-guard';
import { agentRunId, relatedRunIds, type RolloutHostRecord, type RolloutRecord } from './model';
import { rebootMarkOf } from './reboot-store';
import { decideRebootWait, isRebootingReason } from './reboot-wait';
import { decideReconcile, type JournalView } from './reconcile';
import { getRollout, rolloutHosts } from './rollout-store';
import { hostRunId, hostSend, type PhaseSend, type RolloutWriter } from './rollout-writer';
import { decideFinalizeResult } from './transitions';

export interface FlightDeps extends OperatorDeps {
  readonly writer: RolloutWriter;
  readonly recipeOf: (r: RolloutRecord) => PreparedRecipe;
  readonly varsFor: (r: RolloutRecord, h: RolloutHostRecord) => Record<string, string>;
  /** Called when a flight ends: the engine looks again. */
  readonly poke: () => void;
  /** The jitter of PHASE_BUSY waits, [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** How PHASE_BUSY answers are waited out. Default BUSY_BACKOFF. */
  readonly busyBackoff?: BusyBackoff;
}

/** How often a reconcile that must wait (offline host, phase still running) looks again. */
const RECONCILE_PAUSE_MS = 500;

/** One phase in flight, as reconcile sees it. */
interface Flight {
  readonly r: RolloutRecord;
  readonly host: RolloutHostRecord;
  readonly send: PhaseSend;
  readonly finalize: boolean;
  /** False when the store moved on since this flight was read (an answer landed meanwhile). */
  readonly current: boolean;
}

export class PhaseFlights {
  private readonly inflight = new Map<string, Promise<void>>();
  /** PHASE_BUSY answers in a row, per flight key: in memory, a restarted controller starts over. */
  private readonly busyWaits = new Map<string, number>();
  private readonly log: Logger;
  private stopped = false;

  constructor(private readonly deps: FlightDeps) {
    this.log = deps.log.child({ component: 'rollout' });
  }

  get size(): number {
    return this.inflight.size;
  }

  /** Whether a promise of this process waits for the host's phase (or, for 'finalize', the finalize). */
  has(r: RolloutRecord, hostIdOrFinalize: string): boolean {
    return this.inflight.has(`${r.id}/${hostIdOrFinalize}`);
  }

  /** From now on answers are not written: the store keeps the phases in flight for reconcile. */
  stop(): void {
    this.stopped = true;
  }

  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight.values()]);
  }

  /** Sends a host's phase (written ahead), or reconciles it. */
  launchHost(r: RolloutRecord, h: RolloutHostRecord, mode: 'send' | 'reconcile'): void {
    this.launch(`${r.id}/${h.hostId}`, async () => {
      const flight = await this.hostFlight(r, h, mode);
      if (flight === undefined) return;
      if (mode === 'send') return this.sendAndTake(flight);
      return this.reconcile(flight);
    });
  }

  /** Sends the rollout's finalize (written ahead), or reconciles it. */
  launchFinalize(r: RolloutRecord, mode: 'send' | 'reconcile'): void {
    this.launch(`${r.id}/finalize`, async () => {
      const flight = await this.finalizeFlight(r);
      if (flight === undefined) return;
      if (mode === 'send') return this.sendAndTake(flight);
      return this.reconcile(flight);
    });
  }

  private launch(key: string, work: () => Promise<void>): void {
    // One flight per host (and per finalize): the engine launches only what none waits for.
    if (this.inflight.has(key)) throw new Error(`a phase for ${key} is already in flight in this process`);
    const run = work()
      .catch((err: unknown) => this.log.error('phase failed in the controller', { key, err }))
      .finally(() => {
        this.inflight.delete(key);
        this.deps.poke();
      });
    this.inflight.set(key, run);
  }

  /** The host's row as it is now: a snapshot may predate an answer that landed meanwhile. */
  private async hostFlight(
    r: RolloutRecord,
    seen: RolloutHostRecord,
    mode: 'send' | 'reconcile',
  ): Promise<Flight | undefined> {
    const h =
      mode === 'send'
        ? seen
        : (await rolloutHosts(this.deps.store.db, r.id)).find((x) => x.hostId === seen.hostId);
    if (h === undefined || h.phase === null || h.phaseRunId === null) return undefined;
    const current = h.phaseRunId === seen.phaseRunId;
    return {
      r,
      host: h,
      finalize: false,
      current,
      send: { phase: h.phase as PhaseName, runId: hostRunId(r.id, h.state), phaseRunId: h.phaseRunId },
    };
  }

  private async finalizeFlight(seen: RolloutRecord): Promise<Flight | undefined> {
    const r = await getRollout(this.deps.store.db, seen.id);
    const hostId = r.finalizeHost;
    if (r.finalizeState !== 'sent' || hostId === null) return undefined;
    const h = (await rolloutHosts(this.deps.store.db, r.id)).find((x) => x.hostId === hostId);
    const runId = agentRunId(r.id, 'finalize');
    const phaseRunId = await latestPhaseRunId(this.deps.store.db, { runId, phase: 'finalize', hostId });
    if (h === undefined || phaseRunId === undefined) return undefined;
    return { r, host: h, finalize: true, current: true, send: { phase: 'finalize', runId, phaseRunId } };
  }

  private async sendAndTake(f: Flight): Promise<void> {
    const host = await this.deps.store.getHost(f.host.hostId);
    if (host === undefined) return;
    const prepared = this.deps.recipeOf(f.r);
    const result = await sendPhase(this.deps, host, prepared, {
      ...f.send,
      roles: f.host.role === '' ? [] : [f.host.role],
      vars: this.deps.varsFor(f.r, f.host),
      timeoutMs: 0,
      rolloutId: f.r.id,
      readRuns: relatedRunIds(f.r.id, f.send.runId),
    });
    await this.take(f, outcomeOf(result));
  }

  /** What an answer (or its absence) does: the host's result table, or finalize's. */
  private async take(f: Flight, outcome: PhaseOutcome): Promise<void> {
    if (this.stopped) return;
    if (outcome.kind === 'unknown' && outcome.busy === true) return this.waitOutBusy(f, 'resend');
    this.busyWaits.delete(flightKey(f));
    const { r, host: h } = f;
    if (f.finalize) {
      if (outcome.kind === 'unknown')
        return this.deps.writer.reason(
          r,
          `finalize answer lost (${outcome.why}); reconciling with ${h.hostId}`,
        );
      const current = await getRollout(this.deps.store.db, r.id);
      if (current.finalizeState !== 'sent') return;
      const ok = outcome.kind === 'ok';
      const finalizeSteps = this.deps.recipeOf(r).recipe.phases.finalize?.steps ?? [];
      const pastStep = outcome.kind === 'failed' ? pointStepRan(finalizeSteps, outcome.ran ?? []) : undefined;
      await this.deps.writer.transition(
        current,
        decideFinalizeResult(current.state, ok, ok ? '' : outcome.why, pastStep),
      );
      return;
    }
    if (outcome.kind === 'unknown') {
      if (await this.waitedForReboot(f)) return;
      return this.deps.writer.hostUnknown(r, h, true, outcome.why);
    }
    const next = decideHostResult(h, outcome, {
      target: r.spec.target,
      now: this.deps.now(),
      nextPhaseRunId: randomUUID(),
    });
    const prepared = this.deps.recipeOf(r);
    await this.deps.writer.hostResult(r, h, next, prepared);
    if (next.chained === undefined) return;
    const chainedHost = { ...h, ...next.hostPatch, state: next.chained.state } as RolloutHostRecord;
    await this.sendAndTake({
      ...f,
      host: chainedHost,
      send: hostSend(r.id, next.chained.state, chainedHost.phaseRunId ?? ''),
    });
  }

  /** Settles a flight nobody waits for with the agent's journal (reconcile.ts decides). */
  private async reconcile(f: Flight): Promise<void> {
    if (!f.current || this.stopped) return;
    const { r, host: h } = f;
    // Each wait ends the promise and pokes the next tick, which reconciles again: without a
    // pause an offline host kept the controller spinning on the store.
    const online = this.deps.gateway.isOnline(h.hostId);
    const journal = online ? await this.queryJournal(h.hostId) : undefined;
    const step = decideReconcile(online, journal, f.send);
    if ((step.kind === 'offline' || step.kind === 'no-answer') && (await this.waitedForReboot(f)))
      return delay(RECONCILE_PAUSE_MS);
    switch (step.kind) {
      case 'offline':
        if (f.finalize)
          await this.deps.writer.reason(r, `finalize host ${h.hostId} is offline; waiting for it`);
        else if (!h.unknown) await this.deps.writer.hostUnknown(r, h, true, 'offline with a phase in flight');
        return delay(RECONCILE_PAUSE_MS);
      case 'no-answer':
        return delay(RECONCILE_PAUSE_MS);
      case 'busy':
        return this.waitOutBusy(f, 'look-again');
      case 'running':
        if (h.unknown && !f.finalize)
          await this.deps.writer.hostUnknown(r, h, false, 'still running on the agent');
        return delay(RECONCILE_PAUSE_MS);
      case 'finished': {
        // The phase run ends in the store too, with the steps only the journal knows of.
        const steps = await this.stepsFromJournal(r, f.send, journal?.completed ?? []);
        await recordPhaseRunEnd(this.deps.store.db, {
          id: f.send.phaseRunId,
          hostId: h.hostId,
          state: step.ok ? 'succeeded' : 'failed',
          seq: 0,
          resumedJson: JSON.stringify({ reconciled: 'from the agent journal' }),
          steps,
          nowMs: this.deps.now(),
          rolloutId: r.id,
        });
        if (!step.ok) return this.take(f, { kind: 'failed', why: 'the phase failed' });
        // The report was lost: what the steps streamed is all that was read back (no installed).
        const versions = await reportedStepVersions(this.deps.store.db, f.send.phaseRunId, f.send.phase);
        return this.take(f, { kind: 'ok', versions });
      }
      case 'resend': {
        const resends = f.finalize ? r.finalizeResends : h.resends;
        const guard = decideResend(resends, f.send.phase);
        if (guard.kind === 'give-up') return this.take(f, { kind: 'failed', why: guard.why });
        // Back from its reboot: status no longer shows it rebooting while the phase goes on.
        if (!f.finalize && isRebootingReason(h.reason))
          await this.deps.writer.hostRebooting(r, h, 'back from its reboot; the phase goes on', true);
        const send = { ...f.send, phaseRunId: randomUUID() };
        const what = {
          hostId: h.hostId,
          finalize: f.finalize,
          journal: journal?.state ?? null,
          resends: resends + 1,
        };
        await this.deps.writer.resend(r, what, f.send.phaseRunId, send, this.deps.recipeOf(r));
        return this.sendAndTake({ ...f, host: { ...h, phaseRunId: send.phaseRunId, unknown: false }, send });
      }
    }
  }

  /**
   * The agent runs another phase: wait (the flight holds the host meanwhile, so nothing else is
   * sent to it), then send again (`resend`, after a PHASE_BUSY refusal) or let the next tick look at
   * the journal again (`look-again`). Past the last wait the host fails with PHASE_BUSY.
   */
  private async waitOutBusy(f: Flight, then: 'resend' | 'look-again'): Promise<void> {
    const key = flightKey(f);
    const waits = this.busyWaits.get(key) ?? 0;
    const d = decideBusyWait(waits, this.deps.random ?? Math.random, this.deps.busyBackoff ?? BUSY_BACKOFF);
    if (d.kind === 'give-up') {
      this.busyWaits.delete(key);
      return this.take(f, { kind: 'failed', why: d.why });
    }
    this.busyWaits.set(key, waits + 1);
    await this.deps.writer.busy(f.r, {
      hostId: f.host.hostId,
      finalize: f.finalize,
      waits: waits + 1,
      waitMs: d.ms,
    });
    await delay(d.ms);
    if (this.stopped || then === 'look-again') return;
    // The refused send ended as lost; a new phase run takes over. A busy answer is no interruption:
    // it does not count against the loop guard.
    const send = { ...f.send, phaseRunId: randomUUID() };
    const what = { hostId: f.host.hostId, finalize: f.finalize, journal: 'busy' };
    await this.deps.writer.resend(f.r, what, null, send, this.deps.recipeOf(f.r));
    return this.sendAndTake({ ...f, host: { ...f.host, phaseRunId: send.phaseRunId, unknown: false }, send });
  }

  /**
   * A phase inside a reboot step (reboot-wait.ts): true while the host may still come back (its
   * reason says so); past the step's bound the phase fails with REBOOT_TIMEOUT. False when the
   * phase reported no reboot: the usual lost-answer path applies.
   */
  private async waitedForReboot(f: Flight): Promise<boolean> {
    const mark = await rebootMarkOf(this.deps.store.db, f.send.phaseRunId, this.deps.now());
    const recipe = this.deps.recipeOf(f.r).recipe;
    const wait = decideRebootWait(mark, recipe, f.send.phase, this.deps.now());
    if (wait.kind === 'none') return false;
    if (wait.kind === 'timed-out') {
      this.log.warn('a rebooting host did not come back', { hostId: f.host.hostId, reason: wait.why });
      await this.take(f, { kind: 'failed', why: wait.why });
    } else if (f.finalize) {
      if (f.r.reason !== wait.reason) await this.deps.writer.reason(f.r, wait.reason);
    } else if (f.host.reason !== wait.reason || f.host.unknown) {
      await this.deps.writer.hostRebooting(f.r, f.host, wait.reason);
    }
    return true;
  }

  private async queryJournal(hostId: string): Promise<JournalView | null | undefined> {
    const host = await this.deps.store.getHost(hostId);
    if (host === undefined) return undefined;
    const [answer] = await this.deps.gateway.dispatch([host], 'status', {}, 10_000);
    const outcome = answer?.outcome;
    if (outcome?.outcome !== 'ok') return undefined;
    const parsed = parsePhaseJournalSummary(outcome.result.body['phaseJournal']);
    if (parsed.ok) return parsed.value;
    // Unreadable is no answer: reconcile asks again rather than guess (and never resends blindly).
    this.log.warn('the agent reported a malformed phase journal', {
      hostId,
      problems: parsed.problems.map(formatProblem),
    });
    return undefined;
  }

  /**
   * The steps of the phase the agent's journal lists as completed that the store has no result
   * for (they ended while no controller listened): recorded as ran and ok, marked as from the journal.
   */
  private async stepsFromJournal(
    r: RolloutRecord,
    send: PhaseSend,
    completed: readonly string[],
  ): Promise<WireStepReport[]> {
    const recipe = this.deps.recipeOf(r).recipe;
    const steps =
      send.phase === 'finalize' ? (recipe.phases.finalize?.steps ?? []) : recipe.phases[send.phase];
    const known = await knownStepIds(this.deps.store.db, send.phaseRunId, send.phase);
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
}

/** A phase call as the rollout sees it: ok, failed (and why), or unknown (lost, or agent busy). */
export function outcomeOf(result: PhaseCallResult): PhaseOutcome {
  if (result.kind === 'refused' && result.code === 'PHASE_BUSY')
    return { kind: 'unknown', why: `${result.code}: ${result.message}`, busy: true };
  if (result.kind === 'lost') return { kind: 'unknown', why: `${result.code}: ${result.message}` };
  if (result.kind === 'refused') return { kind: 'failed', why: `${result.code}: ${result.message}` };
  const report = result.report;
  if (!report.ok) {
    const point = result.pointOfNoReturn;
    const why = point === undefined ? failureOf(report) : `PAST_POINT_OF_NO_RETURN at step ${point.stepId}`;
    const ran = report.steps.filter((s) => s.status === 'ran').map((s) => s.stepId);
    return { kind: 'failed', why, ran, ...(point === undefined ? {} : { pointOfNoReturn: point }) };
  }
  // What the agent read back from the host: the versions the rollout records (read-back.ts).
  const backupId = report.steps.find((s) => s.backupId !== '')?.backupId;
  const versions = report.steps.flatMap((s) => s.versions);
  return {
    kind: 'ok',
    ...(backupId === undefined ? {} : { backupId }),
    ...(report.installed === '' ? {} : { installed: report.installed }),
    versions,
  };
}

function flightKey(f: Flight): string {
  return `${f.r.id}/${f.finalize ? 'finalize' : f.host.hostId}`;
}

function failureOf(report: WirePhaseReport): string {
  const failed = report.steps.find((s) => s.status === 'ran' && !s.ok);
  if (failed !== undefined)
    return `${failed.stepId}: ${failed.errorCode || 'failed'} ${failed.errorMessage}`.trim();
  if (report.resumed !== '') return `resume decided: ${report.resumed}`;
  return 'the phase failed';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
