/** The agent's own Ed25519 key (agent.key, mode 0600) and the atomic writes enrollment needs. */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, type KeyPair } from '../shared/ed25519';
import { ConvoyError } from '../shared/errors';
import { KEY_FILE } from './config';
import { fsyncDir } from './seq-journal';

export function readAgentKey(stateDir: string): KeyPair {
  const file = path.join(stateDir, KEY_FILE);
  let text: string;
  try {
    if ((statSync(file).mode & 0o077) !== 0) {
      throw new ConvoyError('STATE_DIR_INVALID', `${file}: readable by others; chmod 600`, { file });
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConvoyError) throw err;
    throw new ConvoyError('STATE_DIR_INVALID', `${file}: cannot read the agent key (enroll first)`, { file });
  }
  const secret = Buffer.from(text.trim(), 'base64');
  if (secret.length !== SECRET_KEY_BYTES) {
    throw new ConvoyError('STATE_DIR_INVALID', `${file}: not a ${SECRET_KEY_BYTES}-byte Ed25519 secret key`, {
      file,
    });
  }
  const secretKey = new Uint8Array(secret);
  return { secretKey, publicKey: secretKey.slice(SECRET_KEY_BYTES - PUBLIC_KEY_BYTES) };
}

/** Writes `text` to `file` with mode 0600 so that readers see the old file or the whole new one. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}
