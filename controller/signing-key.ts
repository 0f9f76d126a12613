/**
 * The controller's command-signing key: created on first start, kept in the state directory
 * with mode 0600, never logged. Agents pin its public half at enrollment.
 */
import { constants, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { generateKeyPair, PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, type KeyPair } from '../shared/ed25519';
import { ConvoyError } from '../shared/errors';
import { formatPublicKey, keyIdOf } from '../shared/keys';

export const SIGNING_KEY_FILE = 'controller.key';

export interface ControllerKey extends KeyPair {
  readonly keyId: string;
  /** `ed25519:<base64>` */
  readonly publicText: string;
}

export function signingKeyPath(stateDir: string): string {
  return path.join(stateDir, SIGNING_KEY_FILE);
}

/** Reads the key, or creates it (exclusive create, 0600, fsync) when the file does not exist. */
export async function loadOrCreateSigningKey(stateDir: string): Promise<ControllerKey> {
  const file = signingKeyPath(stateDir);
  if (existsSync(file)) return readSigningKey(stateDir);
  const pair = generateKeyPair();
  const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(Buffer.from(pair.secretKey).toString('base64') + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return withIds(pair);
}

export async function readSigningKey(stateDir: string): Promise<ControllerKey> {
  const file = signingKeyPath(stateDir);
  const stat = await fs.stat(file).catch(() => null);
  if (stat === null)
    throw new ConvoyError('STATE_DIR_INVALID', `${file}: no controller key (start the controller once)`, {
      file,
    });
  if ((stat.mode & 0o077) !== 0) {
    throw new ConvoyError(
      'STATE_DIR_INVALID',
      `${file}: mode ${(stat.mode & 0o777).toString(8)} lets others read the key; chmod 600`,
      { file },
    );
  }
  const secret = Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64');
  if (secret.length !== SECRET_KEY_BYTES) {
    throw new ConvoyError('STATE_DIR_INVALID', `${file}: not a ${SECRET_KEY_BYTES}-byte Ed25519 secret key`, {
      file,
    });
  }
  const secretKey = new Uint8Array(secret);
  return withIds({ secretKey, publicKey: secretKey.slice(SECRET_KEY_BYTES - PUBLIC_KEY_BYTES) });
}

function withIds(pair: KeyPair): ControllerKey {
  return { ...pair, keyId: keyIdOf(pair.publicKey), publicText: formatPublicKey(pair.publicKey) };
}
