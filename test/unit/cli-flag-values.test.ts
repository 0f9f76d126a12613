/**
 * Both CLIs, in-process, refuse every bad flag value as a usage error: exit 2 and one line naming
 * the flag and the value, before anything is contacted or started. Each case is built so that, were
 * the value let through, the run would end otherwise: the operator commands name a state directory
 * with no controller socket (CONTROLLER_UNREACHABLE, exit 1), `controller start` and
 * `convoy-agent run` get no state directory (a usage error that names another flag), so nothing
 * ever starts.
 */
import { main as agentMain } from '../../agent/cli/main';
import { main as convoyMain } from '../../controller/cli/main';
import { runInProcess } from '../helpers/cli-in-process';

const NO_CONTROLLER = ['--state-dir', '/nonexistent/convoy-flag-values'];

const previousEnv = { ...process.env };
beforeAll(() => {
  for (const name of [
    'CONVOY_STATE_DIR',
    'CONVOY_CONTROLLER',
    'CONVOY_OPERATOR_TOKEN',
    'CONVOY_ENROLL_TOKEN',
  ])
    delete process.env[name];
});
afterAll(() => {
  process.env = previousEnv;
});

describe('convoy › a bad flag value', () => {
  // [command, flag, bad value, what the line says it must be]
  it.each<[string[], string, string, string]>([
    [['rollout', 'watch', 'r-1'], '--interval', 'abc', 'must be a duration'],
    [['rollout', 'watch', 'r-1'], '--interval', '2x', 'must be a duration'],
    [['rollout', 'watch', 'r-1'], '--interval', '50ms', '(100ms to 1d)'],
    [['rollout', 'watch', 'r-1'], '--interval', '2d', '(100ms to 1d)'],
    [['rollout', 'start', 'mail-prod'], '--stage-at', '5', 'must be an ISO time'],
    [['rollout', 'start', 'mail-prod'], '--stage-at', 'tomorrow', 'must be an ISO time'],
    [['events'], '--limit', 'NaN', 'must be a whole number from 1 to 100000'],
    [['events'], '--limit', '0', 'must be a whole number from 1 to 100000'],
    [['events'], '--limit', '200000', 'must be a whole number from 1 to 100000'],
    [['token', 'create'], '--ttl', 'forever', 'must be a duration'],
    [['token', 'create'], '--uses', '1e3', 'must be a whole number'],
    [['token', 'create'], '--uses', '4294967297', 'must be a whole number from 1 to 4294967295'],
    [['ping'], '--timeout', '10 years', 'must be a duration'],
    [['ping'], '--timeout', '60d', '(at most 49d)'],
    [
      ['phase', 'run', '--host', 'h-1', '--recipe', 'r.yaml'],
      '--phase',
      'deploy',
      'use one of check, download',
    ],
    [
      ['phase', 'run', '--select', 'role=web', '--recipe', 'r.yaml', '--phase', 'check'],
      '--parallel',
      '0x10',
      'must be a whole number from 1 to 4096',
    ],
    [
      ['phase', 'run', '--host', 'h-1', '--recipe', 'r.yaml', '--phase', 'check'],
      '--timeout',
      '50d',
      '(at most 49d)',
    ],
    [
      ['hosts', 'enroll', '--ssh', 'root@host', '--host-key', 'SHA256:' + 'A'.repeat(43)],
      '--wait',
      'soon',
      'must be a duration',
    ],
  ])('%j %s %j is refused with exit 2, naming the flag and the value', async (command, flag, value, must) => {
    const r = await runInProcess(convoyMain, [...command, ...NO_CONTROLLER, flag, value]);
    expect(r).toEqual({ code: 2, stdout: '', stderr: expect.any(String) as string });
    expect(r.stderr).toMatch(
      new RegExp(`^convoy: INVALID_ARGUMENT: ${flag} ${JSON.stringify(value)}: .+\n$`),
    );
    expect(r.stderr).toContain(must);
  });

  it.each<[string, string, string]>([
    ['--listen', 'nowhere', 'must be host:port or unix:/absolute/path'],
    ['--listen', '127.0.0.1:70000', 'must be host:port or unix:/absolute/path'],
    ['--operator-listen', 'unix:relative.sock', 'must be host:port or unix:/absolute/path'],
    ['--heartbeat-interval', '-5m', 'must be a duration'],
    ['--heartbeat-interval', '30d', '(at most 24d)'],
    ['--heartbeat-timeout', 'soon', 'must be a duration'],
    ['--enroll-rate', '-1', 'must be a positive whole number'],
    ['--log-level', 'loud', 'use one of debug, info, warn, error'],
    ['--clock-start', 'yesterday', 'must be an ISO time'],
  ])('controller start %s %j is refused with exit 2 before anything starts', async (flag, value, must) => {
    const r = await runInProcess(convoyMain, ['controller', 'start', flag, value]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`^convoy: INVALID_ARGUMENT: ${flag} ${JSON.stringify(value)}: .+\n$`),
    );
    expect(r.stderr).toContain(must);
  });

  it('--operator-token-file that cannot be read is refused, never a call without the token', async () => {
    const r = await runInProcess(convoyMain, [
      'status',
      '--controller',
      '127.0.0.1:1',
      '--operator-token-file',
      '/nonexistent/operator.token',
    ]);
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'convoy: INVALID_ARGUMENT: --operator-token-file "/nonexistent/operator.token": cannot read (ENOENT)\n',
    });
  });

  it('is reported as JSON on stdout too when the command was asked for JSON', async () => {
    const r = await runInProcess(convoyMain, ['events', ...NO_CONTROLLER, '--json', '--limit', 'NaN']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: '--limit "NaN": must be a whole number from 1 to 100000' },
    });
  });

  it.each([
    ['--interval', '2s'],
    ['--interval', '500'],
  ])('rollout watch %s %j is taken (the run goes on to find no controller)', async (flag, value) => {
    const r = await runInProcess(convoyMain, ['rollout', 'watch', 'r-1', ...NO_CONTROLLER, flag, value]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^convoy: CONTROLLER_UNREACHABLE: /);
  });
});

describe('convoy-agent › a bad flag value', () => {
  it.each<[string[], string, string, string]>([
    [['run'], '--log-level', 'loud', 'use one of debug, info, warn, error'],
    [['phase', 'run', '--recipe', 'r.yaml'], '--phase', 'deploy', 'use one of check, download'],
  ])('%j %s %j is refused with exit 2, naming the flag and the value', async (command, flag, value, must) => {
    const r = await runInProcess(agentMain, [...command, flag, value]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`^convoy-agent: INVALID_ARGUMENT: ${flag} ${JSON.stringify(value)}: .+\n$`),
    );
    expect(r.stderr).toContain(must);
  });

  it('enroll refuses a token file it cannot read instead of using CONVOY_ENROLL_TOKEN', async () => {
    process.env['CONVOY_ENROLL_TOKEN'] = 'tok_0000000000000000.from-the-environment';
    try {
      const r = await runInProcess(agentMain, [
        'enroll',
        '--controller',
        '127.0.0.1:1',
        '--controller-key',
        'nope',
        '--state-dir',
        '/nonexistent/convoy-flag-values',
        '--token-file',
        '',
      ]);
      expect(r).toEqual({
        code: 2,
        stdout: '',
        stderr: 'convoy-agent: INVALID_ARGUMENT: --token-file "": cannot read (ENOENT)\n',
      });
    } finally {
      delete process.env['CONVOY_ENROLL_TOKEN'];
    }
  });
});
