/**
 * An agent with knobs, for in-process tests of the controller: the simulated agent of the
 * benchmark (scripts/bench/sim-agent.ts: the real protocol, every command verified against the
 * pinned key and journaled, every answer signed, a phase journal that `status` reports) with
 * `phase` commands answered as the test scripts them — ok, failed, or held until the test
 * releases them — and a record of what it received and what it refused.
 *
 * Why not the real `Agent` in-process: it keeps "the phase this process is running" in a module
 * global (agent/phase/summary.ts), so several real agents in one process refuse each other's
 * phases with PHASE_BUSY. One agent per process is what it was built for; this is the in-process
 * stand-in.
 */
import type { AgentConfig } from '../../agent/config';
import type { KeyPair } from '../../shared/ed25519';
import { silentLogger, type Logger } from '../../shared/logger';
import type { PhaseCommand, PhaseReport } from '../../shared/phase-contract';
import { SimAgent, type PhaseOutcome } from '../../scripts/bench/sim-agent';

export type { PhaseOutcome } from '../../scripts/bench/sim-agent';

/** A phase command as this agent received it. */
export interface ReceivedPhase {
  readonly runId: string;
  readonly phase: string;
}

/** A controller restarted on the same port is found again within a fraction of a second. */
const QUICK_RECONNECT = {
  reconnectDelayMs: 100,
  channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 200 },
} as const;

export class ScriptedAgent extends SimAgent {
  /** Every phase command received, in order (a resent phase appears twice). */
  readonly received: ReceivedPhase[] = [];
  /** When each of `received` arrived (Date.now()), in the same order. */
  readonly receivedAt: number[] = [];
  /** Commands this agent refused to act on (bad signature, replay...): a test expects none. */
  readonly protocolErrors: string[] = [];
  private readonly outcomes = new Map<string, PhaseOutcome>();
  private readonly scriptedOutcomes = new Map<string, PhaseOutcome[]>();
  private readonly installedReports = new Map<string, string | null>();
  private heldPoint: PhaseReport['pointOfNoReturn'] = null;

  constructor(config: AgentConfig, key: KeyPair, log: Logger = silentLogger) {
    super(config, key, log, QUICK_RECONNECT);
  }

  /** From now on, `phase` commands of this phase end so (default ok); `hold` waits for `release`. */
  behave(phase: string, outcome: PhaseOutcome): void {
    this.outcomes.set(phase, outcome);
  }

  /** The next `phase` commands of this phase end so, one each, in order; then `behave` applies again. */
  script(phase: string, outcomes: readonly PhaseOutcome[]): void {
    this.scriptedOutcomes.set(phase, [...outcomes]);
  }

  /** From now on, reports of this phase read back `version` as installed (null: nothing read). */
  reportInstalled(phase: string, version: string | null): void {
    this.installedReports.set(phase, version);
  }

  /**
   * From now on, rollbacks are refused past the point of no return, as the real agent does once
   * the upgrade started a step marked `pointOfNoReturn`: no step runs, the report names `point`.
   */
  refuseRollbackPast(point: NonNullable<PhaseReport['pointOfNoReturn']>): void {
    this.heldPoint = { ...point };
  }

  protected override pastPointOfNoReturn(_command: PhaseCommand): PhaseReport['pointOfNoReturn'] {
    return this.heldPoint;
  }

  protected override phaseOutcome(command: PhaseCommand): PhaseOutcome {
    this.received.push({ runId: command.runId, phase: command.phase });
    this.receivedAt.push(Date.now());
    const next = this.scriptedOutcomes.get(command.phase)?.shift();
    return next ?? this.outcomes.get(command.phase) ?? 'ok';
  }

  protected override installedAfter(command: PhaseCommand): string | null {
    const scripted = this.installedReports.get(command.phase);
    return scripted !== undefined ? scripted : super.installedAfter(command);
  }

  protected override refused(code: string, message: string): void {
    this.protocolErrors.push(`${code}: ${message}`);
    super.refused(code, message);
  }
}
