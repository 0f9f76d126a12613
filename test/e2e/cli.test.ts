/**
 * The CLIs as an operator meets them: help everywhere, one-line failures with non-zero exits,
 * the operator API over TCP only with its bearer token, and bad agent configs named precisely.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet';
import { AGENT_BIN, CONVOY_BIN, run, tempDir } from '../helpers/processes';

jest.setTimeout(60_000);

describe('convoy CLI', () => {
  it.each([
    [[]],
    [['controller', 'start']],
    [['controller', 'pubkey']],
    [['token', 'create']],
    [['status']],
    [['hosts', 'list']],
    [['hosts', 'show']],
    [['hosts', 'approve']],
    [['hosts', 'revoke']],
    [['ping']],
  ])('prints help for %j and exits 0', (args) => {
    const r = run(CONVOY_BIN, [...args, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: convoy/);
  });

  it.each([
    ['an unknown command', ['frobnicate'], /unknown command/],
    ['a missing host id', ['hosts', 'show'], /missing required argument/],
    ['an unknown option', ['status', '--colour'], /unknown option/],
  ])('rejects %s with exit 2', (_what, args, message) => {
    const r = run(CONVOY_BIN, args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('says where to point it when no controller is named', () => {
    const r = run(CONVOY_BIN, ['status'], { CONVOY_STATE_DIR: '', CONVOY_CONTROLLER: '' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--state-dir DIR or --controller ADDR');
  });

  it('reports an absent controller in one line with exit 1', () => {
    const dir = tempDir('nocontroller');
    const r = run(CONVOY_BIN, ['status', '--state-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^convoy: CONTROLLER_UNREACHABLE: no controller socket at .*convoy\.sock: is the controller running\?\n$/,
    );
  });

  it('finds the controller through CONVOY_STATE_DIR', () => {
    const dir = tempDir('envdir');
    const r = run(CONVOY_BIN, ['status'], { CONVOY_STATE_DIR: dir });
    expect(r.stderr).toContain(path.join(dir, 'convoy.sock'));
  });

  it('refuses a bad --ttl before calling anything', () => {
    const r = run(CONVOY_BIN, ['token', 'create', '--ttl', 'forever', '--state-dir', tempDir('ttl')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--ttl "forever": must be a duration');
  });

  it('refuses a bad --interval instead of watching at a default pace', () => {
    const r = run(CONVOY_BIN, [
      'rollout',
      'watch',
      'r-1',
      '--interval',
      'abc',
      '--state-dir',
      '/nonexistent/convoy-interval',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^convoy: INVALID_ARGUMENT: --interval "abc": must be a duration .*\n$/);
  });
});

describe('operator API over TCP', () => {
  const fleet = new TestFleet({ extraArgs: ['--operator-listen', '127.0.0.1:0'] });
  let tcp = '';

  beforeAll(async () => {
    await fleet.startController();
    const m = await fleet.controller?.waitForOutput(/"operatorListen":"([^"]+)"/);
    tcp = m?.[1] ?? '';
  });

  afterAll(async () => {
    await fleet.stop();
  });

  it('answers with the bearer token and refuses without it or with a wrong one', () => {
    const token = readFileSync(path.join(fleet.stateDir, 'operator.token'), 'utf8').trim();
    const ok = run(CONVOY_BIN, ['status', '--controller', tcp, '--json'], { CONVOY_OPERATOR_TOKEN: token });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ hosts: [] });
    for (const env of [{ CONVOY_OPERATOR_TOKEN: '' }, { CONVOY_OPERATOR_TOKEN: token.slice(0, -1) + 'x' }]) {
      for (const args of [
        ['status'],
        ['token', 'create'],
        ['hosts', 'list'],
        ['ping'],
        ['controller', 'pubkey'],
      ]) {
        const r = run(CONVOY_BIN, [...args, '--controller', tcp], env);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain('UNAUTHENTICATED');
      }
    }
  });
});

describe('convoy-agent CLI', () => {
  it('prints help for run and enroll', () => {
    for (const cmd of ['run', 'enroll']) {
      const r = run(AGENT_BIN, [cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: convoy-agent/);
    }
  });

  it.each([
    [
      'a missing field',
      (key: string) => `controller: 127.0.0.1:1\ncontrollerKey: ${key}\n`,
      'hostId: is required',
    ],
    [
      'a typo',
      (key: string) => `controller: 127.0.0.1:1\ncontrollerKey: ${key}\nhostId: h-1\nheartbeat: 5\n`,
      'heartbeat: unknown field',
    ],
    [
      'a bad key',
      () => 'controller: 127.0.0.1:1\ncontrollerKey: nope\nhostId: h-1\n',
      'controllerKey: must be',
    ],
  ])('refuses to run with %s, naming file and field, writing nothing', (_what, body, message) => {
    const dir = tempDir('badcfg');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, body('ed25519:' + Buffer.alloc(32, 2).toString('base64')));
    const r = run(AGENT_BIN, ['run', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`convoy-agent: CONFIG_INVALID: ${file}: ${r.stderr.split(`${file}: `)[1] ?? ''}`);
    expect(r.stderr).toContain(message);
    expect(readdirSync(dir)).toEqual(['agent.yaml']);
  });

  it('refuses a bad --log-level instead of running at the configured one', () => {
    const r = run(AGENT_BIN, ['run', '--config', '/nonexistent/agent.yaml', '--log-level', 'loud']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'convoy-agent: INVALID_ARGUMENT: --log-level "loud": use one of debug, info, warn, error\n',
    );
  });

  it('refuses a config file that does not exist', () => {
    const r = run(AGENT_BIN, ['run', '--config', '/nonexistent/agent.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CONFIG_INVALID: /nonexistent/agent.yaml: cannot read (ENOENT)');
  });

  it('refuses enrollment arguments that cannot work before contacting anyone', () => {
    const dir = tempDir('badenroll');
    const r = run(AGENT_BIN, [
      'enroll',
      '--controller',
      'nowhere',
      '--token',
      't.x',
      '--controller-key',
      'k',
      '--state-dir',
      dir,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--controller-key: must be an Ed25519 public key');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a release key that is not one, before contacting anyone', () => {
    const dir = tempDir('badrelease');
    const r = run(AGENT_BIN, [
      'enroll',
      '--controller',
      '127.0.0.1:9',
      '--token',
      't.x',
      '--controller-key',
      'ed25519:' + Buffer.alloc(32, 1).toString('base64'),
      '--release-key',
      'ed25519:nope',
      '--state-dir',
      dir,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'INVALID_ARGUMENT: --release-key "ed25519:nope": must be an Ed25519 public key',
    );
    expect(readdirSync(dir)).toEqual([]);
  });
});
