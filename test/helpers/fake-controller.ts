/**
 * A test-side controller: an in-process AgentService.Connect server on loopback that speaks the
 * real protocol (hello, challenge, welcome, heartbeats) to a real agent process, then lets a test
 * write arbitrary envelopes on the live stream and read back the agent's signed answers.
 *
 * It trusts exactly one agent (host id and public key given up front), verifies the challenge
 * answer and every envelope the agent sends, and surfaces anything that does not verify as a test
 * failure instead of dropping it. It serves gRPC from the test process, so tests that use it must
 * never block the event loop (spawn processes asynchronously).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { loadConvoyProtos } from '../../proto/load';
import type { OutgoingControllerMessage, WireAgentMessage } from '../../proto/wire';
import { generateKeyPair, type KeyPair } from '../../shared/ed25519';
import {
  signEnvelope,
  verifyEnvelope,
  type EnvelopePayload,
  type SignedEnvelope,
} from '../../shared/envelope';
import { keyIdOf, verifyChallenge } from '../../shared/keys';

type ConnectStream = grpc.ServerDuplexStream<WireAgentMessage, OutgoingControllerMessage>;

export interface FakeControllerOptions {
  /** The one host this controller knows. */
  readonly hostId: string;
  /** That host's enrolled Ed25519 public key (32 bytes). */
  readonly agentPublicKey: Uint8Array;
  /** Heartbeat interval announced in Welcome. Default 1000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** Controller key pair. Default: a fresh one. */
  readonly keyPair?: KeyPair;
}

/** What the agent answered (type 'result' or 'refusal'), after its signature verified. */
export type AgentReply = EnvelopePayload;

interface Session {
  readonly id: number;
  readonly stream: ConnectStream;
  closed: boolean;
}

type QueueItem =
  { readonly ok: true; readonly reply: AgentReply } | { readonly ok: false; readonly error: Error };

export class FakeController {
  readonly keyPair: KeyPair;
  readonly keyId: string;
  readonly hostId: string;
  /** Problems on the agent side of the protocol (bad challenge, unverifiable envelope, ...). */
  readonly protocolErrors: string[] = [];
  /** Number of heartbeats received (each answered with an ack). */
  heartbeats = 0;

  private readonly agentPublicKey: Uint8Array;
  private readonly agentKeyId: string;
  private readonly heartbeatIntervalMs: number;
  private readonly server = new grpc.Server();
  private readonly streams = new Set<ConnectStream>();
  private readonly queue: QueueItem[] = [];
  private readonly waiters: (() => void)[] = [];
  private boundPort = 0;
  private sessionCount = 0;
  private session: Session | undefined;
  private highestSeq = 0;

  constructor(options: FakeControllerOptions) {
    this.keyPair = options.keyPair ?? generateKeyPair();
    this.keyId = keyIdOf(this.keyPair.publicKey);
    this.hostId = options.hostId;
    this.agentPublicKey = options.agentPublicKey;
    this.agentKeyId = keyIdOf(options.agentPublicKey);
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 1000;
    const { AgentService } = loadConvoyProtos();
    this.server.addService(AgentService.service, {
      Enroll: (_call: unknown, callback: grpc.sendUnaryData<never>) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'the fake controller does not enroll' }),
      Connect: (stream: ConnectStream) => this.onConnect(stream),
    });
  }

  /** The port the server listens on (127.0.0.1), once started. */
  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `127.0.0.1:${this.boundPort}`;
  }

  /** How many streams completed the handshake so far (reconnects count). */
  get sessions(): number {
    return this.sessionCount;
  }

  /** True while an authenticated stream is open. */
  get online(): boolean {
    return this.session !== undefined && !this.session.closed;
  }

  /** Answers received and not yet taken with nextReply. */
  get pendingReplies(): number {
    return this.queue.length;
  }

  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err !== null) return reject(err);
        this.boundPort = port;
        resolve(port);
      });
    });
  }

  /** Ends every stream and shuts the server down. */
  async stop(): Promise<void> {
    for (const stream of this.streams) {
      try {
        stream.end();
      } catch {
        // Already gone.
      }
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Resolves with the session number once an authenticated stream is open whose number is at least
   * `minSession` (pass `sessions + 1` to wait for a reconnect).
   */
  async waitForAgent(timeoutMs = 10_000, minSession = 1): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.session;
      if (s !== undefined && !s.closed && s.id >= minSession) return s.id;
      if (Date.now() > deadline) {
        const problems =
          this.protocolErrors.length > 0 ? `; protocol errors: ${this.protocolErrors.join('; ')}` : '';
        throw new Error(
          `agent ${this.hostId} did not connect (session >= ${minSession}) within ${timeoutMs} ms${problems}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Writes any envelope, well-formed or not, on the live stream. */
  send(envelope: SignedEnvelope): void {
    const s = this.session;
    if (s === undefined || s.closed) throw new Error(`agent ${this.hostId} is not connected`);
    s.stream.write({
      envelope: { payload: envelope.payload, signature: envelope.signature, keyId: envelope.keyId },
    });
  }

  /** The next verified answer from the agent; rejects on timeout or on an envelope that failed to verify. */
  async nextReply(timeoutMs = 5000): Promise<AgentReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const item = this.queue.shift();
      if (item !== undefined) {
        if (item.ok) return item.reply;
        throw item.error;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer from agent ${this.hostId} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** A command payload addressed to this controller's host, valid for a minute from now. */
  commandPayload(seq: number, overrides: Partial<EnvelopePayload> = {}): EnvelopePayload {
    const issuedAtMs = Date.now();
    return {
      v: 1,
      audience: this.hostId,
      seq,
      issuedAtMs,
      expiresAtMs: issuedAtMs + 60_000,
      nonce: randomBytes(16).toString('base64'),
      idempotencyKey: randomUUID(),
      type: 'ping',
      body: {},
      ...overrides,
    };
  }

  /** Signs a command payload, by default with the controller key. */
  sign(payload: EnvelopePayload, secretKey: Uint8Array = this.keyPair.secretKey): SignedEnvelope {
    this.highestSeq = Math.max(this.highestSeq, payload.seq);
    return signEnvelope(payload, 'command', secretKey);
  }

  /** A validly signed ping for `seq` (fields may be overridden before signing). */
  ping(seq: number, overrides: Partial<EnvelopePayload> = {}): SignedEnvelope {
    return this.sign(this.commandPayload(seq, overrides));
  }

  private onConnect(stream: ConnectStream): void {
    this.streams.add(stream);
    const nonce = randomBytes(32);
    let stage: 'hello' | 'challenge' | 'session' = 'hello';
    let session: Session | undefined;
    const refuse = (reason: string): void => {
      this.protocolErrors.push(reason);
      stream.emit('error', { code: grpc.status.PERMISSION_DENIED, details: reason });
    };

    stream.on('data', (msg: WireAgentMessage) => {
      if (stage === 'hello') {
        if (msg.body !== 'hello') return refuse(`expected hello, got ${msg.body}`);
        if (msg.hello.hostId !== this.hostId) return refuse(`unknown host id ${msg.hello.hostId}`);
        stage = 'challenge';
        stream.write({ challenge: { nonce, controllerTimeMs: Date.now() } });
        return;
      }
      if (stage === 'challenge') {
        if (msg.body !== 'challengeResponse') return refuse(`expected challengeResponse, got ${msg.body}`);
        if (!verifyChallenge(nonce, this.hostId, msg.challengeResponse.signature, this.agentPublicKey)) {
          return refuse('challenge signature does not verify against the enrolled key');
        }
        stage = 'session';
        session = { id: ++this.sessionCount, stream, closed: false };
        this.session = session;
        stream.write({
          welcome: { heartbeatIntervalMs: this.heartbeatIntervalMs, lastSeq: this.highestSeq },
        });
        return;
      }
      switch (msg.body) {
        case 'heartbeat':
          this.heartbeats++;
          stream.write({ heartbeatAck: { controllerTimeMs: Date.now() } });
          return;
        case 'envelope': {
          const verdict = verifyEnvelope(msg.envelope, {
            direction: 'result',
            keys: new Map([[this.agentKeyId, this.agentPublicKey]]),
            audience: this.keyId,
            nowMs: Date.now(),
          });
          if (verdict.ok) {
            this.push({ ok: true, reply: verdict.payload });
          } else {
            const reason = `agent envelope failed verification: ${verdict.code}: ${verdict.message}`;
            this.protocolErrors.push(reason);
            this.push({ ok: false, error: new Error(reason) });
          }
          return;
        }
        default:
          return refuse(`unexpected ${msg.body} after the handshake`);
      }
    });
    const gone = (): void => {
      this.streams.delete(stream);
      if (session !== undefined) session.closed = true;
    };
    stream.on('end', gone);
    stream.on('error', gone);
    stream.on('cancelled', gone);
    stream.on('close', gone);
  }

  private push(item: QueueItem): void {
    this.queue.push(item);
    for (const wake of this.waiters.splice(0)) wake();
  }
}
