/**
 * One authenticated agent stream: sends signed commands, matches signed results to the commands
 * waiting for them, and tracks liveness from heartbeats.
 */
import type * as grpc from '@grpc/grpc-js';
import { verifyEnvelope, type EnvelopePayload } from '../../shared/envelope';
import type { ErrorCode } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { OutgoingControllerMessage, WireAgentMessage, WireSignedEnvelope } from '../../proto/wire';

export type AgentStream = grpc.ServerDuplexStream<WireAgentMessage, OutgoingControllerMessage>;

/** How one command ended, as the dispatcher reports it. */
export type CommandOutcome =
  | { readonly outcome: 'ok'; readonly result: EnvelopePayload; readonly rttMs: number }
  | { readonly outcome: 'refused'; readonly code: string; readonly message: string; readonly rttMs: number }
  | { readonly outcome: 'timeout' | 'offline' | 'error'; readonly code: ErrorCode; readonly message: string };

/** A signed progress report for a command still in flight (a step of a long phase finished). */
export type ProgressListener = (body: Readonly<Record<string, unknown>>) => void;

interface Pending {
  readonly onProgress?: ProgressListener;
  readonly startedNs: bigint;
  readonly resolve: (outcome: CommandOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

export interface SessionDeps {
  readonly hostId: string;
  readonly publicKey: Uint8Array;
  readonly agentKeyId: string;
  readonly controllerKeyId: string;
  readonly stream: AgentStream;
  readonly now: () => number;
  readonly log: Logger;
}

export class AgentSession {
  /** Wall clock, for operators and the store. */
  lastSeenMs: number;
  /** Monotonic (performance.now), for liveness: a stepped wall clock is not silence. */
  lastHeardMono: number;
  /** The agent's wall clock minus ours at its last heartbeat; undefined before the first. */
  clockSkewMs: number | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly keys: ReadonlyMap<string, Uint8Array>;
  private closed = false;

  constructor(private readonly deps: SessionDeps) {
    this.lastSeenMs = deps.now();
    this.lastHeardMono = performance.now();
    this.keys = new Map([[deps.agentKeyId, deps.publicKey]]);
  }

  get hostId(): string {
    return this.deps.hostId;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes a command (already durable in the store) and resolves when its answer or timeout arrives. */
  send(
    seq: number,
    envelope: WireSignedEnvelope | { payload: Uint8Array; signature: Uint8Array; keyId: string },
    timeoutMs: number,
    onProgress?: ProgressListener,
  ): Promise<CommandOutcome> {
    if (this.closed) return Promise.resolve(offline(this.deps.hostId));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        resolve({ outcome: 'timeout', code: 'COMMAND_TIMEOUT', message: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      this.pending.set(seq, { startedNs: process.hrtime.bigint(), resolve, timer, onProgress });
      this.deps.stream.write({ envelope });
    });
  }

  /** An envelope from the agent: a result or a refusal, signed by the agent's key. */
  receive(envelope: WireSignedEnvelope): void {
    this.lastSeenMs = this.deps.now();
    this.lastHeardMono = performance.now();
    const verdict = verifyEnvelope(envelope, {
      direction: 'result',
      keys: this.keys,
      audience: this.deps.controllerKeyId,
      nowMs: this.deps.now(),
    });
    if (!verdict.ok) {
      this.deps.log.warn('agent envelope refused', { code: verdict.code, reason: verdict.message });
      return;
    }
    const { payload } = verdict;
    if (payload.type === 'refusal') {
      this.deps.log.warn('agent refused an envelope', {
        seq: payload.seq,
        code: payload.body['code'],
        reason: payload.body['message'],
      });
    }
    const waiting = this.pending.get(payload.seq);
    if (payload.type === 'progress') {
      // Progress keeps the command in flight; only its result or refusal ends it.
      if (waiting?.onProgress !== undefined) waiting.onProgress(payload.body);
      return;
    }
    if (waiting === undefined) {
      // Only commands still in flight take an answer: an old result replayed is dropped here.
      this.deps.log.warn('agent answer matches no command in flight', {
        seq: payload.seq,
        type: payload.type,
      });
      return;
    }
    this.pending.delete(payload.seq);
    clearTimeout(waiting.timer);
    const rttMs = Number(process.hrtime.bigint() - waiting.startedNs) / 1e6;
    if (payload.type === 'refusal') {
      const code = typeof payload.body['code'] === 'string' ? payload.body['code'] : 'COMMAND_REFUSED';
      const message = typeof payload.body['message'] === 'string' ? payload.body['message'] : '';
      waiting.resolve({ outcome: 'refused', code, message, rttMs });
    } else {
      waiting.resolve({ outcome: 'ok', result: payload, rttMs });
    }
  }

  heartbeat(agentTimeMs: number): void {
    this.lastSeenMs = this.deps.now();
    // 0 is what a heartbeat without the field decodes to: nothing to compare then.
    if (agentTimeMs > 0) this.clockSkewMs = agentTimeMs - this.lastSeenMs;
    this.lastHeardMono = performance.now();
    this.deps.stream.write({ heartbeatAck: { controllerTimeMs: this.deps.now() } });
  }

  /** Ends the stream (idempotent) and fails every command still waiting. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const [seq, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.resolve(offline(this.deps.hostId));
      this.pending.delete(seq);
    }
    this.deps.log.info('agent session closed', { reason });
    try {
      this.deps.stream.end();
    } catch {
      // The transport may already be gone; nothing is left to tell the agent.
    }
  }
}

function offline(hostId: string): CommandOutcome {
  return { outcome: 'offline', code: 'HOST_OFFLINE', message: `host ${hostId} has no live connection` };
}
