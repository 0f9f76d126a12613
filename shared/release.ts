/**
 * Release signing: what `convoy release sign` and the agent bundle builder write beside a
 * release file, in exactly the forms the agent's `artifact` step reads back: `<file>.sha256` in
 * `sha256sum` format and `<file>.sig`, the detached Ed25519 signature as hex. Pure: callers do
 * the file I/O.
 */
import { createHash } from 'node:crypto';
import { generateKeyPair, SECRET_KEY_BYTES, signDetached } from './ed25519';
import { ConvoyError } from './errors';
import { formatPublicKey } from './keys';

export interface ReleaseSidecars {
  /** `<hex>  <name>\n`, as sha256sum prints it. */
  readonly sha256: string;
  /** 128 hex digits and a newline. */
  readonly signature: string;
}

export function signRelease(content: Uint8Array, fileName: string, secretKey: Uint8Array): ReleaseSidecars {
  const digest = createHash('sha256').update(content).digest('hex');
  const signature = Buffer.from(signDetached(content, secretKey)).toString('hex');
  return { sha256: `${digest}  ${fileName}\n`, signature: `${signature}\n` };
}

/** A new release key: the secret as the key file's text, the public key as agents pin it. */
export function newReleaseKey(): { secretKeyText: string; publicKey: string } {
  const pair = generateKeyPair();
  return {
    secretKeyText: Buffer.from(pair.secretKey).toString('base64') + '\n',
    publicKey: formatPublicKey(pair.publicKey),
  };
}

/** Reads a release key file's text (base64 of the 64-byte secret key), naming the file on error. */
export function parseReleaseKey(text: string, file: string): { secretKey: Uint8Array; publicKey: string } {
  const trimmed = text.trim();
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0);
  if (bytes.length !== SECRET_KEY_BYTES) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `${file}: not a release key (expected the base64 of a ${SECRET_KEY_BYTES}-byte Ed25519 secret key)`,
      { file },
    );
  }
  const secretKey = new Uint8Array(bytes);
  return { secretKey, publicKey: formatPublicKey(secretKey.subarray(32)) };
}
