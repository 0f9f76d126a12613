/**
 * Enrollment: one-time tokens (`<id>.<secret>`, only the secret's hash stored) and the Enroll
 * RPC's logic. A token is spent in the same transaction that records the host.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ConvoyError } from '../shared/errors';
import { keyIdOf } from '../shared/keys';
import type { Labels } from '../shared/labels';
import { PUBLIC_KEY_BYTES } from '../shared/ed25519';
import type { HostFactsRecord, HostRecord, Store } from './store/store';

export interface TokenRequest {
  readonly ttlMs: number;
  readonly uses: number;
  readonly labels: Labels;
  readonly requireApproval: boolean;
}

export interface IssuedToken {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAtMs: number;
  readonly uses: number;
}

const MAX_USES = 100_000;

export async function createEnrollmentToken(
  store: Store,
  req: TokenRequest,
  nowMs: number,
): Promise<IssuedToken> {
  if (!Number.isSafeInteger(req.ttlMs) || req.ttlMs <= 0) {
    throw new ConvoyError('INVALID_ARGUMENT', 'token ttl must be a positive duration', { field: 'ttl' });
  }
  if (!Number.isSafeInteger(req.uses) || req.uses < 1 || req.uses > MAX_USES) {
    throw new ConvoyError('INVALID_ARGUMENT', `token uses must be 1-${MAX_USES}`, { field: 'uses' });
  }
  const tokenId = 'tok_' + randomBytes(8).toString('hex');
  const secret = randomBytes(24).toString('base64url');
  const expiresAtMs = nowMs + req.ttlMs;
  await store.createToken(
    {
      id: tokenId,
      secretSha256: createHash('sha256').update(secret, 'utf8').digest(),
      nowMs,
      expiresAtMs,
      uses: req.uses,
      labels: req.labels,
      requireApproval: req.requireApproval,
    },
    'operator',
  );
  return { token: `${tokenId}.${secret}`, tokenId, expiresAtMs, uses: req.uses };
}

/** Splits `<id>.<secret>`; a malformed token is as unknown as a wrong one. */
export function splitToken(token: string): { tokenId: string; secret: string } {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot === token.length - 1 || token.length > 200) {
    throw new ConvoyError('TOKEN_UNKNOWN', 'enrollment token is unknown');
  }
  return { tokenId: token.slice(0, dot), secret: token.slice(dot + 1) };
}

export async function enrollAgent(
  store: Store,
  token: string,
  publicKey: Uint8Array,
  facts: HostFactsRecord,
  nowMs: number,
  requireApproval = false,
): Promise<HostRecord> {
  if (publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new ConvoyError('INVALID_ARGUMENT', `public key must be ${PUBLIC_KEY_BYTES} bytes`, {
      field: 'public_key',
    });
  }
  const { tokenId, secret } = splitToken(token);
  return store.enrollHost({
    tokenId,
    secret,
    hostId: 'h-' + randomBytes(8).toString('hex'),
    publicKey,
    keyId: keyIdOf(publicKey),
    facts,
    nowMs,
    requireApproval,
  });
}

/**
 * A fixed-window limit on enrollment attempts per peer address, so that token guessing is slow.
 * Memory is bounded by forgetting windows that have passed.
 */
export class EnrollRateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly maxPerWindow = 600,
    private readonly windowMs = 60_000,
  ) {}

  allow(peer: string, nowMs: number): boolean {
    if (this.windows.size > 10_000) this.forgetOld(nowMs);
    const w = this.windows.get(peer);
    if (w === undefined || nowMs - w.start >= this.windowMs) {
      this.windows.set(peer, { start: nowMs, count: 1 });
      return true;
    }
    w.count += 1;
    return w.count <= this.maxPerWindow;
  }

  private forgetOld(nowMs: number): void {
    for (const [peer, w] of this.windows) if (nowMs - w.start >= this.windowMs) this.windows.delete(peer);
  }
}
