import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import {
  challengeMessage,
  formatPublicKey,
  keyIdOf,
  parsePublicKey,
  signChallenge,
  verifyChallenge,
} from './keys';

const pair = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
const other = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(8));
const base64 = Buffer.from(pair.publicKey).toString('base64');

describe('formatPublicKey', () => {
  it('prints ed25519: followed by the standard base64 of the 32 key bytes', () => {
    expect(formatPublicKey(pair.publicKey)).toBe(`ed25519:${base64}`);
    expect(formatPublicKey(new Uint8Array(32))).toBe('ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
  });
});

describe('parsePublicKey', () => {
  it('round-trips with formatPublicKey', () => {
    for (const key of [pair.publicKey, other.publicKey, new Uint8Array(32).fill(0xff)]) {
      const parsed = parsePublicKey(formatPublicKey(key));
      expect(parsed).not.toBeNull();
      expect(Buffer.from(parsed ?? []).equals(Buffer.from(key))).toBe(true);
    }
  });

  it.each<[string, string]>([
    ['without the ed25519: prefix', base64],
    ['with surrounding whitespace', `  ed25519:${base64}\n`],
    ['without the prefix and with surrounding whitespace', `\t${base64} `],
  ])('accepts a key %s', (_name, text) => {
    const parsed = parsePublicKey(text);
    expect(parsed).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(parsed ?? []).toString('hex')).toBe(Buffer.from(pair.publicKey).toString('hex'));
  });

  it.each<[string, string]>([
    ['an empty string', ''],
    ['only whitespace', '   '],
    ['the prefix alone', 'ed25519:'],
    ['31 bytes', `ed25519:${Buffer.alloc(31, 1).toString('base64')}`],
    ['33 bytes', `ed25519:${Buffer.alloc(33, 1).toString('base64')}`],
    ['64 bytes (a secret key)', `ed25519:${Buffer.from(pair.secretKey).toString('base64')}`],
    ['base64url characters', `ed25519:${Buffer.alloc(32, 0xfb).toString('base64url')}`],
    ['a non-base64 character', `ed25519:${base64.slice(0, 10)}!${base64.slice(11)}`],
    ['an inner space', `ed25519:${base64.slice(0, 10)} ${base64.slice(10)}`],
    ['hex instead of base64', Buffer.from(pair.publicKey).toString('hex')],
    ['a different prefix', `ssh-ed25519:${base64}`],
    ['an upper-case prefix', `ED25519:${base64}`],
    ['three padding characters', `ed25519:${base64}==`],
  ])('rejects %s', (_name, text) => {
    expect(parsePublicKey(text)).toBeNull();
  });

  it('returns a plain Uint8Array rather than a Buffer', () => {
    const parsed = parsePublicKey(base64);
    expect(parsed?.constructor).toBe(Uint8Array);
  });
});

describe('keyIdOf', () => {
  it('is the first 16 hex digits of SHA-256 over the raw key', () => {
    const id = keyIdOf(pair.publicKey);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(id).toBe(createHash('sha256').update(pair.publicKey).digest('hex').slice(0, 16));
  });

  it('is stable for the same key and differs between keys', () => {
    expect(keyIdOf(pair.publicKey)).toBe(keyIdOf(Uint8Array.from(pair.publicKey)));
    expect(keyIdOf(pair.publicKey)).not.toBe(keyIdOf(other.publicKey));
  });

  it('gives the known id for the all-zero key', () => {
    // sha256 of 32 zero bytes is 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925.
    expect(keyIdOf(new Uint8Array(32))).toBe('66687aadf862bd77');
  });
});

describe('challenge signatures', () => {
  const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);
  const otherNonce = flip(nonce, 31);

  function flip(bytes: Uint8Array, index: number): Uint8Array {
    const out = Uint8Array.from(bytes);
    out[index] = (out[index] ?? 0) ^ 1;
    return out;
  }

  it('builds the message as domain prefix, nonce, then host id', () => {
    const message = challengeMessage(Uint8Array.of(1, 2), 'h');
    expect(Buffer.from(message).toString('hex')).toBe(
      Buffer.from('convoy/v1/challenge\0').toString('hex') + '0102' + Buffer.from('h').toString('hex'),
    );
  });

  it('verifies a challenge signed with the matching key', () => {
    const signature = signChallenge(nonce, 'host-a', pair.secretKey);
    expect(signature).toHaveLength(64);
    expect(verifyChallenge(nonce, 'host-a', signature, pair.publicKey)).toBe(true);
  });

  it('is a plain Ed25519 signature over the challenge message', () => {
    const signature = signChallenge(nonce, 'host-a', pair.secretKey);
    expect(nacl.sign.detached.verify(challengeMessage(nonce, 'host-a'), signature, pair.publicKey)).toBe(
      true,
    );
  });

  it.each<[string, () => boolean]>([
    [
      'another host id',
      () => verifyChallenge(nonce, 'host-b', signChallenge(nonce, 'host-a', pair.secretKey), pair.publicKey),
    ],
    [
      'a host id that only extends the signed one',
      () => verifyChallenge(nonce, 'host-ab', signChallenge(nonce, 'host-a', pair.secretKey), pair.publicKey),
    ],
    [
      'another nonce',
      () =>
        verifyChallenge(otherNonce, 'host-a', signChallenge(nonce, 'host-a', pair.secretKey), pair.publicKey),
    ],
    [
      'another public key',
      () => verifyChallenge(nonce, 'host-a', signChallenge(nonce, 'host-a', pair.secretKey), other.publicKey),
    ],
    [
      'a signature over the bare nonce and host id without the domain prefix',
      () =>
        verifyChallenge(
          nonce,
          'host-a',
          nacl.sign.detached(Buffer.concat([nonce, Buffer.from('host-a')]), pair.secretKey),
          pair.publicKey,
        ),
    ],
    [
      'a truncated signature',
      () =>
        verifyChallenge(
          nonce,
          'host-a',
          signChallenge(nonce, 'host-a', pair.secretKey).subarray(0, 63),
          pair.publicKey,
        ),
    ],
  ])('fails for %s', (_name, check) => {
    expect(check()).toBe(false);
  });
});
