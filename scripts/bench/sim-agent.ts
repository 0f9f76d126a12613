/**
 * A simulated agent for the rollout benchmark: the real agent's protocol (its own HTTP/2
 * connection, challenge, heartbeats, every command verified and journaled, every answer signed)
 * with commands that do no work. `phase` answers at once that each step of the phase ran and
 * succeeded, streaming one progress report per step first, as the real agent does; `check`
 * reports installed 1.0.0 and 1.0.1 available. What is left to measure is the controller.
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

export class SimAgent {
  private readonly client: grpc.Client;
  private readonly journal: SeqJournal;
  private readonly keyId: string;
  private readonly keys: ReadonlyMap<string, Uint8Array>;
  private stream: Stream | undefined;
  private stopped = false;
  private online = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private onlineWaiters: (() => void)[] = [];
  private lastPhase: PhaseJournalSummary | null = null;
  /** Steps this agent reported as run, over every phase. */
  stepsRun = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly key: KeyPair,
    private readonly log: Logger,
  ) {
    this.client = new ConnectOnlyClient(config.controller, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
    });
    this.journal = SeqJournal.open(config.stateDir);
    this.keyId = keyIdOf(config.controllerKey);
    this.keys = new Map([[this.keyId, config.controllerKey]]);
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
    this.stream?.cancel();
    this.client.close();
    this.journal.close();
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
    if (!verdict.ok) {
      this.log.warn('command refused', { code: verdict.code, reason: verdict.message });
      return;
    }
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
        return this.answerPhase(payload.body, reply);
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

  /** Every step of the phase "ran" and succeeded: one progress report per step, then the result. */
  private answerPhase(body: Readonly<Record<string, unknown>>, reply: Reply): void {
    // Checked against the same contract as the real agent's (shared/phase-contract.ts).
    const parsed = parsePhaseCommand(body);
    if (!parsed.ok) {
      const message = `phase command: ${parsed.problems.map(formatProblem).join('; ')}`;
      return reply('refusal', { code: 'COMMAND_REFUSED', message });
    }
    const { runId, phase, recipe, digest } = parsed.value;
    const steps = phaseSteps(recipe, phase).map((s): StepReport => ({
      stepId: s.id,
      type: s.type,
      status: 'ran',
      attempts: 1,
      ok: true,
      exitCode: 0,
      durationMs: 0,
      outputTail: '',
      backupId: null,
      versions: [],
      error: null,
    }));
    for (const step of steps) reply('progress', { runId, step } satisfies StepProgress);
    this.stepsRun += steps.length;
    const name = recipeName(recipe);
    this.lastPhase = {
      runId,
      recipe: name,
      phase,
      state: 'succeeded',
      step: null,
      completed: steps.map((s) => s.stepId),
    };
    const check = phase === 'check';
    const report: PhaseReport = {
      runId,
      phase,
      recipe: name,
      digest,
      ok: true,
      installed: check ? SIM_INSTALLED : null,
      available: check ? [...SIM_AVAILABLE] : null,
      resumed: null,
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
    this.log.warn('disconnected from controller; reconnecting in 1 s', { reason });
    setTimeout(() => this.start(), 1000).unref();
  }
}

interface RawStep {
  readonly id: string;
  readonly type: string;
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
