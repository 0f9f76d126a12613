/**
 * An agent with knobs, for in-process tests of the controller: the real protocol (its own HTTP/2
 * connection, challenge, heartbeats, every command verified against the pinned key and journaled,
 * every answer signed), and `phase` commands answered as the test scripts them — ok, failed, or
 * held until the test releases them — with a phase journal that `status` reports as the real
 * agent's does. Check reports installed 1.0.0 and 1.0.1 available.
 *
 * Why not the real `Agent` in-process: it keeps "the phase this process is running" in a module
 * global (agent/phase/summary.ts), so several real agents in one process refuse each other's
 * phases with PHASE_BUSY. One agent per process is what it was built for; this is the in-process
 * stand-in (scripts/bench/sim-agent.ts is the same idea without knobs).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { AgentConfig } from '../../agent/config';
import { collectHostFacts } from '../../agent/facts';
import { SeqJournal } from '../../agent/seq-journal';
import type { KeyPair } from '../../shared/ed25519';
import { signEnvelope, verifyEnvelope, type EnvelopePayload } from '../../shared/envelope';
import { keyIdOf, signChallenge } from '../../shared/keys';
import {
  parsePhaseCommand,
  type PhaseJournalSummary,
  type PhaseReport,
  type StepReport,
} from '../../shared/phase-contract';
import { formatProblem } from '../../shared/schema';
import { decodeControllerMessage, encodeAgentMessage } from '../../proto/stream-codec';
import type { OutgoingAgentMessage, WireControllerMessage, WireSignedEnvelope } from '../../proto/wire';

type Stream = grpc.ClientDuplexStream<OutgoingAgentMessage, WireControllerMessage>;
type Reply = (type: 'progress' | 'result' | 'refusal', body: Record<string, unknown>) => void;

/** What the agent does with a phase: every step ok, the first step failed, or wait for `release`. */
export type PhaseBehaviour = 'ok' | 'fail' | 'hold';

/** A phase command as this agent received it. */
export interface ReceivedPhase {
  readonly runId: string;
  readonly phase: string;
}

export const SCRIPTED_INSTALLED = '1.0.0';
export const SCRIPTED_AVAILABLE = ['1.0.1'] as const;

const ConnectOnlyClient = grpc.makeGenericClientConstructor(
  {
    Connect: {
      path: '/convoy.v1.AgentService/Connect',
      requestStream: true,
      responseStream: true,
      requestSerialize: encodeAgentMessage,
      requestDeserialize: () => {
        throw new Error('the scripted agent never decodes its own requests');
      },
      responseSerialize: () => {
        throw new Error('the scripted agent never encodes controller messages');
      },
      responseDeserialize: decodeControllerMessage,
    },
  },
  'AgentService',
);

interface Held {
  readonly runId: string;
  readonly phase: PhaseReport['phase'];
  readonly recipe: string;
  readonly digest: string;
  readonly stepIds: readonly { id: string; type: string }[];
  /** The stream that asked: a held phase answers there or nowhere (its controller died). */
  readonly stream: Stream;
  readonly reply: Reply;
}

export class ScriptedAgent {
  /** Every phase command received, in order (a resent phase appears twice). */
  readonly received: ReceivedPhase[] = [];
  /** Commands this agent refused to act on (bad signature, replay...): a test expects none. */
  readonly protocolErrors: string[] = [];
  private readonly behaviours = new Map<string, PhaseBehaviour>();
  private readonly held = new Map<string, Held>();
  private readonly client: grpc.Client;
  private readonly journal: SeqJournal;
  private readonly keyId: string;
  private readonly keys: ReadonlyMap<string, Uint8Array>;
  private stream: Stream | undefined;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastPhase: PhaseJournalSummary | null = null;

  constructor(
    private readonly config: AgentConfig,
    private readonly key: KeyPair,
  ) {
    this.client = new ConnectOnlyClient(config.controller, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 200,
    });
    this.journal = SeqJournal.open(config.stateDir);
    this.keyId = keyIdOf(config.controllerKey);
    this.keys = new Map([[this.keyId, config.controllerKey]]);
  }

  get hostId(): string {
    return this.config.hostId;
  }

  /** From now on, `phase` commands of this phase behave so (default ok). */
  behave(phase: string, behaviour: PhaseBehaviour): void {
    this.behaviours.set(phase, behaviour);
  }

  /** Whether a phase of this name is held, waiting for `release`. */
  holding(phase: string): boolean {
    return this.held.has(phase);
  }

  /** Ends a held phase (its journal says so) and answers it on the stream that asked, if still open. */
  release(phase: string, ok = true): void {
    const h = this.held.get(phase);
    if (h === undefined) throw new Error(`${this.hostId} holds no ${phase} phase`);
    this.held.delete(phase);
    this.finish(h, ok, h.stream === this.stream ? h.reply : () => undefined);
  }

  start(): void {
    if (this.stopped) return;
    const stream = (this.client as unknown as { Connect(): Stream }).Connect();
    this.stream = stream;
    stream.on('data', (msg: WireControllerMessage) => this.onMessage(stream, msg));
    stream.on('error', () => this.onClosed(stream));
    stream.on('end', () => this.onClosed(stream));
    stream.write({ hello: { hostId: this.config.hostId, facts: collectHostFacts(this.config.hostname) } });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
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
        const every = Math.max(100, msg.welcome.heartbeatIntervalMs || 10_000);
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => stream.write({ heartbeat: { agentTimeMs: Date.now() } }), every);
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
      this.protocolErrors.push(`${verdict.code}: ${verdict.message}`);
      return;
    }
    const { payload, digest } = verdict;
    this.journal.accept(payload.seq, digest);
    const reply: Reply = (type, body) =>
      this.reply(
        stream,
        payload.seq,
        type,
        body,
        type === 'progress' ? randomUUID() : payload.idempotencyKey,
      );
    if (payload.type === 'status')
      return reply('result', { command: 'status', hostId: this.hostId, phaseJournal: this.lastPhase });
    if (payload.type === 'phase') return this.onPhase(stream, payload.body, reply);
    reply('refusal', { code: 'COMMAND_REFUSED', message: `unknown command ${payload.type}` });
  }

  private onPhase(stream: Stream, body: Readonly<Record<string, unknown>>, reply: Reply): void {
    const parsed = parsePhaseCommand(body);
    if (!parsed.ok) {
      const message = `phase command: ${parsed.problems.map(formatProblem).join('; ')}`;
      return reply('refusal', { code: 'COMMAND_REFUSED', message });
    }
    const { runId, phase, recipe, digest } = parsed.value;
    this.received.push({ runId, phase });
    if (this.held.size > 0) {
      const busy = [...this.held.values()][0]?.runId ?? '';
      return reply('refusal', { code: 'PHASE_BUSY', message: `phase run ${busy} is still running` });
    }
    const h: Held = {
      runId,
      phase,
      recipe: recipeName(recipe),
      digest,
      stepIds: phaseSteps(recipe, phase),
      stream,
      reply,
    };
    const behaviour = this.behaviours.get(phase) ?? 'ok';
    if (behaviour !== 'hold') return this.finish(h, behaviour === 'ok', reply);
    this.held.set(phase, h);
    this.lastPhase = {
      runId,
      recipe: h.recipe,
      phase,
      state: 'running',
      step: h.stepIds[0]?.id ?? null,
      completed: [],
    };
  }

  /** The journal entry ends, then the answer: steps streamed as progress, the report last. */
  private finish(h: Held, ok: boolean, reply: Reply): void {
    const steps = h.stepIds.map((s, i): StepReport => ({
      stepId: s.id,
      type: s.type,
      status: 'ran',
      attempts: 1,
      ok: ok || i > 0,
      exitCode: ok || i > 0 ? 0 : 1,
      durationMs: 0,
      outputTail: '',
      backupId: null,
      versions: [],
      error: ok || i > 0 ? null : { code: 'STEP_FAILED', message: 'scripted to fail' },
    }));
    const ran = ok ? steps : steps.slice(0, 1);
    this.lastPhase = {
      runId: h.runId,
      recipe: h.recipe,
      phase: h.phase,
      state: ok ? 'succeeded' : 'failed',
      step: null,
      completed: ok ? ran.map((s) => s.stepId) : [],
    };
    for (const step of ran) reply('progress', { runId: h.runId, step });
    const check = h.phase === 'check';
    const report: PhaseReport = {
      runId: h.runId,
      phase: h.phase,
      recipe: h.recipe,
      digest: h.digest,
      ok,
      installed: check ? SCRIPTED_INSTALLED : null,
      available: check ? [...SCRIPTED_AVAILABLE] : null,
      resumed: null,
      steps: ran,
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

  private onClosed(stream: Stream): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    clearInterval(this.heartbeat);
    if (this.stopped) return;
    this.reconnectTimer = setTimeout(() => this.start(), 100);
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
