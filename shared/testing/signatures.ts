/**
 * Test support, imported by tests only (here because the unit tests beside shared/ may import
 * nothing outside it): the arithmetic that builds an Ed25519 signature's malleable twin.
 */

/** L, the order of the Ed25519 base point: 2^252 + 27742317777372353535851937790883648493. */
export const ED25519_ORDER = (1n << 252n) + 27742317777372353535851937790883648493n;

/** The unsigned little-endian number in `bytes`. */
export function leToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] ?? 0);
  return n;
}

/** `n` as `length` little-endian bytes; throws when it does not fit. */
export function bigIntToLe(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let rest = n;
  for (let i = 0; i < length; i++) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  if (rest !== 0n) throw new Error('value does not fit');
  return out;
}

/**
 * The same signature with its scalar S replaced by S + L: the same R, so a lenient verifier
 * (tweetnacl) accepts it, and a strict one must refuse it as non-canonical. A signature that has
 * no such twin (not 64 bytes, or S + L past 256 bits) throws, or with `'unchanged'` (mutations
 * chained at random) comes back as it is.
 */
export function malleate(signature: Uint8Array, noTwin: 'throw' | 'unchanged' = 'throw'): Uint8Array {
  const s = signature.length === 64 ? leToBigInt(signature.subarray(32)) + ED25519_ORDER : undefined;
  if (s === undefined || s >= 1n << 256n) {
    if (noTwin === 'unchanged') return signature;
    throw new Error(`no S + L twin for a ${signature.length}-byte signature`);
  }
  const out = Uint8Array.from(signature);
  out.set(bigIntToLe(s, 32), 32);
  return out;
}
