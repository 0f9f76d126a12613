import { AgentConfigError, compileAgentConfig } from './config';

const KEY = 'ed25519:' + Buffer.alloc(32, 1).toString('base64');
const GOOD = `controller: 127.0.0.1:4860\ncontrollerKey: ${KEY}\nhostId: h-0123456789abcdef\n`;

describe('agent config', () => {
  it('compiles a minimal file with defaults, relative to the file', () => {
    const c = compileAgentConfig(GOOD, '/etc/convoy/agent.yaml');
    expect(c).toMatchObject({
      controller: '127.0.0.1:4860',
      hostId: 'h-0123456789abcdef',
      stateDir: '/etc/convoy',
      logLevel: 'info',
      reconnectInitialMs: 500,
      reconnectMaxMs: 30_000,
      clockSkewMs: 60_000,
    });
    expect(Buffer.from(c.controllerKey).equals(Buffer.alloc(32, 1))).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads the JSON form enroll writes exactly as the same YAML', () => {
    const json = JSON.stringify(
      { controller: '127.0.0.1:4860', controllerKey: KEY, hostId: 'h-0123456789abcdef' },
      null,
      2,
    );
    expect(compileAgentConfig(json, '/etc/convoy/agent.yaml')).toEqual(
      compileAgentConfig(GOOD, '/etc/convoy/agent.yaml'),
    );
  });

  it('checks the JSON form field by field too', () => {
    const json = JSON.stringify({
      controller: 'x',
      controllerKey: KEY,
      hostId: 'h-1',
      __proto__: { polluted: 1 },
    });
    expect(() => compileAgentConfig(json, 'agent.yaml')).toThrow(/controller: must be host:port/);
    expect(() =>
      compileAgentConfig('{"controller": "127.0.0.1:1", "__proto__": {"a": 1}}', 'agent.yaml'),
    ).toThrow(/__proto__: unknown field/);
  });

  it('accepts a unix socket controller address', () => {
    const c = compileAgentConfig(
      GOOD.replace('127.0.0.1:4860', 'unix:/run/convoy/agent.sock'),
      '/x/agent.yaml',
    );
    expect(c.controller).toBe('unix:/run/convoy/agent.sock');
  });

  it.each([
    ['an empty file', '', /must be a mapping/],
    ['a list', '- a\n- b\n', /must be a mapping/],
    ['broken YAML', 'controller: [unclosed\n', /not valid YAML/],
    ['a duplicate key', GOOD + 'hostId: h-other\n', /not valid YAML/],
    ['a missing controller', GOOD.replace(/^controller:.*\n/m, ''), /controller: is required/],
    ['a bad controller address', GOOD.replace('127.0.0.1:4860', 'http://x'), /controller: must be host:port/],
    ['a port out of range', GOOD.replace('4860', '70000'), /controller: must be host:port/],
    ['a bad key', GOOD.replace(KEY, 'ed25519:AAAA'), /controllerKey: must be an Ed25519 public key/],
    ['a key of the wrong type', GOOD.replace(KEY, '42'), /controllerKey: must be a non-empty string/],
    [
      'a hostId with shell characters',
      GOOD.replace('h-0123456789abcdef', '"h-1; rm -rf /"'),
      /hostId: must be 1-64/,
    ],
    ['an unknown field', GOOD + 'controler: typo\n', /controler: unknown field/],
    ['a bad log level', GOOD + 'logLevel: loud\n', /logLevel: must be debug, info, warn or error/],
    [
      'a negative reconnect delay',
      GOOD + 'reconnectInitialMs: -5\n',
      /reconnectInitialMs: must be an integer/,
    ],
    ['a missing controllerKey', GOOD.replace(/^controllerKey:.*\n/m, ''), /controllerKey: is required/],
    ['a missing hostId', GOOD.replace(/^hostId:.*\n/m, ''), /hostId: is required/],
    ['a blank stateDir', GOOD + 'stateDir: "  "\n', /stateDir: must be a non-empty string/],
    ['a hostname that is a number', GOOD + 'hostname: 42\n', /hostname: must be a non-empty string/],
    ['a log level that is a number', GOOD + 'logLevel: 3\n', /logLevel: must be debug, info, warn or error/],
    [
      'a fractional reconnect ceiling',
      GOOD + 'reconnectMaxMs: 1.5\n',
      /reconnectMaxMs: must be an integer from 10 to 3600000/,
    ],
    [
      'a clock skew over an hour',
      GOOD + 'clockSkewMs: 3600001\n',
      /clockSkewMs: must be an integer from 0 to 3600000/,
    ],
    ['a duration string for a number of ms', GOOD + 'clockSkewMs: 5s\n', /clockSkewMs: must be an integer/],
    ['a blank secretsFile', GOOD + 'secretsFile: ""\n', /secretsFile: must be a non-empty string/],
    ['release keys that are not a list', GOOD + `releaseKeys: ${KEY}\n`, /releaseKeys: must be a list/],
    [
      'one bad release key among good ones',
      GOOD + `releaseKeys:\n  - ${KEY}\n  - ed25519:AAAA\n`,
      /releaseKeys\[1\]: must be an Ed25519 public key/,
    ],
    [
      'a YAML alias',
      GOOD.replace('controller: ', 'controller: &c ') + 'hostname: *c\n',
      /Alias resolution is disabled/,
    ],
  ])('rejects %s, naming the file and field', (_what, text, message) => {
    expect(() => compileAgentConfig(text, '/etc/convoy/agent.yaml')).toThrow(message);
    expect(() => compileAgentConfig(text, '/etc/convoy/agent.yaml')).toThrow(/^\/etc\/convoy\/agent\.yaml: /);
  });

  it('compiles every optional field: paths against the file, keys parsed, the ceiling at least the first delay', () => {
    const c = compileAgentConfig(
      GOOD +
        'stateDir: state\nhostname: mail-1\nlogLevel: debug\nsecretsFile: /root/secrets.json\n' +
        `reconnectInitialMs: 2000\nreconnectMaxMs: 1000\nclockSkewMs: 0\nreleaseKeys:\n  - ${KEY}\n`,
      '/etc/convoy/agent.yaml',
    );
    expect(c).toMatchObject({
      stateDir: '/etc/convoy/state',
      hostname: 'mail-1',
      logLevel: 'debug',
      secretsFile: '/root/secrets.json',
      reconnectInitialMs: 2000,
      reconnectMaxMs: 2000,
      clockSkewMs: 0,
    });
    expect(c.releaseKeys.map((k) => Buffer.from(k).equals(Buffer.alloc(32, 1)))).toEqual([true]);
    expect(Object.isFrozen(c.releaseKeys)).toBe(true);
  });

  it('throws CONFIG_INVALID carrying the file, the first bad field and every problem by path', () => {
    let error: unknown;
    try {
      compileAgentConfig(GOOD + 'clockSkewMs: -1\nlogLevel: loud\n', '/etc/convoy/agent.yaml');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AgentConfigError);
    expect((error as AgentConfigError).problems.map((p) => p.path)).toEqual(['logLevel', 'clockSkewMs']);
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      context: { file: '/etc/convoy/agent.yaml', field: 'logLevel' },
    });
  });

  it('reports every problem at once', () => {
    const text = 'controller: nope\ncontrollerKey: bad\nhostId: "a b"\nextra: 1\n';
    let message = '';
    try {
      compileAgentConfig(text, 'agent.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    for (const field of ['extra: unknown field', 'controller: must', 'controllerKey: must', 'hostId: must']) {
      expect(message).toContain(field);
    }
  });

  it('does not let a __proto__ key reach Object.prototype', () => {
    expect(() => compileAgentConfig(GOOD + '__proto__:\n  polluted: yes\n', 'agent.yaml')).toThrow(
      /__proto__: unknown field/,
    );
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
