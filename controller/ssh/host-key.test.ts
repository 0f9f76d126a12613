import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fingerprintOf, hostKeyError, judgeHostKey, loadKnownHosts, parseFingerprintFlag } from './host-key';

const keyA = randomBytes(51);
const keyB = randomBytes(51);
const dir = mkdtempSync(path.join(os.tmpdir(), 'convoy-known-hosts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function knownHosts(lines: string[]): string {
  const file = path.join(dir, `kh-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const line = (pattern: string, key: Buffer): string => `${pattern} ssh-ed25519 ${key.toString('base64')}`;

describe('host key pinning', () => {
  it('matches a fingerprint flag exactly, with or without the padding', () => {
    const fp = fingerprintOf(keyA);
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(judgeHostKey(parseFingerprintFlag(fp), keyA)).toBe('trusted');
    expect(judgeHostKey(parseFingerprintFlag(`${fp}=`), keyA)).toBe('trusted');
    expect(judgeHostKey(parseFingerprintFlag(fp), keyB)).toBe('mismatch');
  });

  it.each(['', 'MD5:aa:bb', 'SHA256:short', 'sha256:' + 'A'.repeat(43)])(
    'refuses the fingerprint %j',
    (text) => {
      expect(() => parseFingerprintFlag(text)).toThrow(/--host-key .*must be an OpenSSH SHA256 fingerprint/);
    },
  );

  it('reads known_hosts: [host]:port for other ports, plain names for 22, hashed names, @revoked', () => {
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.7]:2222').digest('base64')}`;
    const file = knownHosts([
      '# a comment',
      line('[10.0.0.5]:2222', keyA),
      line('10.0.0.6,other', keyB),
      line(hashed, keyB),
      `@revoked ${line('*', keyB).trim()}`,
    ]);
    expect(judgeHostKey(loadKnownHosts(file, { user: 'root', host: '10.0.0.5', port: 2222 }), keyA)).toBe(
      'trusted',
    );
    // Port 22 entries do not vouch for another port.
    expect(judgeHostKey(loadKnownHosts(file, { user: 'root', host: '10.0.0.6', port: 2222 }), keyA)).toBe(
      'unknown',
    );
    expect(judgeHostKey(loadKnownHosts(file, { user: 'root', host: '10.0.0.5', port: 2222 }), keyB)).toBe(
      'revoked',
    );
    expect(judgeHostKey(loadKnownHosts(file, { user: 'root', host: '10.0.0.7', port: 2222 }), keyA)).toBe(
      'mismatch',
    );
    expect(judgeHostKey(loadKnownHosts(file, { user: 'root', host: '10.0.0.9', port: 22 }), keyA)).toBe(
      'unknown',
    );
  });

  it('names the file and line of a broken known_hosts', () => {
    const file = knownHosts(['10.0.0.5 ssh-ed25519']);
    expect(() => loadKnownHosts(file, { user: 'root', host: '10.0.0.5', port: 22 })).toThrow(
      `${file}:1: not a known_hosts line`,
    );
    expect(() => loadKnownHosts(path.join(dir, 'missing'), { user: 'r', host: 'h', port: 22 })).toThrow(
      /cannot read \(ENOENT\)/,
    );
  });

  it('says which key was seen and how to pin it', () => {
    const err = hostKeyError('unknown', parseFingerprintFlag(fingerprintOf(keyA)), keyB, 'root@h:2222');
    expect(err.code).toBe('HOST_KEY_UNKNOWN');
    expect(err.message).toContain(fingerprintOf(keyB));
    expect(err.message).toContain(`--host-key ${fingerprintOf(keyB)}`);
    expect(hostKeyError('mismatch', parseFingerprintFlag(fingerprintOf(keyA)), keyB, 'h').code).toBe(
      'HOST_KEY_MISMATCH',
    );
  });
});
