/**
 * Both CLIs, driven in-process (their programs use commander's exitOverride), with argv built
 * from the real command tree and flags and hostile values. Each run ends with exit 0, 1 or 2; a
 * failure is a short message (`convoy: CODE: ...` or commander's `error: ...`), never a stack
 * trace or INTERNAL, and nothing is written in the working directory.
 *
 * No network: the operator commands point at an empty state directory (no socket, so the client
 * refuses before dialing), `--controller` only ever names a closed loopback port, and commands
 * that would act on a host (ssh enroll, controller start, agent run) get argv that cannot pass.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import fc from 'fast-check';
import { buildProgram as buildAgentProgram, main as agentMain } from '../../agent/cli/main';
import { buildProgram as buildConvoyProgram, main as convoyMain } from '../../controller/cli/main';
import { tempDir } from '../helpers/processes';
import { fuzzParams } from './helpers/runs';
import { runInProcess, type CliRun } from '../helpers/cli-in-process';

const sandbox = tempDir('fuzz-cli');
const cwd = path.join(sandbox, 'cwd');
const emptyState = path.join(sandbox, 'empty-state');

interface Leaf {
  readonly path: readonly string[];
  readonly flags: readonly string[];
  readonly args: number;
}

/** Every runnable command with its long flags, read from the program itself. */
function leaves(program: Command, prefix: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  for (const cmd of program.commands) {
    const p = [...prefix, cmd.name()];
    if (cmd.commands.length > 0) out.push(...leaves(cmd, p));
    else
      out.push({
        path: p,
        flags: cmd.options.map((o) => o.long).filter((f): f is string => f !== undefined),
        args: cmd.registeredArguments.length,
      });
  }
  return out;
}

// Would act on a real host or serve forever if its argv were valid: kept out of the random runs.
const SKIP = new Set([
  'controller start',
  'hosts enroll',
  'hosts decommission',
  'run',
  'enroll',
  'supervise',
  'install',
  'uninstall',
  'self-update',
  'release keygen',
]);
const NO_VALUE = /^--(json|dry-run|approve|stage-now|wait|unfinished|live|require-approval|clock-warp)$/;

const hostile = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'a\0b',
    'x'.repeat(100_000),
    'ünïcödé ☃ 𝔘 \u202e',
    '$(touch pwned)',
    '`touch pwned`',
    '; touch pwned',
    '-1',
    '-0',
    '0',
    '1e309',
    'NaN',
    '99999999999999999999999',
    '1h1h',
    '-5m',
    '5',
    '10 years',
    '25%%',
    'k=',
    '=v',
    'a=b,,c',
    '--json',
    '-',
    '--',
    '../../../../etc/shadow',
    '/dev/null',
    'unix:',
    '2024-13-45T99:99',
  ),
  fc.string({ maxLength: 30 }),
);

/** An argv for one command: its path, some of its flags with hostile values, hostile positionals. */
function argvFor(leaf: Leaf): fc.Arbitrary<string[]> {
  const flag =
    leaf.flags.length === 0
      ? fc.constant<string[]>([])
      : fc.tuple(fc.constantFrom(...leaf.flags), hostile).map(([f, v]): string[] => {
          if (f === '--controller') return [f, '127.0.0.1:1'];
          if (f === '--state-dir')
            return [f, v === '' ? emptyState : path.join(emptyState, v.replace(/\0/g, ''))];
          if (f === '--ssh') return [f, 'nobody@127.0.0.1:1'];
          return NO_VALUE.test(f) ? [f] : [f, v];
        });
  return fc
    .tuple(
      fc.array(flag, { maxLength: 4 }),
      fc.array(hostile, { maxLength: leaf.args + 1 }),
      fc.option(fc.constantFrom('--bogus', '-z', '--json=1', '--help'), { nil: undefined }),
    )
    .map(([flags, positional, extra]) => [
      ...leaf.path,
      ...positional,
      ...flags.flat(),
      ...(extra === undefined ? [] : [extra]),
    ]);
}

function expectClearOutcome(name: string, argv: readonly string[], r: CliRun): void {
  const context = `${name} ${JSON.stringify(argv).slice(0, 300)}\nstderr: ${r.stderr.slice(0, 600)}`;
  expect([0, 1, 2]).toContain(r.code);
  expect({ context, stack: /^\s+at .+:\d+:\d+\)?$/m.test(r.stderr + r.stdout) }).toEqual({
    context,
    stack: false,
  });
  expect({ context, internal: /\bINTERNAL\b|TypeError|RangeError/.test(r.stderr) }).toEqual({
    context,
    internal: false,
  });
  // A bare command group (`convoy`, `convoy hosts`) prints its help page: usage, not an error line.
  const helpPage = /^Usage: /m.test(r.stderr);
  if (r.code !== 0 && !helpPage) {
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect({ context, lines: lines.length >= 1 && lines.length <= 3 }).toEqual({ context, lines: true });
    expect({ context, first: /^(convoy(-agent)?: [A-Z_]+: |error: )/.test(lines[0] ?? '') }).toEqual({
      context,
      first: true,
    });
  }
  expect({ context, written: readdirSync(cwd) }).toEqual({ context, written: [] });
}

const previousCwd = process.cwd();
const previousEnv = { ...process.env };

beforeAll(() => {
  mkdirSync(cwd, { recursive: true });
  mkdirSync(emptyState, { recursive: true });
  process.chdir(cwd);
  process.env['CONVOY_STATE_DIR'] = emptyState;
  delete process.env['CONVOY_CONTROLLER'];
  delete process.env['CONVOY_OPERATOR_TOKEN'];
  delete process.env['CONVOY_ENROLL_TOKEN'];
});

afterAll(() => {
  process.chdir(previousCwd);
  process.env = previousEnv;
  rmSync(sandbox, { recursive: true, force: true });
});

describe.each([
  ['convoy', buildConvoyProgram, convoyMain, 70],
  ['convoy-agent', buildAgentProgram, agentMain, 71],
] as const)('fuzz › %s argv', (name, build, main, salt) => {
  const all = leaves(build());
  const runnable = all.filter((l) => !SKIP.has(l.path.join(' ')));

  it('finds the commands in the program', () => {
    expect(all.length).toBeGreaterThan(0);
    expect(runnable.length).toBeGreaterThan(0);
  });

  it('answers random argv of real commands, flags and hostile values with exit 0/1/2 and one clear line', async () => {
    const argv = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...runnable).chain(argvFor) },
      { weight: 1, arbitrary: fc.array(hostile, { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.constantFrom(...all).map((l) => [...l.path, '--bogus-flag']) },
    );
    await fc.assert(
      fc.asyncProperty(argv, async (a) => expectClearOutcome(name, a, await runInProcess(main, a))),
      fuzzParams(name === 'convoy' ? 250 : 120, salt),
    );
  }, 120_000);

  it('refuses bad durations, counts and addresses on the commands that would act, naming the flag', async () => {
    const cases: string[][] =
      name === 'convoy'
        ? [
            ['controller', 'start', '--state-dir', emptyState, '--heartbeat-interval', '-5m'],
            ['controller', 'start', '--state-dir', emptyState, '--heartbeat-interval', '10 years'],
            ['controller', 'start', '--state-dir', emptyState, '--heartbeat-timeout', '1ms'],
            ['controller', 'start', '--state-dir', emptyState, '--enroll-rate', '-1'],
            ['controller', 'start', '--state-dir', emptyState, '--enroll-rate', '1e309'],
            ['controller', 'start', '--state-dir', emptyState, '--log-level', '$(touch pwned)'],
            ['controller', 'start', '--state-dir', emptyState, '--clock-start', 'yesterday'],
            ['ping', '--timeout', '10 years'],
            ['token', 'create', '--ttl', '-1h'],
            ['token', 'create', '--uses', '-3'],
            ['events', '--limit', 'NaN'],
          ]
        : [
            ['run'],
            [
              'enroll',
              '--controller',
              '127.0.0.1:1',
              '--controller-key',
              'nope',
              '--state-dir',
              path.join(emptyState, 'a'),
              '--token',
              't',
            ],
          ];
    for (const argv of cases) {
      const r = await runInProcess(main, argv);
      expectClearOutcome(name, argv, r);
      expect({ argv, code: r.code }).not.toEqual({ argv, code: 0 });
      const flag = argv.find((a) => a.startsWith('--') && a !== '--state-dir' && a !== '--controller');
      if (r.code === 2 && flag !== undefined && name === 'convoy') expect(r.stderr).toContain(flag);
    }
  }, 120_000);
});
