import nacl from 'tweetnacl';
import {
  generateKeyPair,
  isCanonicalSignature,
  PUBLIC_KEY_BYTES,
  SECRET_KEY_BYTES,
  SIGNATURE_BYTES,
  signDetached,
  verifyDetached,
} from './ed25519';
import { bigIntToLe, ED25519_ORDER, leToBigInt, malleate } from './testing/signatures';

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

const MESSAGES: ReadonlyArray<readonly [string, Uint8Array]> = [
  ['an empty message', new Uint8Array(0)],
  ['a one-byte message', Uint8Array.of(0x00)],
  ['a short ASCII message', utf8('convoy/v1/command\0{"type":"ping"}')],
  ['a 1 KiB patterned message', Uint8Array.from({ length: 1024 }, (_, i) => (i * 31 + 7) & 0xff)],
  ['a non-ASCII UTF-8 message', utf8('mise à jour — 升级 🚚')],
];

// A fixed seed makes the byte-for-byte comparison reproducible; a random key pair checks the rest.
const fixedPair = nacl.sign.keyPair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
const randomPair = generateKeyPair();

describe('signDetached', () => {
  it.each(MESSAGES)('produces exactly the signature tweetnacl produces for %s', (_name, message) => {
    for (const pair of [fixedPair, randomPair]) {
      const ours = signDetached(message, pair.secretKey);
      expect(ours).toHaveLength(SIGNATURE_BYTES);
      expect(Buffer.from(ours).toString('hex')).toBe(
        Buffer.from(nacl.sign.detached(message, pair.secretKey)).toString('hex'),
      );
    }
  });

  it('gives different signatures for messages that differ in one byte', () => {
    const a = signDetached(utf8('seq=1'), fixedPair.secretKey);
    const b = signDetached(utf8('seq=2'), fixedPair.secretKey);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('throws when the secret key is not 64 bytes', () => {
    expect(() => signDetached(utf8('x'), new Uint8Array(32))).toThrow(
      `secret key must be ${SECRET_KEY_BYTES} bytes`,
    );
  });
});

describe('generateKeyPair', () => {
  it('returns a 32-byte public key and a 64-byte secret key that ends with the public key', () => {
    const pair = generateKeyPair();
    expect(pair.publicKey).toHaveLength(PUBLIC_KEY_BYTES);
    expect(pair.secretKey).toHaveLength(SECRET_KEY_BYTES);
    expect(Buffer.from(pair.secretKey.subarray(32)).equals(Buffer.from(pair.publicKey))).toBe(true);
  });
});

describe('verifyDetached', () => {
  it.each(MESSAGES)('agrees with tweetnacl in both directions for %s', (_name, message) => {
    const ours = signDetached(message, randomPair.secretKey);
    expect(nacl.sign.detached.verify(message, ours, randomPair.publicKey)).toBe(true);

    const theirs = nacl.sign.detached(message, randomPair.secretKey);
    expect(verifyDetached(message, theirs, randomPair.publicKey)).toBe(true);
  });

  it('rejects a signature over another message', () => {
    const signature = signDetached(utf8('upgrade to 4.1.3'), randomPair.secretKey);
    expect(verifyDetached(utf8('upgrade to 4.1.4'), signature, randomPair.publicKey)).toBe(false);
  });

  it('rejects a signature checked against another public key', () => {
    const message = utf8('ping');
    const signature = signDetached(message, randomPair.secretKey);
    expect(verifyDetached(message, signature, fixedPair.publicKey)).toBe(false);
  });

  it('accepts a valid signature again when called a second time with the same key (cached key object)', () => {
    const message = utf8('twice');
    const signature = signDetached(message, fixedPair.secretKey);
    expect(verifyDetached(message, signature, fixedPair.publicKey)).toBe(true);
    expect(verifyDetached(message, signature, fixedPair.publicKey)).toBe(true);
    expect(verifyDetached(utf8('thrice'), signature, fixedPair.publicKey)).toBe(false);
  });

  const message = utf8('size checks');
  const good = signDetached(message, fixedPair.secretKey);
  it.each<[string, Uint8Array, Uint8Array]>([
    ['an empty signature', new Uint8Array(0), fixedPair.publicKey],
    ['a 63-byte signature', good.subarray(0, 63), fixedPair.publicKey],
    ['a 65-byte signature', Uint8Array.from([...good, 0]), fixedPair.publicKey],
    ['an empty public key', good, new Uint8Array(0)],
    ['a 31-byte public key', good, fixedPair.publicKey.subarray(0, 31)],
    ['a 33-byte public key', good, Uint8Array.from([...fixedPair.publicKey, 0])],
    ['a 64-byte secret key passed as the public key', good, fixedPair.secretKey],
    ['a public key of 32 0xff bytes (not a valid point encoding)', good, new Uint8Array(32).fill(0xff)],
    ['a public key of 32 zero bytes', good, new Uint8Array(32)],
  ])('returns false without throwing for %s', (_name, signature, publicKey) => {
    let result: boolean | undefined;
    expect(() => {
      result = verifyDetached(message, signature, publicKey);
    }).not.toThrow();
    expect(result).toBe(false);
  });
});

describe('signature malleability (S + L)', () => {
  const message = utf8('convoy/v1/command\0{"seq":5}');
  const signature = signDetached(message, fixedPair.secretKey);
  const malleated = malleate(signature);

  it('changes only the S half and keeps S + L within 256 bits', () => {
    expect(Buffer.from(malleated.subarray(0, 32)).equals(Buffer.from(signature.subarray(0, 32)))).toBe(true);
    expect(Buffer.from(malleated.subarray(32)).equals(Buffer.from(signature.subarray(32)))).toBe(false);
    expect(leToBigInt(malleated.subarray(32)) - leToBigInt(signature.subarray(32))).toBe(ED25519_ORDER);
  });

  it('is accepted by tweetnacl, so the malleability is real', () => {
    expect(nacl.sign.detached.verify(message, malleated, fixedPair.publicKey)).toBe(true);
  });

  it('is refused by verifyDetached', () => {
    expect(verifyDetached(message, signature, fixedPair.publicKey)).toBe(true);
    expect(verifyDetached(message, malleated, fixedPair.publicKey)).toBe(false);
  });

  it('is reported as non-canonical while the original is canonical', () => {
    expect(isCanonicalSignature(signature)).toBe(true);
    expect(isCanonicalSignature(malleated)).toBe(false);
  });
});

describe('isCanonicalSignature', () => {
  const withS = (s: bigint): Uint8Array => {
    const out = new Uint8Array(SIGNATURE_BYTES);
    out.set(bigIntToLe(s, 32), 32);
    return out;
  };

  it.each<{ name: string; signature: Uint8Array; canonical: boolean }>([
    { name: 'S = 0', signature: withS(0n), canonical: true },
    { name: 'S = L - 1', signature: withS(ED25519_ORDER - 1n), canonical: true },
    { name: 'S = 2^252 (just below L)', signature: withS(1n << 252n), canonical: true },
    { name: 'S = L', signature: withS(ED25519_ORDER), canonical: false },
    { name: 'S = L + 1', signature: withS(ED25519_ORDER + 1n), canonical: false },
    { name: 'S = 2^253', signature: withS(1n << 253n), canonical: false },
    { name: 'S = 2^256 - 1', signature: withS((1n << 256n) - 1n), canonical: false },
    { name: 'a 63-byte input', signature: new Uint8Array(63), canonical: false },
    { name: 'a 65-byte input', signature: new Uint8Array(65), canonical: false },
  ])('judges $name canonical: $canonical', ({ signature, canonical: expected }) => {
    expect(isCanonicalSignature(signature)).toBe(expected);
  });
});
