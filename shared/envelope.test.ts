import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { signDetached } from './ed25519';
import {
  DEFAULT_SKEW_MS,
  ENVELOPE_DOMAINS,
  MAX_PAYLOAD_BYTES,
  sha256Hex,
  signEnvelope,
  verifyEnvelope,
  type EnvelopePayload,
  type SignedEnvelope,
  type VerifyOptions,
} from './envelope';
import { ERROR_CATALOGUE, type ErrorCode } from './errors';
import { keyIdOf } from './keys';
import { malleate } from './testing/signatures';

const NOW = 1_750_000_000_000;
const trusted = nacl.sign.keyPair();
const stranger = nacl.sign.keyPair();
const trustedKeyId = keyIdOf(trusted.publicKey);
const keys: ReadonlyMap<string, Uint8Array> = new Map([[trustedKeyId, trusted.publicKey]]);

const basePayload: EnvelopePayload = {
  v: 1,
  audience: 'host-a',
  seq: 5,
  issuedAtMs: NOW,
  expiresAtMs: NOW + 60_000,
  nonce: Buffer.from('0123456789abcdef').toString('base64'),
  idempotencyKey: 'ping-0001',
  type: 'ping',
  body: {},
};

const baseOptions: VerifyOptions = { direction: 'command', keys, audience: 'host-a', nowMs: NOW };

function command(overrides: Partial<EnvelopePayload> = {}): SignedEnvelope {
  return signEnvelope({ ...basePayload, ...overrides }, 'command', trusted.secretKey);
}

/** Signs arbitrary bytes as a command, the way a buggy or hostile but trusted sender could. */
function signRawCommand(bytes: Uint8Array): SignedEnvelope {
  const signature = signDetached(
    Buffer.concat([Buffer.from('convoy/v1/command\0'), bytes]),
    trusted.secretKey,
  );
  return { payload: bytes, signature, keyId: trustedKeyId };
}

function rawJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function withoutField(field: keyof EnvelopePayload): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...basePayload };
  delete copy[field];
  return copy;
}

function flipBit(bytes: Uint8Array, index: number, bit = 0): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[index] = (out[index] ?? 0) ^ (1 << bit);
  return out;
}

function expectFailure(envelope: SignedEnvelope, options: VerifyOptions, code: ErrorCode): void {
  const outcome = verifyEnvelope(envelope, options);
  expect(outcome).toEqual({ ok: false, code, message: expect.any(String) });
}

interface FailureCase {
  readonly name: string;
  readonly envelope: () => SignedEnvelope;
  readonly options?: Partial<VerifyOptions>;
  readonly code: ErrorCode;
}

const valid = command();

const FAILURES: readonly FailureCase[] = [
  // Sizes come first, before any key lookup or crypto.
  {
    name: 'a 63-byte signature',
    envelope: () => ({ ...valid, signature: valid.signature.subarray(0, 63) }),
    code: 'ENVELOPE_BAD_SIZE',
  },
  {
    name: 'a 65-byte signature',
    envelope: () => ({ ...valid, signature: Uint8Array.from([...valid.signature, 0]) }),
    code: 'ENVELOPE_BAD_SIZE',
  },
  {
    name: 'an empty payload',
    envelope: () => signRawCommand(new Uint8Array(0)),
    code: 'ENVELOPE_BAD_SIZE',
  },
  {
    name: 'a payload larger than MAX_PAYLOAD_BYTES',
    envelope: () => command({ body: { pad: 'x'.repeat(MAX_PAYLOAD_BYTES) } }),
    code: 'ENVELOPE_BAD_SIZE',
  },
  // Key and signature.
  {
    name: 'an unknown key id',
    envelope: () => ({ ...valid, keyId: keyIdOf(stranger.publicKey) }),
    code: 'ENVELOPE_UNKNOWN_KEY',
  },
  {
    name: 'an S + L signature',
    envelope: () => ({ ...valid, signature: malleate(valid.signature) }),
    code: 'ENVELOPE_NON_CANONICAL',
  },
  {
    name: 'one flipped bit in the payload',
    envelope: () => ({ ...valid, payload: flipBit(valid.payload, 20, 3) }),
    code: 'ENVELOPE_BAD_SIGNATURE',
  },
  {
    name: "one flipped bit in the signature's R half",
    envelope: () => ({ ...valid, signature: flipBit(valid.signature, 5, 0) }),
    code: 'ENVELOPE_BAD_SIGNATURE',
  },
  {
    name: 'a signature by another key claiming the trusted key id',
    envelope: () => ({ ...signEnvelope(basePayload, 'command', stranger.secretKey), keyId: trustedKeyId }),
    code: 'ENVELOPE_BAD_SIGNATURE',
  },
  {
    name: 'a command signature presented as a result (domain separation)',
    envelope: () => valid,
    options: { direction: 'result' },
    code: 'ENVELOPE_BAD_SIGNATURE',
  },
  // Validly signed, but not the payload the protocol defines.
  {
    name: 'a validly signed payload that is not JSON',
    envelope: () => signRawCommand(Buffer.from('{"v":1,', 'utf8')),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed JSON array',
    envelope: () => signRawCommand(rawJson([basePayload])),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed JSON null',
    envelope: () => signRawCommand(rawJson(null)),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload missing its audience',
    envelope: () => signRawCommand(rawJson(withoutField('audience'))),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload missing its seq',
    envelope: () => signRawCommand(rawJson(withoutField('seq'))),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload missing its body',
    envelope: () => signRawCommand(rawJson(withoutField('body'))),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload with v: 2',
    envelope: () => signRawCommand(rawJson({ ...basePayload, v: 2 })),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload with a fractional seq',
    envelope: () => signRawCommand(rawJson({ ...basePayload, seq: 5.5 })),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload with a negative seq',
    envelope: () => signRawCommand(rawJson({ ...basePayload, seq: -1 })),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload with a string seq',
    envelope: () => signRawCommand(rawJson({ ...basePayload, seq: '5' })),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'a validly signed payload whose body is an array',
    envelope: () => signRawCommand(rawJson({ ...basePayload, body: [] })),
    code: 'ENVELOPE_MALFORMED',
  },
  // Addressing, time and sequence.
  {
    name: 'another audience',
    envelope: () => command({ audience: 'host-b' }),
    code: 'ENVELOPE_WRONG_AUDIENCE',
  },
  {
    name: 'an expiry more than the skew allowance in the past',
    envelope: () => command({ issuedAtMs: NOW - 10 * 60_000, expiresAtMs: NOW - DEFAULT_SKEW_MS - 1 }),
    code: 'ENVELOPE_EXPIRED',
  },
  {
    name: 'an expiry beyond a custom, smaller skew allowance',
    envelope: () => command({ issuedAtMs: NOW - 60_000, expiresAtMs: NOW - 1_001 }),
    options: { skewMs: 1_000 },
    code: 'ENVELOPE_EXPIRED',
  },
  {
    name: 'an issue time more than the skew allowance in the future',
    envelope: () => command({ issuedAtMs: NOW + DEFAULT_SKEW_MS + 1, expiresAtMs: NOW + 10 * 60_000 }),
    code: 'CLOCK_SKEW',
  },
  {
    name: 'a seq below the last accepted seq',
    envelope: () => valid,
    options: { replay: { lastSeq: 6, lastDigest: 'ab'.repeat(32) } },
    code: 'ENVELOPE_REPLAY',
  },
  {
    name: 'a seq equal to the last accepted seq with the same digest',
    envelope: () => valid,
    options: { replay: { lastSeq: 5, lastDigest: sha256Hex(valid.payload) } },
    code: 'ENVELOPE_REPLAY',
  },
  {
    name: 'a seq equal to the last accepted seq when no digest was recorded',
    envelope: () => valid,
    options: { replay: { lastSeq: 5, lastDigest: null } },
    code: 'ENVELOPE_REPLAY',
  },
  {
    name: 'a seq equal to the last accepted seq with a different digest',
    envelope: () => valid,
    options: { replay: { lastSeq: 5, lastDigest: sha256Hex(command({ nonce: 'b3RoZXI=' }).payload) } },
    code: 'ENVELOPE_SEQ_CONFLICT',
  },
  // Order: the first failing check wins.
  {
    name: 'an envelope both addressed elsewhere and expired',
    envelope: () => command({ audience: 'host-b', issuedAtMs: 0, expiresAtMs: 1 }),
    code: 'ENVELOPE_WRONG_AUDIENCE',
  },
  {
    name: 'a bad-size signature under an unknown key',
    envelope: () => ({ ...valid, signature: valid.signature.subarray(0, 63), keyId: 'ffffffffffffffff' }),
    code: 'ENVELOPE_BAD_SIZE',
  },
  {
    name: 'a bad signature under an unknown key',
    envelope: () => ({ ...valid, signature: flipBit(valid.signature, 5), keyId: 'ffffffffffffffff' }),
    code: 'ENVELOPE_UNKNOWN_KEY',
  },
  {
    name: 'a non-canonical signature over a tampered payload',
    envelope: () => ({
      payload: flipBit(valid.payload, 20),
      signature: malleate(valid.signature),
      keyId: trustedKeyId,
    }),
    code: 'ENVELOPE_NON_CANONICAL',
  },
  {
    name: 'a forged signature over a malformed payload',
    envelope: () => ({ ...signRawCommand(rawJson([1])), signature: flipBit(valid.signature, 5) }),
    code: 'ENVELOPE_BAD_SIGNATURE',
  },
  {
    name: 'a malformed payload that would also be addressed elsewhere',
    envelope: () => signRawCommand(rawJson({ ...basePayload, audience: 'host-b', v: 2 })),
    code: 'ENVELOPE_MALFORMED',
  },
  {
    name: 'an expired envelope issued in the future',
    envelope: () => command({ issuedAtMs: NOW + 10 * 60_000, expiresAtMs: NOW - 10 * 60_000 }),
    code: 'ENVELOPE_EXPIRED',
  },
  {
    name: 'a replayed envelope issued too far in the future',
    envelope: () => command({ issuedAtMs: NOW + 10 * 60_000, expiresAtMs: NOW + 20 * 60_000 }),
    options: { replay: { lastSeq: 9, lastDigest: null } },
    code: 'CLOCK_SKEW',
  },
];

describe('verifyEnvelope', () => {
  it('accepts a valid command and returns the parsed payload and the SHA-256 of its exact bytes', () => {
    const outcome = verifyEnvelope(valid, baseOptions);
    const expectedDigest = createHash('sha256').update(valid.payload).digest('hex');
    expect(outcome).toEqual({ ok: true, payload: basePayload, digest: expectedDigest });
    expect(sha256Hex(valid.payload)).toBe(expectedDigest);
    expect(valid.keyId).toBe(trustedKeyId);
    expect(Buffer.from(valid.payload).toString('utf8')).toBe(JSON.stringify(basePayload));
  });

  it.each(FAILURES)('refuses $name with $code', ({ envelope, options, code }) => {
    expectFailure(envelope(), { ...baseOptions, ...options }, code);
  });

  it('accepts an envelope expired by exactly the skew allowance', () => {
    const envelope = command({ issuedAtMs: NOW - 10 * 60_000, expiresAtMs: NOW - DEFAULT_SKEW_MS });
    expect(verifyEnvelope(envelope, baseOptions).ok).toBe(true);
  });

  it('accepts an envelope expired by less than a custom skew allowance', () => {
    const envelope = command({ issuedAtMs: NOW - 60_000, expiresAtMs: NOW - 999 });
    expect(verifyEnvelope(envelope, { ...baseOptions, skewMs: 1_000 }).ok).toBe(true);
  });

  it('accepts an envelope issued in the future by exactly the skew allowance', () => {
    const envelope = command({ issuedAtMs: NOW + DEFAULT_SKEW_MS, expiresAtMs: NOW + 10 * 60_000 });
    expect(verifyEnvelope(envelope, baseOptions).ok).toBe(true);
  });

  it('accepts a seq one above the last accepted seq', () => {
    const outcome = verifyEnvelope(valid, {
      ...baseOptions,
      replay: { lastSeq: 4, lastDigest: 'ab'.repeat(32) },
    });
    expect(outcome.ok).toBe(true);
  });

  it('accepts a payload of exactly MAX_PAYLOAD_BYTES', () => {
    const overhead = Buffer.byteLength(JSON.stringify({ ...basePayload, body: { pad: '' } }), 'utf8');
    const envelope = command({ body: { pad: 'x'.repeat(MAX_PAYLOAD_BYTES - overhead) } });
    expect(envelope.payload).toHaveLength(MAX_PAYLOAD_BYTES);
    expect(verifyEnvelope(envelope, baseOptions).ok).toBe(true);
  });

  it('refuses a payload of exactly MAX_PAYLOAD_BYTES + 1', () => {
    const overhead = Buffer.byteLength(JSON.stringify({ ...basePayload, body: { pad: '' } }), 'utf8');
    const envelope = command({ body: { pad: 'x'.repeat(MAX_PAYLOAD_BYTES - overhead + 1) } });
    expect(envelope.payload).toHaveLength(MAX_PAYLOAD_BYTES + 1);
    expectFailure(envelope, baseOptions, 'ENVELOPE_BAD_SIZE');
  });

  it('accepts a result signed for the result direction and refuses it as a command', () => {
    const result = signEnvelope({ ...basePayload, type: 'result' }, 'result', trusted.secretKey);
    expect(verifyEnvelope(result, { ...baseOptions, direction: 'result' }).ok).toBe(true);
    expectFailure(result, baseOptions, 'ENVELOPE_BAD_SIGNATURE');
  });

  it('signs over the command domain prefix followed by the payload bytes', () => {
    expect(ENVELOPE_DOMAINS.command).toBe('convoy/v1/command\0');
    const raw = signRawCommand(valid.payload);
    expect(Buffer.from(raw.signature).equals(Buffer.from(valid.signature))).toBe(true);
  });

  it('covers in a test every error code verifyEnvelope can return', () => {
    const source = readFileSync(join(__dirname, 'envelope.ts'), 'utf8');
    const returnable = new Set([...source.matchAll(/fail\('([A-Z_]+)'/g)].map((m) => m[1]));
    expect(returnable.size).toBe(10);
    for (const code of returnable) expect(Object.keys(ERROR_CATALOGUE)).toContain(code);
    const testedCodes = new Set(FAILURES.map((failure) => failure.code));
    expect([...returnable].sort()).toEqual([...testedCodes].sort());
  });
});
