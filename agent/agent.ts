/**
 * The agent daemon's core: one persistent Connect stream, reconnect with jittered backoff,
 * heartbeats both ways, and every command verified before it is journaled and acted on.
 *
 *   connecting --hello/challenge--> online --stream ends / controller silent--> waiting --delay--> connecting
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { signEnvelope, verifyEnvelope, type EnvelopePayload } from '../shared/envelope';
import type { KeyPair } from '../shared/ed25519';
import { ConvoyError, type ErrorCode } from '../shared/errors';
import { keyIdOf, signChallenge } from '../shared/keys';
import type { Logger } from '../shared/logger';
import { StallLedger } from '../shared/stall-ledger';
import { decodeControllerMessage, encodeAgentMessage } from '../proto/stream-codec';
import type { OutgoingAgentMessage, WireControllerMessage, WireSignedEnvelope } from '../proto/wire';
import { reconnectDelayMs } from './backoff';
import type { CommandContext } from './command-context';
import { commandHandler } from './commands';
import type { AgentConfig } from './config';
import { collectHostFacts } from './facts';
import { SeqJournal } from './seq-journal';

type Stream = grpc.ClientDuplexStream<OutgoingAgentMessage, WireControllerMessage>;

export interface AgentDeps {
  readonly log: Logger;
  readonly now?: () => number;
  /** Extra channel options; the benchmark passes `grpc.use_local_subchannel_pool` for one connection per agent. */
  readonly channelOptions?: grpc.ChannelOptions;
  /** Set when a supervisor will start the agent again: a self-update's `agent.restart` calls it. */
  readonly requestRestart?: () => void;
}

const RESULT_TTL_MS = 60_000;

/**
 * The daemon needs only Connect, so it builds its client from the hand codec rather than
 * loading the .proto through proto-loader and protobufjs (see proto/stream-codec.ts).
 */
const ConnectOnlyClient = grpc.makeGenericClientConstructor(
  {
    Connect: {
      path: '/convoy.v1.AgentService/Connect',
      requestStream: true,
      responseStream: true,
      requestSerialize: encodeAgentMessage,
      requestDeserialize: () => {
        throw new Error('the agent never decodes its own requests');
      },
      responseSerialize: () => {
        throw new Error('the agent never encodes controller messages');
      },
      responseDeserialize: decodeControllerMessage,
    },
  },
  'AgentService',
);

export class Agent {
  private client: grpc.Client;
  private readonly journal: SeqJournal;
  private readonly controllerKeys: ReadonlyMap<string, Uint8Array>;
  private readonly controllerKeyId: string;
  private readonly now: () => number;
  private readonly ctx: CommandContext;
  private stream: Stream | undefined;
  private attempt = 0;
  private stopped = false;
  private online = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Monotonic (performance.now) time of the last ack: a stepped wall clock is not silence. */
  private lastAckMono = 0;
  /** Controller clock minus ours, as the last handshake or heartbeat ack showed it (see `reply`). */
  private controllerOffsetMs = 0;
  private work: Promise<void> = Promise.resolve();
  private onlineWaiters: (() => void)[] = [];

  constructor(
    private readonly config: AgentConfig,
    private readonly key: KeyPair,
    private readonly deps: AgentDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.client = this.newChannel();
    this.journal = SeqJournal.open(config.stateDir);
    this.controllerKeyId = keyIdOf(config.controllerKey);
    this.controllerKeys = new Map([[this.controllerKeyId, config.controllerKey]]);
    const hostname = collectHostFacts(config.hostname).hostname;
    this.ctx = {
      hostId: config.hostId,
      hostname,
      startedAtMs: this.now(),
      journal: this.journal,
      now: this.now,
      config,
      log: deps.log,
      ...(deps.requestRestart === undefined ? {} : { requestRestart: deps.requestRestart }),
    };
  }

  private newChannel(): grpc.Client {
    return new ConnectOnlyClient(this.config.controller, grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      'grpc.max_send_message_length': 1024 * 1024,
      'grpc.initial_reconnect_backoff_ms': 1000,
      'grpc.max_reconnect_backoff_ms': 30_000,
      ...this.deps.channelOptions,
    });
  }

  get isOnline(): boolean {
    return this.online;
  }

  start(): void {
    this.connect();
  }

  /** Resolves once the controller has welcomed this agent. */
  waitOnline(): Promise<void> {
    if (this.online) return Promise.resolve();
    return new Promise((resolve) => this.onlineWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    this.stream?.cancel();
    await this.work;
    this.client.close();
    this.journal.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const stream = (this.client as unknown as { Connect(): Stream }).Connect();
    this.stream = stream;
    stream.on('data', (msg: WireControllerMessage) => this.onMessage(stream, msg));
    stream.on('error', (err: grpc.ServiceError) => this.onClosed(stream, err.details || err.message));
    stream.on('end', () => this.onClosed(stream, 'stream ended by controller'));
    stream.write({ hello: { hostId: this.config.hostId, facts: collectHostFacts(this.config.hostname) } });
  }

  private onMessage(stream: Stream, msg: WireControllerMessage): void {
    switch (msg.body) {
      case 'challenge': {
        this.controllerOffsetMs = 0;
        this.followControllerClock(msg.challenge.controllerTimeMs, true);
        stream.write({
          challengeResponse: {
            signature: signChallenge(msg.challenge.nonce, this.config.hostId, this.key.secretKey),
          },
        });
        return;
      }
      case 'welcome':
        return this.onWelcome(stream, msg.welcome.heartbeatIntervalMs);
      case 'heartbeatAck':
        this.lastAckMono = performance.now();
        this.followControllerClock(msg.heartbeatAck.controllerTimeMs, false);
        return;
      case 'envelope': {
        // Commands run one at a time, in arrival order.
        const envelope = msg.envelope;
        this.work = this.work
          .then(() => this.onCommand(stream, envelope))
          .catch((err: unknown) => {
            this.deps.log.error('command handling failed', { err });
          });
        return;
      }
    }
  }

  /**
   * Keeps the controller's clock minus ours current: measured at the handshake and again on every
   * heartbeat ack, so a wall clock stepped after connecting (NTP, an operator) still stamps replies
   * the controller accepts. Warns at the handshake, then only when the skew crosses the allowance.
   */
  private followControllerClock(controllerTimeMs: number, handshake: boolean): void {
    // 0 is what a message without the field decodes to: no clock to follow then.
    if (controllerTimeMs <= 0) return;
    const skew = controllerTimeMs - this.now();
    const wasSkewed = Math.abs(this.controllerOffsetMs) > this.config.clockSkewMs;
    const skewed = Math.abs(skew) > this.config.clockSkewMs;
    if (skewed && (handshake || !wasSkewed))
      this.deps.log.warn('clock differs from the controller', { skewMs: skew });
    else if (!skewed && wasSkewed && !handshake)
      this.deps.log.info('clock agrees with the controller again', { skewMs: skew });
    this.controllerOffsetMs = skew;
  }

  private onWelcome(stream: Stream, intervalMs: number): void {
    this.online = true;
    this.attempt = 0;
    this.lastAckMono = performance.now();
    const every = Math.max(100, intervalMs || 10_000);
    clearInterval(this.heartbeatTimer);
    // Our own stalls (a loaded host, SIGSTOP) are not the controller's silence: its acks are still
    // unread in the socket when the overdue timer fires.
    const stalls = new StallLedger(every, every * 3, performance.now());
    this.heartbeatTimer = setInterval(() => {
      const now = performance.now();
      stalls.tick(now);
      if (stalls.silenceOf(this.lastAckMono, now) > every * 3) {
        this.deps.log.warn('controller silent; reconnecting', {
          silentMs: Math.round(now - this.lastAckMono),
        });
        stream.cancel();
        // The connection under a silent stream is likely half-open (a DROP, a dead NAT entry): a
        // new stream on it would wait out keepalive (40 s). A new channel dials afresh.
        this.client.close();
        this.client = this.newChannel();
        return;
      }
      stream.write({ heartbeat: { agentTimeMs: this.now() } });
    }, every);
    this.deps.log.info('connected to controller', { controller: this.config.controller });
    for (const resolve of this.onlineWaiters.splice(0)) resolve();
  }

  private async onCommand(stream: Stream, envelope: WireSignedEnvelope): Promise<void> {
    const verdict = verifyEnvelope(envelope, {
      direction: 'command',
      keys: this.controllerKeys,
      audience: this.config.hostId,
      nowMs: this.now(),
      skewMs: this.config.clockSkewMs,
      replay: this.journal.current,
    });
    if (!verdict.ok) return this.refuse(stream, envelope, verdict.code, verdict.message);
    const { payload, digest } = verdict;
    const handler = commandHandler(payload.type);
    if (handler === undefined) {
      return this.refuse(
        stream,
        envelope,
        'COMMAND_REFUSED',
        `unknown command type ${JSON.stringify(payload.type)}`,
      );
    }
    // Journal before acting: after a crash the same envelope is a replay, never a second run.
    this.journal.accept(payload.seq, digest);
    this.deps.log.debug('command accepted', { seq: payload.seq, type: payload.type });
    // Resolves once the report is handed to the stream: a reboot step waits for its report to leave.
    const progress = (body: Record<string, unknown>): Promise<void> =>
      new Promise((resolve) =>
        this.reply(this.stream ?? stream, payload.seq, 'progress', body, randomUUID(), resolve),
      );
    const answer = this.answer(
      stream,
      payload.seq,
      payload.type,
      payload.idempotencyKey,
      handler(payload.body, this.ctx, progress),
    );
    // A phase may run for an hour: it must not hold up pings and status queries behind it.
    if (!handler.background) await answer;
  }

  /** Replies with the handler's result, or with a signed refusal naming why it failed. */
  private async answer(
    stream: Stream,
    seq: number,
    type: string,
    idempotencyKey: string,
    work: Promise<Record<string, unknown>>,
  ): Promise<void> {
    try {
      const body = await work;
      this.reply(this.stream ?? stream, seq, 'result', { command: type, ...body }, idempotencyKey);
    } catch (err) {
      const code = err instanceof ConvoyError ? err.code : 'COMMAND_REFUSED';
      const message = err instanceof Error ? err.message : String(err);
      this.deps.log.warn('command failed', { seq, type, code, reason: message });
      this.reply(this.stream ?? stream, seq, 'refusal', { code, message }, idempotencyKey);
    }
  }

  private refuse(stream: Stream, envelope: WireSignedEnvelope, code: ErrorCode, message: string): void {
    const claimedSeq = claimedSeqOf(envelope.payload);
    this.deps.log.warn('command refused', { code, reason: message, claimedSeq });
    this.reply(stream, claimedSeq, 'refusal', { code, message }, randomUUID());
  }

  private reply(
    stream: Stream,
    seq: number,
    type: string,
    body: Record<string, unknown>,
    idempotencyKey: string,
    onWritten?: () => void,
  ): void {
    // Stamped on the controller's clock: the controller checks these times against its own, and a
    // refusal caused by our clock (CLOCK_SKEW, ENVELOPE_EXPIRED) must still reach the operator
    // rather than be dropped there as skewed in turn. Commands are still checked on our own clock.
    const issuedAtMs = this.now() + this.controllerOffsetMs;
    const payload: EnvelopePayload = {
      v: 1,
      audience: this.controllerKeyId,
      seq,
      issuedAtMs,
      expiresAtMs: issuedAtMs + RESULT_TTL_MS,
      nonce: randomBytes(16).toString('base64'),
      idempotencyKey,
      type,
      body,
    };
    stream.write({ envelope: signEnvelope(payload, 'result', this.key.secretKey) }, onWritten);
  }

  private onClosed(stream: Stream, reason: string): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    this.online = false;
    clearInterval(this.heartbeatTimer);
    if (this.stopped) return;
    const delay = reconnectDelayMs(
      this.attempt++,
      this.config.reconnectInitialMs,
      this.config.reconnectMaxMs,
    );
    this.deps.log.warn('disconnected from controller', { reason, retryInMs: delay });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}

/** The sequence number an unverified payload claims, for the refusal report only (0 if none). */
function claimedSeqOf(payload: Uint8Array): number {
  try {
    const seq: unknown = (JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>)[
      'seq'
    ];
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : 0;
  } catch {
    return 0;
  }
}
