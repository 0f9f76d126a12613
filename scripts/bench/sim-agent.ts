/**
 * A simulated agent: the real agent's protocol (its own HTTP/2 connection, challenge,
 * heartbeats, every command verified and journaled, every answer signed) with commands that do no
 * work. `phase` answers at once that each step of the phase ran and succeeded, streaming one
 * progress report per step first, as the real agent does, and keeps a phase journal that `status`
 * reports; `check` reports installed 1.0.0 and 1.0.1 available. Like a real agent with a pinned
 * recipe, download steps report the target as staged, and upgrade, finalize and verify read back
 * the target as installed (rollback: the version installed before), unless `installedAfter` says
 * otherwise.
 *
 * The rollout benchmark (./sim-swarm) takes it as it is: what is left to measure is the
 * controller. In-process controller tests (test/helpers/scripted-agent.ts) override `phaseOutcome`
 * to fail a phase or hold it until `release`; with the default, nothing is ever held.
 *
 * The real `Agent` (agent/agent.ts) takes its command handlers from a frozen table, so this is a
 * variant of it rather than a configuration of it; the fan-out benchmark keeps the real one.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { AgentConfig } from '../../agent/config';
import { collectHostFacts } from '../../agent/facts';
import { SeqJournal } from '../../agent/seq-journal';
import type { KeyPair } from '../../shared/ed25519';
import { signEnvelope, verifyEnvelope, type EnvelopePayload } from '../../shared/envelope';
import { keyIdOf, signChallenge } from '../../shared/keys';
import type { Logger } from '../../shared/logger';
import {
  parsePhaseCommand,
  type PhaseCommand,
  type PhaseJournalSummary,
  type PhaseReport,
  type StepProgress,
  type StepReport,
} from '../../shared/phase-contract';
import { formatProblem } from '../../shared/schema';
import { decodeControllerMessage, encodeAgentMessage } from '../../proto/stream-codec';
import type { OutgoingAgentMessage, WireControllerMessage, WireSignedEnvelope } from '../../proto/wire';

type Stream = grpc.ClientDuplexStream<OutgoingAgentMessage, WireControllerMessage>;

/** What a simulated host reports from `check`, and the journal entry `status` shows. */
export const SIM_INSTALLED = '1.0.0';
export const SIM_AVAILABLE = ['1.0.1'] as const;

const ConnectOnlyClient = grpc.makeGenericClientConstructor(
  {
    Connect: {
      path: '/convoy.v1.AgentService/Connect',
      requestStream: true,
      responseStream: true,
      requestSerialize: encodeAgentMessage,
      requestDeserialize: () => {
        throw new Error('the simulated agent never decodes its own requests');
      },
      responseSerialize: () => {
        throw new Error('the simulated agent never encodes controller messages');
      },
      responseDeserialize: decodeControllerMessage,
    },
  },
  'AgentService',
);

/** Parent -> simulated swarm: how many steps have your agents reported as run? */
export interface StepsQuery {
  readonly type: 'steps?';
}

/** Simulated swarm -> parent: the answer to a StepsQuery. */
export interface StepsAnswer {
  readonly type: 'steps';
  readonly stepsRun: number;
}

export function isStepsQuery(value: unknown): value is StepsQuery {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'steps?';
}

export function isStepsAnswer(value: unknown): value is StepsAnswer {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'steps';
}

type Reply = (type: 'progress' | 'result' | 'refusal', body: Record<string, unknown>) => void;

/** How a simulated phase ends, as `SimAgent.phaseOutcome` decides. */
export type PhaseOutcome =
  /** Every step ran and succeeded; answered at once. */
  | 'ok'
  /** The first step ran and failed (STEP_FAILED), the rest did not run; answered at once. */
  | 'fail'
  /** Running (so says the journal) until `release`; meanwhile other phases are refused PHASE_BUSY. */
  | 'hold'
  /** Refused PHASE_BUSY, as if another phase were running (the journal is left as it is). */
  | 'busy'
  /**
   * The agent dies inside the first step: its journal says the phase was interrupted there, its
   * stream drops, and it reconnects (as a supervised agent restarts); nothing is answered.
   */
  | 'crash';

export interface SimAgentOptions {
  /** Wait before opening a new stream after one ends, ms. Default 1000. */
  readonly reconnectDelayMs?: number;
  /** Channel options over ours (one subchannel per agent, 4 MiB messages). Default none. */
  readonly channelOptions?: grpc.ChannelOptions;
}

/** A phase command being answered, reduced to what its report needs. */
interface PhaseRun {
  readonly runId: string;
  readonly phase: PhaseReport['phase'];
  readonly recipe: string;
  readonly digest: string;
  readonly steps: readonly RawStep[];
  readonly installed: string | null;
  readonly staged: string | null;
  /** Set: a rollback refused past the point of no return (no step runs, the report says why). */
  readonly pointOfNoReturn: PhaseReport['pointOfNoReturn'];
}

/** A held phase and where to answer it: the stream that asked, or nowhere (its controller died). */
interface HeldPhase {
  readonly run: PhaseRun;
  readonly stream: Stream;
  readonly reply: Reply;
}

export class SimAgent {
  private readonly client: grpc.Client;
  private readonly journal: SeqJournal;
  private readonly keyId: string;
  private readonly keys: ReadonlyMap<string, Uint8Array>;
  private stream: Stream | undefined;
  private stopped = false;
  private online = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly reconnectDelayMs: number;
  private held: HeldPhase | undefined;
  private onlineWaiters: (() => void)[] = [];
  private lastPhase: PhaseJournalSummary | null = null;
  /** Steps this agent reported as run, over every phase. */
  stepsRun = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly key: KeyPair,
    private readonly log: Logger,
    options: SimAgentOptions = {},
  ) {
    this.client = new ConnectOnlyClient(config.controller, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      ...options.channelOptions,
    });
    this.reconnectDelayMs = options.reconnectDelayMs ?? 1000;
    this.journal = SeqJournal.open(config.stateDir);
    this.keyId = keyIdOf(config.controllerKey);
    this.keys = new Map([[this.keyId, config.controllerKey]]);
  }

  get hostId(): string {
    return this.config.hostId;
  }

  /** Whether a phase of this name is held, waiting for `release`. */
  holding(phase: string): boolean {
    return this.held?.run.phase === phase;
  }

  /** Ends the held phase (its journal says so) and answers it on the stream that asked, if still open. */
  release(phase: string, ok = true): void {
    const held = this.held;
    if (held === undefined || held.run.phase !== phase)
      throw new Error(`${this.hostId} holds no ${phase} phase`);
    this.held = undefined;
    this.endPhase(held.run, ok, held.stream === this.stream ? held.reply : () => undefined);
  }

  start(): void {
    if (this.stopped) return;
    const stream = (this.client as unknown as { Connect(): Stream }).Connect();
    this.stream = stream;
    stream.on('data', (msg: WireControllerMessage) => this.onMessage(stream, msg));
    stream.on('error', (err: grpc.ServiceError) => this.onClosed(stream, err.details || err.message));
    stream.on('end', () => this.onClosed(stream, 'stream ended by controller'));
    stream.write({ hello: { hostId: this.config.hostId, facts: collectHostFacts(this.config.hostname) } });
  }

  waitOnline(): Promise<void> {
    if (this.online) return Promise.resolve();
    return new Promise((resolve) => this.onlineWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    this.stream?.cancel();
    this.client.close();
    this.journal.close();
  }

  /**
   * How the phase `command` ends; called once for every well-formed phase command, before a busy
   * agent refuses it. The benchmark's agents answer every phase ok.
   */
  protected phaseOutcome(_command: PhaseCommand): PhaseOutcome {
    return 'ok';
  }

  /** A rollback this agent refuses past the point of no return, and why (null: none refused). */
  protected pastPointOfNoReturn(_command: PhaseCommand): PhaseReport['pointOfNoReturn'] {
    return null;
  }

  /** The installed version the phase's report reads back (null: none read). */
  protected installedAfter(command: PhaseCommand): string | null {
    if (command.phase === 'check') return SIM_INSTALLED;
    if (command.phase === 'rollback') return command.vars['installed'] ?? null;
    if (command.phase === 'download') return null;
    return command.vars['target'] ?? null;
  }

  /** A command failed verification and was dropped unanswered, as the real agent drops it. */
  protected refused(code: string, message: string): void {
    this.log.warn('command refused', { code, reason: message });
  }

  private onMessage(stream: Stream, msg: WireControllerMessage): void {
    switch (msg.body) {
      case 'challenge':
        stream.write({
          challengeResponse: {
            signature: signChallenge(msg.challenge.nonce, this.config.hostId, this.key.secretKey),
          },
        });
        return;
      case 'welcome': {
        this.online = true;
        const every = Math.max(100, msg.welcome.heartbeatIntervalMs || 10_000);
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => stream.write({ heartbeat: { agentTimeMs: Date.now() } }), every);
        for (const resolve of this.onlineWaiters.splice(0)) resolve();
        return;
      }
      case 'heartbeatAck':
        return;
      case 'envelope':
        return this.onCommand(stream, msg.envelope);
    }
  }

  private onCommand(stream: Stream, envelope: WireSignedEnvelope): void {
    const verdict = verifyEnvelope(envelope, {
      direction: 'command',
      keys: this.keys,
      audience: this.config.hostId,
      nowMs: Date.now(),
      skewMs: this.config.clockSkewMs,
      replay: this.journal.current,
    });
    if (!verdict.ok) return this.refused(verdict.code, verdict.message);
    const { payload, digest } = verdict;
    this.journal.accept(payload.seq, digest);
    const reply: Reply = (type, body) =>
      this.reply(
        this.stream ?? stream,
        payload.seq,
        type,
        body,
        type === 'progress' ? randomUUID() : payload.idempotencyKey,
      );
    switch (payload.type) {
      case 'ping':
        return reply('result', { command: 'ping', pong: true, agentTimeMs: Date.now() });
      case 'status':
        return reply('result', {
          command: 'status',
          hostId: this.config.hostId,
          hostname: this.config.hostname ?? '',
          phaseJournal: this.lastPhase,
        });
      case 'phase':
        return this.answerPhase(stream, payload.body, reply);
      default:
        this.reply(
          stream,
          payload.seq,
          'refusal',
          { code: 'COMMAND_REFUSED', message: `unknown command ${payload.type}` },
          payload.idempotencyKey,
        );
    }
  }

  /** Parses the command, then ends the phase as `phaseOutcome` says or holds it. */
  private answerPhase(stream: Stream, body: Readonly<Record<string, unknown>>, reply: Reply): void {
    // Checked against the same contract as the real agent's (shared/phase-contract.ts).
    const parsed = parsePhaseCommand(body);
    if (!parsed.ok) {
      const message = `phase command: ${parsed.problems.map(formatProblem).join('; ')}`;
      return reply('refusal', { code: 'COMMAND_REFUSED', message });
    }
    const command = parsed.value;
    const outcome = this.phaseOutcome(command);
    if (this.held !== undefined || outcome === 'busy') {
      const message = `phase run ${this.held?.run.runId ?? 'of another operator'} is still running`;
      return reply('refusal', { code: 'PHASE_BUSY', message });
    }
    const run: PhaseRun = {
      runId: command.runId,
      phase: command.phase,
      recipe: recipeName(command.recipe),
      digest: command.digest,
      steps: phaseSteps(command.recipe, command.phase),
      installed: this.installedAfter(command),
      staged: command.phase === 'download' ? (command.vars['target'] ?? null) : null,
      pointOfNoReturn: command.phase === 'rollback' ? this.pastPointOfNoReturn(command) : null,
    };
    if (outcome === 'crash') return this.crash(run);
    if (outcome !== 'hold') return this.endPhase(run, outcome === 'ok', reply);
    this.held = { run, stream, reply };
    this.lastPhase = journalEntry(run, 'running', run.steps[0]?.id ?? null, []);
  }

  /** Dies inside the first step of `run`: the journal says interrupted, the stream drops, it reconnects. */
  private crash(run: PhaseRun): void {
    this.lastPhase = journalEntry(run, 'interrupted', run.steps[0]?.id ?? null, []);
    const stream = this.stream;
    if (stream === undefined) return;
    this.onClosed(stream, 'the simulated agent crashed in a step');
    stream.cancel();
  }

  /** The journal entry ends, then the answer: one progress report per step that ran, the report last. */
  private endPhase(run: PhaseRun, ok: boolean, reply: Reply): void {
    // A rollback refused past the point of no return runs no step (agent/phase/runner.ts).
    const refused = run.pointOfNoReturn !== null && run.pointOfNoReturn !== undefined;
    const steps = refused
      ? []
      : ok
        ? run.steps.map((s) => stepSucceeded(s, run.staged))
        : run.steps.slice(0, 1).map(stepFailed);
    ok = ok && !refused;
    const completed = ok ? steps.map((s) => s.stepId) : [];
    this.lastPhase = journalEntry(run, ok ? 'succeeded' : 'failed', null, completed);
    for (const step of steps) reply('progress', { runId: run.runId, step } satisfies StepProgress);
    this.stepsRun += steps.length;
    const check = run.phase === 'check';
    const report: PhaseReport = {
      runId: run.runId,
      phase: run.phase,
      recipe: run.recipe,
      digest: run.digest,
      ok,
      installed: ok ? run.installed : null,
      available: check ? [...SIM_AVAILABLE] : null,
      resumed: null,
      ...(refused ? { pointOfNoReturn: run.pointOfNoReturn } : {}),
      steps,
    };
    reply('result', { command: 'phase', ...report });
  }

  private reply(
    stream: Stream,
    seq: number,
    type: string,
    body: Record<string, unknown>,
    idempotencyKey: string,
  ): void {
    const issuedAtMs = Date.now();
    const payload: EnvelopePayload = {
      v: 1,
      audience: this.keyId,
      seq,
      issuedAtMs,
      expiresAtMs: issuedAtMs + 60_000,
      nonce: randomBytes(16).toString('base64'),
      idempotencyKey,
      type,
      body,
    };
    stream.write({ envelope: signEnvelope(payload, 'result', this.key.secretKey) });
  }

  private onClosed(stream: Stream, reason: string): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    this.online = false;
    clearInterval(this.heartbeat);
    if (this.stopped) return;
    this.log.warn('disconnected from controller; reconnecting', { reason, delayMs: this.reconnectDelayMs });
    this.reconnectTimer = setTimeout(() => this.start(), this.reconnectDelayMs).unref();
  }
}

interface RawStep {
  readonly id: string;
  readonly type: string;
}

// Fields written out: spreading a shared part into the literal costs more than the rest of the answer.
function journalEntry(
  run: PhaseRun,
  state: PhaseJournalSummary['state'],
  step: string | null,
  completed: PhaseJournalSummary['completed'],
): PhaseJournalSummary {
  return { runId: run.runId, recipe: run.recipe, phase: run.phase, state, step, completed };
}

function stepSucceeded(s: RawStep, staged: string | null = null): StepReport {
  return {
    stepId: s.id,
    type: s.type,
    status: 'ran',
    attempts: 1,
    ok: true,
    exitCode: 0,
    durationMs: 0,
    outputTail: '',
    backupId: null,
    versions: staged === null ? [] : [staged],
    error: null,
  };
}

function stepFailed(s: RawStep): StepReport {
  const error = { code: 'STEP_FAILED', message: 'the simulated step was told to fail' };
  return { ...stepSucceeded(s), ok: false, exitCode: 1, error };
}

/** The steps of `phase` in the recipe data the command carries (finalize nests them under `steps`). */
function phaseSteps(recipe: unknown, phase: string): RawStep[] {
  const phases = field(recipe, 'phases');
  const raw = phase === 'finalize' ? field(field(phases, 'finalize'), 'steps') : field(phases, phase);
  if (!Array.isArray(raw)) return [];
  return raw.map((s: unknown) => ({ id: String(field(s, 'id')), type: String(field(s, 'type')) }));
}

function recipeName(recipe: unknown): string {
  const name = field(recipe, 'name');
  return typeof name === 'string' ? name : '';
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}
