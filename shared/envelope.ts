/**
 * Signed envelopes: how a command reaches an agent and how its result comes back.
 *
 * The signature covers `domain prefix || payload bytes`; the payload is parsed only after the
 * signature verified over the exact bytes received (style.md §19). The prefix keeps a command
 * signature from ever being accepted as a result or a challenge answer, and vice versa.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ErrorCode } from './errors';
import { isCanonicalSignature, SIGNATURE_BYTES, signDetached, verifyDetached } from './ed25519';
import { keyIdOf } from './keys';

export const ENVELOPE_DOMAINS = {
  command: 'convoy/v1/command\0',
  result: 'convoy/v1/result\0',
} as const;
export type EnvelopeDirection = keyof typeof ENVELOPE_DOMAINS;

/** Agents send small messages; anything bigger is refused before any crypto runs. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** Default clock skew allowance between controller and agent. */
export const DEFAULT_SKEW_MS = 60_000;

/** What a signed payload says, for commands and results alike. */
export interface EnvelopePayload {
  /** Protocol version of the payload; always 1. */
  readonly v: 1;
  /** Command: the agent's host id. Result: the controller's key id. */
  readonly audience: string;
  /** Per-sender strictly increasing sequence number (per agent for commands). */
  readonly seq: number;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  /** 16 random bytes, base64; makes two otherwise equal payloads differ. */
  readonly nonce: string;
  /** Stable across retries of the same intent, so a receiver can answer a retry from its record. */
  readonly idempotencyKey: string;
  /** What the envelope asks or reports: `ping`, `status`, `result`, `refusal`. */
  readonly type: string;
  readonly body: Readonly<Record<string, unknown>>;
}

export interface SignedEnvelope {
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  readonly keyId: string;
}

/** The receiver's memory of what it last accepted from this sender. */
export interface ReplayState {
  readonly lastSeq: number;
  /** SHA-256 hex of the payload accepted at lastSeq, or null when nothing was accepted yet. */
  readonly lastDigest: string | null;
}

export interface VerifyOptions {
  readonly direction: EnvelopeDirection;
  /** Trusted public keys by key id. */
  readonly keys: ReadonlyMap<string, Uint8Array>;
  /** Who this receiver is: its host id (commands) or the controller key id (results). */
  readonly audience: string;
  readonly nowMs: number;
  /** Default DEFAULT_SKEW_MS. */
  readonly skewMs?: number;
  /** Omit to skip the replay checks (the caller checks sequence another way). */
  readonly replay?: ReplayState;
}

export type VerifyOutcome =
  | { readonly ok: true; readonly payload: EnvelopePayload; readonly digest: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** Signs a payload for one direction with a 64-byte tweetnacl secret key. */
export function signEnvelope(
  payload: EnvelopePayload,
  direction: EnvelopeDirection,
  secretKey: Uint8Array,
): SignedEnvelope {
  const bytes = Buffer.from(JSON.stringify(payload), 'utf8');
  const signature = signDetached(withDomain(direction, bytes), secretKey);
  return { payload: bytes, signature, keyId: keyIdOf(secretKey.subarray(32)) };
}

/** Verifies in a fixed order and answers with the first failure's code. */
export function verifyEnvelope(envelope: SignedEnvelope, options: VerifyOptions): VerifyOutcome {
  const { payload, signature } = envelope;
  if (signature.length !== SIGNATURE_BYTES) {
    return fail('ENVELOPE_BAD_SIZE', `signature is ${signature.length} bytes, expected 64`);
  }
  if (payload.length === 0 || payload.length > MAX_PAYLOAD_BYTES) {
    return fail('ENVELOPE_BAD_SIZE', `payload is ${payload.length} bytes, limit ${MAX_PAYLOAD_BYTES}`);
  }
  const publicKey = options.keys.get(envelope.keyId);
  if (publicKey === undefined) return fail('ENVELOPE_UNKNOWN_KEY', `key id ${envelope.keyId} is not trusted`);
  if (!isCanonicalSignature(signature)) {
    return fail('ENVELOPE_NON_CANONICAL', 'signature scalar S is not below the group order');
  }
  if (!verifyDetached(withDomain(options.direction, payload), signature, publicKey)) {
    return fail('ENVELOPE_BAD_SIGNATURE', 'signature does not match the payload');
  }
  const parsed = parsePayload(payload);
  if (typeof parsed === 'string') return fail('ENVELOPE_MALFORMED', parsed);
  return checkPayload(parsed, sha256Hex(payload), options);
}

function checkPayload(payload: EnvelopePayload, digest: string, options: VerifyOptions): VerifyOutcome {
  const skewMs = options.skewMs ?? DEFAULT_SKEW_MS;
  if (payload.audience !== options.audience) {
    return fail('ENVELOPE_WRONG_AUDIENCE', `addressed to ${payload.audience}, not ${options.audience}`);
  }
  if (options.nowMs > payload.expiresAtMs + skewMs) {
    return fail('ENVELOPE_EXPIRED', `expired ${options.nowMs - payload.expiresAtMs} ms ago`);
  }
  if (payload.issuedAtMs > options.nowMs + skewMs) {
    const ahead = payload.issuedAtMs - options.nowMs;
    return fail('CLOCK_SKEW', `issued ${ahead} ms in the future; allowance is ${skewMs} ms`);
  }
  const replay = options.replay;
  if (replay !== undefined && payload.seq <= replay.lastSeq) {
    if (
      payload.seq === replay.lastSeq &&
      replay.lastDigest !== null &&
      !safeEqualHex(digest, replay.lastDigest)
    ) {
      return fail('ENVELOPE_SEQ_CONFLICT', `seq ${payload.seq} was accepted before with other content`);
    }
    return fail('ENVELOPE_REPLAY', `seq ${payload.seq} is not above the last accepted ${replay.lastSeq}`);
  }
  return { ok: true, payload, digest };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function withDomain(direction: EnvelopeDirection, payload: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(ENVELOPE_DOMAINS[direction], 'utf8'), payload]);
}

function parsePayload(bytes: Uint8Array): EnvelopePayload | string {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return 'payload is not JSON';
  }
  if (!isRecord(value)) return 'payload is not an object';
  if (value['v'] !== 1) return 'payload version is not 1';
  for (const field of ['audience', 'nonce', 'idempotencyKey', 'type'] as const) {
    if (typeof value[field] !== 'string') return `payload field ${field} must be a string`;
  }
  for (const field of ['seq', 'issuedAtMs', 'expiresAtMs'] as const) {
    const n = value[field];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      return `payload field ${field} must be a non-negative integer`;
    }
  }
  if (!isRecord(value['body'])) return 'payload field body must be an object';
  return value as unknown as EnvelopePayload;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function safeEqualHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function fail(code: ErrorCode, message: string): VerifyOutcome {
  return { ok: false, code, message };
}
