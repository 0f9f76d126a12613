/**
 * Ed25519 key helpers shared by controller and agent: key ids, the text form operators copy
 * (`ed25519:<base64>`), and the connection challenge.
 */
import { createHash } from 'node:crypto';
import { PUBLIC_KEY_BYTES, signDetached, verifyDetached } from './ed25519';

const PUBLIC_KEY_PREFIX = 'ed25519:';
const CHALLENGE_DOMAIN = 'convoy/v1/challenge\0';

/** First 16 hex digits of SHA-256 over the raw 32-byte public key. */
export function keyIdOf(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 16);
}

/** `ed25519:<base64>`: the form `convoy controller pubkey` prints and agents pin. */
export function formatPublicKey(publicKey: Uint8Array): string {
  return PUBLIC_KEY_PREFIX + Buffer.from(publicKey).toString('base64');
}

/** Parses `ed25519:<base64>` (the prefix may be omitted); null when it is not a 32-byte key. */
export function parsePublicKey(text: string): Uint8Array | null {
  const trimmed = text.trim();
  const body = trimmed.startsWith(PUBLIC_KEY_PREFIX) ? trimmed.slice(PUBLIC_KEY_PREFIX.length) : trimmed;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
  const bytes = Buffer.from(body, 'base64');
  // One key, one text form: refuse lenient spellings (wrong padding or trailing bits).
  if (bytes.toString('base64') !== body) return null;
  return bytes.length === PUBLIC_KEY_BYTES ? new Uint8Array(bytes) : null;
}

/** The bytes an agent signs to prove, per connection, that it holds its enrolled key. */
export function challengeMessage(nonce: Uint8Array, hostId: string): Uint8Array {
  return Buffer.concat([Buffer.from(CHALLENGE_DOMAIN, 'utf8'), nonce, Buffer.from(hostId, 'utf8')]);
}

export function signChallenge(nonce: Uint8Array, hostId: string, secretKey: Uint8Array): Uint8Array {
  return signDetached(challengeMessage(nonce, hostId), secretKey);
}

export function verifyChallenge(
  nonce: Uint8Array,
  hostId: string,
  signature: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  return verifyDetached(challengeMessage(nonce, hostId), signature, publicKey);
}
