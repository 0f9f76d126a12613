/**
 * Envelope verification and the agent's stream codec under hostile bytes: whatever arrives, the
 * answer is a refusal with a catalogued code (or, for the codec, a plain decode error that grpc-js
 * turns into a status), never a TypeError or RangeError, and a mutated envelope is never accepted.
 */
import path from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import nacl from 'tweetnacl';
import { signDetached } from '../../shared/ed25519';
import {
  ENVELOPE_DOMAINS,
  signEnvelope,
  verifyEnvelope,
  type EnvelopePayload,
  type SignedEnvelope,
  type VerifyOptions,
} from '../../shared/envelope';
import { ERROR_CATALOGUE } from '../../shared/errors';
import { keyIdOf } from '../../shared/keys';
import { malleate } from '../../shared/testing/signatures';
import { decodeControllerMessage } from '../../proto/stream-codec';
import { fuzzParams } from './helpers/runs';

const NOW = 1_750_000_000_000;
// Fixed keys: a failing seed must replay with the same signatures.
const trusted = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
const stranger = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(9));
const trustedId = keyIdOf(trusted.publicKey);
const keys: ReadonlyMap<string, Uint8Array> = new Map([[trustedId, trusted.publicKey]]);
const options: VerifyOptions = {
  direction: 'command',
  keys,
  audience: 'host-a',
  nowMs: NOW,
  replay: { lastSeq: 4, lastDigest: null },
};

const validPayload: EnvelopePayload = {
  v: 1,
  audience: 'host-a',
  seq: 5,
  issuedAtMs: NOW,
  expiresAtMs: NOW + 60_000,
  nonce: Buffer.from('0123456789abcdef').toString('base64'),
  idempotencyKey: 'ping-0001',
  type: 'ping',
  body: { probe: 'x' },
};
const valid = signEnvelope(validPayload, 'command', trusted.secretKey);

/** Verifies and checks the contract: no throw, and a refusal carries a catalogued code. */
function verifyChecked(envelope: SignedEnvelope, opts: VerifyOptions = options): boolean {
  const outcome = verifyEnvelope(envelope, opts);
  if (outcome.ok) return true;
  expect(Object.keys(ERROR_CATALOGUE)).toContain(outcome.code);
  expect(outcome.message.length).toBeGreaterThan(0);
  return false;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

type Mutation = (e: SignedEnvelope) => SignedEnvelope;

const flipBit =
  (field: 'payload' | 'signature', bit: number): Mutation =>
  (e) => {
    const bytes = Uint8Array.from(e[field]);
    const i = Math.floor(bit / 8) % bytes.length;
    bytes[i] = (bytes[i] ?? 0) ^ (1 << (bit % 8));
    return { ...e, [field]: bytes };
  };

const mutation: fc.Arbitrary<[string, Mutation]> = fc.oneof(
  fc.nat().map((bit): [string, Mutation] => [`flip payload bit ${bit}`, flipBit('payload', bit)]),
  fc.nat().map((bit): [string, Mutation] => [`flip signature bit ${bit}`, flipBit('signature', bit)]),
  fc
    .tuple(fc.constantFrom<'payload' | 'signature'>('payload', 'signature'), fc.nat())
    .map(([field, n]): [string, Mutation] => [
      `truncate ${field} by ${(n % 64) + 1}`,
      (e) => ({ ...e, [field]: e[field].subarray(0, Math.max(0, e[field].length - ((n % 64) + 1))) }),
    ]),
  fc
    .tuple(fc.constantFrom<'payload' | 'signature'>('payload', 'signature'), fc.uint8Array({ minLength: 1 }))
    .map(([field, extra]): [string, Mutation] => [
      `extend ${field} by ${extra.length}`,
      (e) => ({ ...e, [field]: Buffer.concat([e[field], extra]) }),
    ]),
  fc.constant<[string, Mutation]>([
    'swap payload and signature',
    (e) => ({ ...e, payload: e.signature, signature: e.payload }),
  ]),
  fc.constant<[string, Mutation]>([
    'S + L',
    (e) => ({ ...e, signature: malleate(e.signature, 'unchanged') }),
  ]),
  fc.constant<[string, Mutation]>(['stranger key id', (e) => ({ ...e, keyId: keyIdOf(stranger.publicKey) })]),
  fc.constant<[string, Mutation]>([
    're-signed by a stranger under the trusted id',
    (e) => ({
      ...e,
      signature: signDetached(
        Buffer.concat([Buffer.from(ENVELOPE_DOMAINS.command), e.payload]),
        stranger.secretKey,
      ),
    }),
  ]),
  fc.string().map((id): [string, Mutation] => [`key id ${JSON.stringify(id)}`, (e) => ({ ...e, keyId: id })]),
);

describe('fuzz › envelope verifier', () => {
  it('refuses random bytes with a catalogued code and never throws', () => {
    const keyId = fc.oneof(fc.constant(trustedId), fc.string({ maxLength: 40 }));
    const signature = fc.oneof(
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      fc.uint8Array({ maxLength: 130 }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), signature, keyId, (payload, sig, id) => {
        expect(verifyChecked({ payload, signature: sig, keyId: id })).toBe(false);
      }),
      fuzzParams(1500, 1),
    );
  });

  it('accepts the unmutated envelope (the property below can fail)', () => {
    expect(verifyChecked(valid)).toBe(true);
  });

  it('never accepts a mutated envelope: bit flips, truncation, extension, swaps, S+L, wrong keys', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const mutated = mutations.reduce((e, [, m]) => m(e), valid);
        const unchanged =
          sameBytes(mutated.payload, valid.payload) &&
          sameBytes(mutated.signature, valid.signature) &&
          mutated.keyId === valid.keyId;
        // Two flips of the same bit cancel out; only a real change must be refused.
        if (!unchanged) expect(verifyChecked(mutated)).toBe(false);
      }),
      fuzzParams(1000, 2),
    );
  });

  it('never accepts a command as a result or for another audience', () => {
    expect(verifyChecked(valid, { ...options, direction: 'result' })).toBe(false);
    expect(verifyChecked(valid, { ...options, audience: 'host-b' })).toBe(false);
  });

  it('refuses any signed payload that is not the protocol object, without throwing', () => {
    // A trusted but buggy sender: the signature is right, the content anything at all.
    const content = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
      fc
        .record(
          {
            v: fc.oneof(fc.constant(1), fc.anything()),
            audience: fc.oneof(fc.constant('host-a'), fc.anything()),
            seq: fc.oneof(fc.integer(), fc.double(), fc.anything()),
            issuedAtMs: fc.oneof(fc.constant(NOW), fc.double(), fc.anything()),
            expiresAtMs: fc.oneof(fc.constant(NOW + 1000), fc.double(), fc.anything()),
            nonce: fc.anything(),
            idempotencyKey: fc.anything(),
            type: fc.anything(),
            body: fc.anything(),
            __proto__: fc.anything(),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o) ?? '{}'),
      fc.string({ unit: 'binary' }),
    );
    fc.assert(
      fc.property(content, (text) => {
        const payload = Buffer.from(text, 'utf8');
        const signature = signDetached(
          Buffer.concat([Buffer.from(ENVELOPE_DOMAINS.command), payload]),
          trusted.secretKey,
        );
        const outcome = verifyEnvelope({ payload, signature, keyId: trustedId }, options);
        if (outcome.ok) {
          // Accepted only when every field has the protocol's type.
          const p = outcome.payload;
          expect(p.v).toBe(1);
          expect(p.audience).toBe('host-a');
          expect(Number.isSafeInteger(p.seq) && p.seq > 4).toBe(true);
          expect(typeof p.body === 'object' && p.body !== null && !Array.isArray(p.body)).toBe(true);
        } else {
          expect(Object.keys(ERROR_CATALOGUE)).toContain(outcome.code);
        }
        expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      }),
      fuzzParams(800, 3),
    );
  });
});

const root = protobuf.loadSync(path.join(__dirname, '../../proto/convoy/v1/agent.proto'));
const ControllerMessage = root.lookupType('convoy.v1.ControllerMessage');
const validFrame = Buffer.from(
  ControllerMessage.encode(
    ControllerMessage.fromObject({
      envelope: { payload: valid.payload, signature: valid.signature, keyId: valid.keyId },
    }),
  ).finish(),
);

/** Decodes and checks the contract: a known body, or a plain Error (grpc-js maps it to a status). */
function decodeChecked(bytes: Buffer): ReturnType<typeof decodeControllerMessage> | undefined {
  try {
    const m = decodeControllerMessage(bytes);
    expect(['challenge', 'welcome', 'envelope', 'heartbeatAck']).toContain(m.body);
    return m;
  } catch (err) {
    // Plain Error on purpose: a TypeError or RangeError would mean the codec itself broke.
    expect((err as Error).constructor).toBe(Error);
    expect((err as Error).message).toMatch(
      /^(truncated varint|varint too long|truncated field|field number 0|unsupported wire type \d+|ControllerMessage carries no known body)$/,
    );
    return undefined;
  }
}

describe('fuzz › stream codec', () => {
  it('decodes random bytes to a known message or a plain decode error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => void decodeChecked(Buffer.from(bytes))),
      fuzzParams(3000, 4),
    );
  });

  it('decodes mutated envelope frames to a refusal: never an accepted envelope that differs', () => {
    const edit = fc.oneof(
      fc.tuple(fc.constant('flip' as const), fc.nat()),
      fc.tuple(fc.constant('cut' as const), fc.nat()),
      fc.tuple(fc.constant('insert' as const), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })),
    );
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let bytes = Buffer.from(validFrame);
        for (const e of edits) {
          const i = e[1] % Math.max(1, bytes.length);
          if (e[0] === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (1 << (e[1] % 8));
          else if (e[0] === 'cut') bytes = bytes.subarray(0, i);
          else bytes = Buffer.concat([bytes.subarray(0, i), e[2], bytes.subarray(i)]);
        }
        const m = decodeChecked(bytes);
        if (m?.body !== 'envelope') return;
        const e = m.envelope;
        const same =
          sameBytes(e.payload, valid.payload) &&
          sameBytes(e.signature, valid.signature) &&
          e.keyId === valid.keyId;
        if (!same) expect(verifyChecked(e)).toBe(false);
      }),
      fuzzParams(1500, 5),
    );
  });
});
