/**
 * `convoy hosts enroll --ssh` and `decommission` refuse bad input before connecting to anything:
 * exit 2, one line naming the flag or file, and no token made, no host touched.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CONVOY_BIN, run, tempDir } from '../helpers/processes';

const dir = tempDir('enroll-usage');
const FP = 'SHA256:' + 'A'.repeat(43);
const tokenFile = path.join(dir, 'token');
writeFileSync(tokenFile, 'not a token at all\n');
const brokenKnownHosts = path.join(dir, 'known_hosts');
writeFileSync(brokenKnownHosts, 'host-only-no-key\n');
// No controller runs: a usage error must come before any connection is tried.
const base = ['hosts', 'enroll', '--state-dir', path.join(dir, 'no-controller'), '--identity', '/dev/null'];

describe('convoy hosts enroll --ssh: bad input', () => {
  it.each([
    ['no pin', ['--ssh', 'root@host'], /pin the host key: --host-key SHA256:\.\.\. .* or --known-hosts FILE/],
    [
      'both pins',
      ['--ssh', 'root@host', '--host-key', FP, '--known-hosts', brokenKnownHosts],
      /--host-key or --known-hosts, not both/,
    ],
    [
      'a bad fingerprint',
      ['--ssh', 'root@host', '--host-key', 'MD5:aa:bb'],
      /--host-key "MD5:aa:bb": must be an OpenSSH SHA256 fingerprint/,
    ],
    [
      'a broken known_hosts',
      ['--ssh', 'root@host', '--known-hosts', brokenKnownHosts],
      new RegExp(`${brokenKnownHosts}:1: not a known_hosts line`),
    ],
    [
      'a missing known_hosts',
      ['--ssh', 'root@host', '--known-hosts', path.join(dir, 'nope')],
      /--known-hosts .*nope: cannot read \(ENOENT\)/,
    ],
    [
      'shell in the host',
      ['--ssh', 'root@$(reboot)', '--host-key', FP],
      /--ssh "root@\$\(reboot\)": "\$\(reboot\)" is not a host name/,
    ],
    ['a bad port', ['--ssh', 'root@host:0', '--host-key', FP], /"0" is not a port/],
    [
      'a bad label',
      ['--ssh', 'root@host', '--host-key', FP, '--labels', 'novalue'],
      /--labels: label "novalue" must look like key=value/,
    ],
    [
      'a bad release key',
      ['--ssh', 'root@host', '--host-key', FP, '--release-key', 'ed25519:short'],
      /--release-key "ed25519:short": must be ed25519:<base64>/,
    ],
    [
      'a bad wait',
      ['--ssh', 'root@host', '--host-key', FP, '--wait', 'soon'],
      /--wait "soon": must be a duration/,
    ],
    [
      'a token file without a token',
      ['--ssh', 'root@host', '--host-key', FP, '--token-file', tokenFile],
      new RegExp(`--token-file ${tokenFile}: does not hold an enrollment token`),
    ],
    [
      'labels beside a token file',
      ['--ssh', 'root@host', '--host-key', FP, '--token-file', tokenFile, '--labels', 'a=b'],
      /--labels come with the token/,
    ],
    [
      'a missing bundle',
      ['--ssh', 'root@host', '--host-key', FP, '--bundle', path.join(dir, 'nobundle.js')],
      /the agent bundle is not at .*nobundle\.js: run `npm run build:agent`/,
    ],
    [
      'a node path with shell',
      ['--ssh', 'root@host', '--host-key', FP, '--node', 'node;reboot'],
      /--node "node;reboot": must be a program name or path/,
    ],
  ])('refuses %s', (_what, args, reason) => {
    const r = run(CONVOY_BIN, [...base, ...args]);
    expect(r.stderr).toMatch(reason);
    expect(r.stderr).toMatch(/^convoy: INVALID_ARGUMENT: /);
    expect(r.code).toBe(2);
  });

  it('does not echo what a bad token file holds (it may be the secret)', () => {
    writeFileSync(tokenFile, 'tok_0123.secret-looking-but-short\n');
    const r = run(CONVOY_BIN, [...base, '--ssh', 'root@host', '--host-key', FP, '--token-file', tokenFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('secret-looking');
  });

  it('decommission with --ssh needs a pin too', () => {
    const r = run(CONVOY_BIN, [
      'hosts',
      'decommission',
      'h-0000000000000000',
      '--ssh',
      'root@host',
      '--state-dir',
      dir,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pin the host key/);
  });
});
