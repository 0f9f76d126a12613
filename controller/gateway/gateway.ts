/**
 * The agent gateway: authenticates each Connect stream with a signed challenge, keeps one
 * session per host, watches heartbeats, and fans commands out (sequence numbers made durable in
 * the store before anything is written to a stream).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { signEnvelope, type EnvelopePayload } from '../../shared/envelope';
import { ConvoyError, type ErrorCode } from '../../shared/errors';
import { verifyChallenge } from '../../shared/keys';
import type { Logger } from '../../shared/logger';
import type { WireAgentMessage } from '../../proto/wire';
import { StallLedger } from '../../shared/stall-ledger';
import type { ControllerKey } from '../signing-key';
import type { HostFactsRecord, HostRecord, Store } from '../store/store';
import { factsFromWire } from './facts';
import { AgentSession, type AgentStream, type CommandOutcome } from './session';

export interface GatewayOptions {
  /** Interval agents are told to heartbeat at. Default 10 s. */
  readonly heartbeatIntervalMs: number;
  /** Silence after which a session is closed and the host shown offline. Default 3 intervals. */
  readonly heartbeatTimeoutMs: number;
  /** How long a signed command stays valid. Default 60 s. */
  readonly commandTtlMs: number;
  /** Time allowed from stream open to an answered challenge. Default 10 s. */
  readonly handshakeTimeoutMs: number;
}

export const DEFAULT_GATEWAY_OPTIONS: GatewayOptions = Object.freeze({
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 30_000,
  commandTtlMs: 60_000,
  handshakeTimeoutMs: 10_000,
});

export interface DispatchResult {
  readonly host: HostRecord;
  readonly seq: number;
  readonly outcome: CommandOutcome;
}

export class AgentGateway {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly watchdog: NodeJS.Timeout;
  private readonly stalls: StallLedger;

  constructor(
    private readonly store: Store,
    private readonly key: ControllerKey,
    private readonly options: GatewayOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const tick = Math.max(100, Math.min(options.heartbeatIntervalMs, options.heartbeatTimeoutMs / 3));
    this.stalls = new StallLedger(tick, options.heartbeatTimeoutMs, performance.now());
    this.watchdog = setInterval(() => void this.sweep(), tick);
    this.watchdog.unref();
  }

  isOnline(hostId: string): boolean {
    return this.sessions.has(hostId);
  }

  /** A connected host's clock minus ours at its last heartbeat, or undefined. */
  clockSkew(hostId: string): number | undefined {
    return this.sessions.get(hostId)?.clockSkewMs;
  }

  /** Last time heard from a connected host, or undefined when it is not connected. */
  lastSeen(hostId: string): number | undefined {
    return this.sessions.get(hostId)?.lastSeenMs;
  }

  get onlineCount(): number {
    return this.sessions.size;
  }

  /** The Connect handler: hello, challenge, then a session until the stream ends. */
  handleConnect(stream: AgentStream): void {
    const peer = stream.getPeer();
    const nonce = randomBytes(32);
    let host: HostRecord | undefined;
    let facts: HostFactsRecord | undefined;
    let session: AgentSession | undefined;
    const handshakeTimer = setTimeout(
      () => refuse(stream, 'PROTOCOL_VIOLATION', 'handshake not completed in time'),
      this.options.handshakeTimeoutMs,
    );

    const onMessage = async (msg: WireAgentMessage): Promise<void> => {
      if (session !== undefined) return this.onSessionMessage(session, msg);
      if (msg.body === 'hello' && host === undefined) {
        host = await this.admit(msg.hello.hostId);
        facts = factsFromWire(msg.hello.facts);
        stream.write({ challenge: { nonce, controllerTimeMs: this.now() } });
        return;
      }
      if (msg.body === 'challengeResponse' && host !== undefined) {
        if (!verifyChallenge(nonce, host.id, msg.challengeResponse.signature, host.publicKey)) {
          throw new ConvoyError('CHALLENGE_FAILED', `agent could not prove it holds the key of ${host.id}`, {
            hostId: host.id,
          });
        }
        clearTimeout(handshakeTimer);
        session = await this.open(host, stream, facts);
        return;
      }
      throw new ConvoyError('PROTOCOL_VIOLATION', `unexpected ${msg.body} during the handshake`);
    };

    // Messages are handled one at a time, in order, even though handling is async.
    let chain: Promise<void> = Promise.resolve();
    stream.on('data', (msg: WireAgentMessage) => {
      chain = chain
        .then(() => onMessage(msg))
        .catch((err: unknown) => {
          clearTimeout(handshakeTimer);
          const code = err instanceof ConvoyError ? err.code : 'PROTOCOL_VIOLATION';
          const message = err instanceof Error ? err.message : String(err);
          this.log.warn('agent connection refused', { peer, hostId: host?.id, code, reason: message });
          refuse(stream, code, message);
        });
    });
    const onGone = (): void => {
      clearTimeout(handshakeTimer);
      if (session !== undefined) this.drop(session, 'stream ended');
    };
    stream.on('end', onGone);
    stream.on('error', onGone);
    stream.on('cancelled', onGone);
    stream.on('close', onGone);
  }

  /**
   * Signs `type` for every host, records the commands durably, then sends them and waits for the
   * answers. Hosts without a session come back `offline` and get no sequence number.
   */
  async dispatch(
    hosts: readonly HostRecord[],
    type: string,
    body: Readonly<Record<string, unknown>>,
    timeoutMs: number,
    onResult?: (r: DispatchResult) => void,
    onProgress?: (hostId: string, body: Readonly<Record<string, unknown>>) => void,
  ): Promise<DispatchResult[]> {
    const results: DispatchResult[] = [];
    const emit = (r: DispatchResult): void => {
      results.push(r);
      onResult?.(r);
    };
    const online = hosts.filter((h) => h.state === 'active' && this.sessions.has(h.id));
    for (const h of hosts) {
      if (!online.includes(h)) {
        emit({
          host: h,
          seq: 0,
          outcome: { outcome: 'offline', code: 'HOST_OFFLINE', message: offlineReason(h) },
        });
      }
    }
    if (online.length === 0) return results;
    const issuedAt = this.now();
    const issued = await this.store.issueCommands(
      online.map((h) => h.id),
      type,
      (hostId, seq) =>
        signEnvelope(this.commandPayload(hostId, seq, type, body, issuedAt), 'command', this.key.secretKey),
      issuedAt,
    );
    const byId = new Map(online.map((h) => [h.id, h]));
    const finished = await Promise.all(
      issued.map(async (cmd) => {
        const session = this.sessions.get(cmd.hostId);
        const envelope = { payload: cmd.payload, signature: cmd.signature, keyId: this.key.keyId };
        const outcome =
          session === undefined
            ? offlineOutcome(cmd.hostId)
            : await session.send(
                cmd.seq,
                envelope,
                timeoutMs,
                onProgress && ((b) => onProgress(cmd.hostId, b)),
              );
        const host = byId.get(cmd.hostId);
        if (host !== undefined) emit({ host, seq: cmd.seq, outcome });
        return { hostId: cmd.hostId, seq: cmd.seq, outcome: outcome.outcome, result: resultOf(outcome) };
      }),
    );
    await this.store.finishCommands(finished, this.now());
    return results;
  }

  /** Closes a host's stream now (revocation). */
  disconnect(hostId: string, reason: string): void {
    const session = this.sessions.get(hostId);
    if (session !== undefined) this.drop(session, reason);
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    for (const session of [...this.sessions.values()]) this.drop(session, 'controller stopping');
    await this.flushLastSeen();
  }

  /** Writes in-memory last-seen times to the store in one transaction. */
  async flushLastSeen(): Promise<void> {
    const seen = new Map([...this.sessions.values()].map((s) => [s.hostId, s.lastSeenMs] as const));
    await this.store.touchLastSeen(seen);
  }

  private commandPayload(
    hostId: string,
    seq: number,
    type: string,
    body: Readonly<Record<string, unknown>>,
    issuedAt: number,
  ): EnvelopePayload {
    return {
      v: 1,
      audience: hostId,
      seq,
      issuedAtMs: issuedAt,
      expiresAtMs: issuedAt + this.options.commandTtlMs,
      nonce: randomBytes(16).toString('base64'),
      idempotencyKey: randomUUID(),
      type,
      body,
    };
  }

  private async admit(hostId: string): Promise<HostRecord> {
    const host = await this.store.getHost(hostId);
    if (host === undefined) throw new ConvoyError('HOST_UNKNOWN', `no host with id ${hostId}`, { hostId });
    if (host.state === 'pending')
      throw new ConvoyError('HOST_PENDING', `host ${hostId} awaits approval`, { hostId });
    if (host.state === 'revoked')
      throw new ConvoyError('HOST_REVOKED', `host ${hostId} has been revoked`, { hostId });
    return host;
  }

  private async open(
    host: HostRecord,
    stream: AgentStream,
    facts: HostFactsRecord | undefined,
  ): Promise<AgentSession> {
    if (facts !== undefined) await this.store.recordConnection(host.id, facts, this.now());
    const log = this.log.child({ hostId: host.id });
    const session = new AgentSession({
      hostId: host.id,
      publicKey: host.publicKey,
      agentKeyId: host.keyId,
      controllerKeyId: this.key.keyId,
      stream,
      now: this.now,
      log,
    });
    const previous = this.sessions.get(host.id);
    if (previous !== undefined) this.drop(previous, 'superseded by a new connection');
    this.sessions.set(host.id, session);
    stream.write({
      welcome: { heartbeatIntervalMs: this.options.heartbeatIntervalMs, lastSeq: host.lastSeq },
    });
    log.info('agent online', { agentVersion: facts?.agentVersion ?? host.agentVersion });
    return session;
  }

  private onSessionMessage(session: AgentSession, msg: WireAgentMessage): void {
    if (msg.body === 'heartbeat') session.heartbeat(msg.heartbeat.agentTimeMs);
    else if (msg.body === 'envelope') session.receive(msg.envelope);
    else throw new ConvoyError('PROTOCOL_VIOLATION', `unexpected ${msg.body} after the handshake`);
  }

  private drop(session: AgentSession, reason: string): void {
    if (this.sessions.get(session.hostId) === session) this.sessions.delete(session.hostId);
    if (session.isClosed) return;
    session.close(reason);
    void this.store.touchLastSeen(new Map([[session.hostId, session.lastSeenMs]])).catch((err: unknown) => {
      this.log.error('could not record last-seen time', { hostId: session.hostId, err });
    });
  }

  private async sweep(): Promise<void> {
    const now = performance.now();
    const stalled = this.stalls.tick(now);
    if (stalled >= STALL_WORTH_LOGGING_MS) {
      this.log.warn('controller was stalled; not counted against agents', { stalledMs: Math.round(stalled) });
    }
    for (const session of [...this.sessions.values()]) {
      if (this.stalls.silenceOf(session.lastHeardMono, now) > this.options.heartbeatTimeoutMs) {
        this.drop(session, 'heartbeats missed');
      }
    }
  }
}

/** Shorter stalls are ordinary on a busy machine; longer ones explain a burst of slow answers. */
const STALL_WORTH_LOGGING_MS = 1000;

/** Ends a stream with a status whose details start with our error code. */
function refuse(stream: AgentStream, code: ErrorCode, message: string): void {
  const grpcCode = code === 'HOST_PENDING' ? grpc.status.FAILED_PRECONDITION : grpc.status.PERMISSION_DENIED;
  const metadata = new grpc.Metadata();
  metadata.set('convoy-error-code', code);
  stream.emit('error', { code: grpcCode, details: `${code}: ${message}`, metadata });
}

function offlineReason(h: HostRecord): string {
  return h.state === 'active' ? `host ${h.id} has no live connection` : `host ${h.id} is ${h.state}`;
}

function offlineOutcome(hostId: string): CommandOutcome {
  return { outcome: 'offline', code: 'HOST_OFFLINE', message: `host ${hostId} has no live connection` };
}

function resultOf(outcome: CommandOutcome): unknown {
  if (outcome.outcome === 'ok')
    return { type: outcome.result.type, body: outcome.result.body, rttMs: outcome.rttMs };
  return { code: outcome.code, message: outcome.message };
}
