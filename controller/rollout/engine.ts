/**
 * How a rollout advances: one loop (`tick`) reads every unfinished rollout from the store, asks
 * the transition tables what to do (transitions.ts: pure, no I/O, no clock of its own), and
 * carries the commands out, one transaction each (rollout-writer.ts), before the phase they cause
 * is sent (flights.ts). Nothing lives only in memory but the promises of phases in flight, so a
 * controller killed at any instant resumes from the store: a phase in flight with no promise is
 * reconciled with the agent's journal (reconcile.ts).
 *
 * Order of a rollout (model.ts has the state diagram, docs/rollouts.md the story):
 *   scheduled ─(staging time)─▶ staging ─▶ staged ─(window, batches)─▶ upgrading ─▶ finalizing
 *   ─▶ verifying ─▶ succeeded; operator actions (actions.ts) pause, resume, abort, retry, roll back.
 */
import { randomUUID } from 'node:crypto';
import { ConvoyError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { placeholderValues } from '../../shared/recipe/interpolate';
import type { OperatorDeps } from '../deps';
import { prepareRecipe, type PreparedRecipe } from '../phase/recipe';
import { decideAction, type RolloutAction } from './actions';
import type { SchedulerClock } from './clock';
import type { Failpoint } from './failpoint';
import { PhaseFlights } from './flights';
import type { BusyBackoff } from './loop-guard';
import { agentRunId, type RolloutHostRecord, type RolloutRecord } from './model';
import { varsOf } from './plan';
import { getRollout, listRollouts, rolloutHosts } from './rollout-store';
import { hostSend, RolloutWriter } from './rollout-writer';
import { decideRollout, type RolloutCommand } from './transitions';

export interface EngineDeps extends OperatorDeps {
  readonly clock: SchedulerClock;
  readonly failpoint: Failpoint;
  /** How often the loop looks at unfinished rollouts. Default 500 ms. */
  readonly tickMs?: number;
  /** The jitter of PHASE_BUSY waits, [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** How PHASE_BUSY answers are waited out. Default BUSY_BACKOFF (loop-guard.ts). */
  readonly busyBackoff?: BusyBackoff;
}

export class RolloutEngine {
  private readonly advancing = new Set<string>();
  private readonly recipes = new Map<string, PreparedRecipe>();
  private readonly writer: RolloutWriter;
  private readonly flights: PhaseFlights;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private tickDone: Promise<void> = Promise.resolve();
  private ticks = 0;
  private again = false;
  private stopped = false;

  constructor(private readonly deps: EngineDeps) {
    this.log = deps.log.child({ component: 'rollout' });
    this.writer = new RolloutWriter(deps);
    this.flights = new PhaseFlights({
      ...deps,
      writer: this.writer,
      recipeOf: (r) => this.recipeOf(r),
      varsFor: (r, h) => this.varsFor(r, h),
      poke: () => this.poke(),
    });
  }

  start(): void {
    this.timer = setInterval(() => this.poke(), this.deps.tickMs ?? 500);
    this.timer.unref();
    this.poke();
  }

  /**
   * Stops starting work and waits for a tick under way. Phases in flight are left to the agents
   * (their journals keep them): their answers are no longer written, and the next controller
   * reconciles them from the store.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.flights.stop();
    await this.tickDone;
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
    this.tickDone = this.tick()
      .catch((err: unknown) => this.log.error('rollout tick failed', { err }))
      .finally(() => {
        this.ticking = false;
        if (this.again) setImmediate(() => this.poke());
      });
  }

  /**
   * How many times this engine has looked at every unfinished rollout since it started: it grows
   * while the engine is alive, so "N looks later nothing moved" can be waited for, not slept.
   */
  get completedTicks(): number {
    return this.ticks;
  }

  /** Resolves when no phase of a rollout is in flight in this process (tests, shutdown). */
  settled(): Promise<void> {
    return this.flights.settled();
  }

  /** The operator's action, durable before the engine acts on it or the caller hears back. */
  async act(id: string, action: RolloutAction, actor: string): Promise<RolloutRecord> {
    const r = await getRollout(this.deps.store.db, id);
    const result = decideAction(action, r, await rolloutHosts(this.deps.store.db, id), actor);
    // The engine may have moved the rollout since it was read (to succeeded, say): act only on
    // the state the operator saw, or say so.
    if (!(await this.writer.action(r, action, result, actor)))
      throw new ConvoyError(
        'ROLLOUT_STATE',
        `rollout ${id} changed while ${action} was asked; look at it again`,
      );
    this.poke();
    return getRollout(this.deps.store.db, id);
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
    this.ticks++;
    // Warp mode (demo, tests): nothing to wait for but the clock, so move the clock.
    if (this.flights.size === 0 && Number.isFinite(nextWake) && this.deps.clock.warpTo(nextWake)) {
      this.log.info('scheduler clock warped', { to: new Date(nextWake).toISOString() });
      setImmediate(() => this.poke());
    }
  }

  /** Moves one rollout as far as it can go now; returns when it next needs the clock (or Infinity). */
  private async advance(r: RolloutRecord): Promise<number> {
    const hosts = await rolloutHosts(this.deps.store.db, r.id);
    // Phases in flight that no promise of this process waits for: settle them with the agents.
    for (const h of hosts)
      if (h.phase !== null && !this.flights.has(r, h.hostId)) this.flights.launchHost(r, h, 'reconcile');
    if (r.finalizeState === 'sent' && !this.flights.has(r, 'finalize'))
      this.flights.launchFinalize(r, 'reconcile');
    const decision = decideRollout({
      rollout: r,
      hosts,
      now: this.deps.clock.now(),
      wallNow: this.deps.now(),
      online: new Set(hosts.map((h) => h.hostId).filter((id) => this.deps.gateway.isOnline(id))),
      hasFinalize: this.recipeOf(r).recipe.phases.finalize !== undefined,
    });
    let current = r;
    for (const command of decision.commands) {
      const next = await this.carryOut(current, hosts, command);
      // Moved since it was read: drop the rest, the next tick decides again from the store.
      if (next === undefined) break;
      current = next;
    }
    return decision.wakeAt;
  }

  /** One command, one transaction; the rollout as it is after it, or undefined when it was dropped. */
  private async carryOut(
    r: RolloutRecord,
    hosts: readonly RolloutHostRecord[],
    c: RolloutCommand,
  ): Promise<RolloutRecord | undefined> {
    switch (c.kind) {
      case 'reason':
        await this.writer.reason(r, c.reason);
        return { ...r, reason: c.reason };
      case 'patch': {
        if (!(await this.writer.transition(r, c.patch))) return undefined;
        // The new state may allow the next move at once: look again right after this tick.
        this.again = true;
        return { ...r, ...c.patch };
      }
      case 'start-host': {
        const h = hosts.find((x) => x.hostId === c.hostId);
        if (h === undefined) return r;
        const send = hostSend(r.id, c.state, randomUUID());
        const patch = await this.writer.startHost(r, h, c.state, send, this.recipeOf(r));
        if (patch === undefined) return undefined;
        this.flights.launchHost(r, { ...h, ...patch }, 'send');
        return r;
      }
      case 'start-finalize': {
        const send = {
          phase: 'finalize' as const,
          runId: agentRunId(r.id, 'finalize'),
          phaseRunId: randomUUID(),
        };
        if (!(await this.writer.startFinalize(r, c.hostId, send, this.recipeOf(r)))) return undefined;
        this.flights.launchFinalize(r, 'send');
        return { ...r, finalizeState: 'sent', finalizeHost: c.hostId };
      }
    }
  }

  private recipeOf(r: RolloutRecord): PreparedRecipe {
    let prepared = this.recipes.get(r.id);
    if (prepared === undefined) {
      prepared = prepareRecipe(r.spec.recipeYaml, r.spec.recipeLabel);
      this.recipes.set(r.id, prepared);
    }
    return prepared;
  }

  private varsFor(r: RolloutRecord, h: RolloutHostRecord): Record<string, string> {
    const { recipe } = this.recipeOf(r);
    const installed = h.installed === '' ? {} : { installed: h.installed };
    return placeholderValues(recipe, { target: r.spec.target, ...installed }, varsOf(recipe, h.vars));
  }
}
