/**
 * Host-key pinning for SSH enrollment. ssh2 accepts any host key unless told otherwise
 * (security.md, "SSH bootstrap MITM"), so every connection carries a verifier built here from
 * `--host-key SHA256:...` or a known_hosts file, and an unknown or different key stops the
 * handshake before any credential is sent. The verdict is kept so the error can say which it was,
 * with the fingerprint and how to pin it.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConvoyError } from '../../shared/errors';
import type { SshTarget } from './target';

export type HostKeyPin =
  | { readonly kind: 'fingerprint'; readonly fingerprint: string }
  | {
      readonly kind: 'known-hosts';
      readonly file: string;
      readonly keys: readonly Buffer[];
      readonly revoked: readonly Buffer[];
    };

export type HostKeyVerdict = 'trusted' | 'unknown' | 'mismatch' | 'revoked';

/** OpenSSH's fingerprint of a public key blob: `SHA256:` + unpadded base64. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export function parseFingerprintFlag(text: string): HostKeyPin {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text.trim());
  if (m === null) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--host-key ${JSON.stringify(text)}: must be an OpenSSH SHA256 fingerprint (SHA256: and 43 base64 characters, as ssh-keygen -lf prints)`,
      { field: 'host-key' },
    );
  }
  return { kind: 'fingerprint', fingerprint: `SHA256:${m[1] ?? ''}` };
}

/** The keys a known_hosts file lists for the target (`host` on port 22, `[host]:port` otherwise). */
export function loadKnownHosts(file: string, target: SshTarget): HostKeyPin {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--known-hosts ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { file },
    );
  }
  const name = target.port === 22 ? target.host : `[${target.host}]:${target.port}`;
  const keys: Buffer[] = [];
  const revoked: Buffer[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@') === true) marker = fields.shift();
    const [patterns, , keyText] = fields;
    if (patterns === undefined || keyText === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(keyText)) {
      throw new ConvoyError('INVALID_ARGUMENT', `${file}:${i + 1}: not a known_hosts line`, { file });
    }
    if (marker === '@cert-authority' || !hostMatches(patterns, name)) return;
    (marker === '@revoked' ? revoked : keys).push(Buffer.from(keyText, 'base64'));
  });
  return { kind: 'known-hosts', file, keys, revoked };
}

/** OpenSSH's pattern list: comma-separated, `*` and `?`, `!` negates, `|1|salt|hash` hashed names. */
function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (salt === undefined || hash === undefined) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const p of patterns.split(',')) {
    const negated = p.startsWith('!');
    const glob = negated ? p.slice(1) : p;
    const re = new RegExp(
      '^' +
        glob
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.') +
        '$',
      'i',
    );
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export function judgeHostKey(pin: HostKeyPin, presented: Buffer): HostKeyVerdict {
  if (pin.kind === 'fingerprint')
    return fingerprintOf(presented) === pin.fingerprint ? 'trusted' : 'mismatch';
  if (pin.revoked.some((k) => k.equals(presented))) return 'revoked';
  if (pin.keys.some((k) => k.equals(presented))) return 'trusted';
  return pin.keys.length === 0 ? 'unknown' : 'mismatch';
}

/** The error for a key that was not trusted: what was seen, and how to pin it after checking. */
export function hostKeyError(
  verdict: Exclude<HostKeyVerdict, 'trusted'>,
  pin: HostKeyPin,
  presented: Buffer,
  where: string,
): ConvoyError {
  const fp = fingerprintOf(presented);
  const howToPin = `check it against the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub there), then pass --host-key ${fp}`;
  if (verdict === 'unknown') {
    return new ConvoyError(
      'HOST_KEY_UNKNOWN',
      `${where} presented host key ${fp}, which ${pin.kind === 'known-hosts' ? pin.file : '--host-key'} does not list; nothing was sent. To trust it: ${howToPin}`,
    );
  }
  const expected = pin.kind === 'fingerprint' ? `the pinned ${pin.fingerprint}` : `the key ${pin.file} lists`;
  return new ConvoyError(
    'HOST_KEY_MISMATCH',
    `${where} presented host key ${fp}, not ${expected}${verdict === 'revoked' ? ' (it is marked @revoked)' : ''}; nothing was sent. If the host really was re-keyed: ${howToPin}`,
  );
}
