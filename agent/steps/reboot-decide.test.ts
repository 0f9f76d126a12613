import { compileRecipe } from '../../shared/recipe/compile';
import {
  decideRebootNeed,
  decideRebootStart,
  rebootCommandFor,
  rebootStepsWithoutCommand,
} from './reboot-decide';

const journaled = { stepId: 'reboot', bootId: 'boot-a', atMs: 1_000 };

describe('reboot step › where it starts', () => {
  it.each([
    ['nothing journaled', undefined, 'boot-a', 2_000, { kind: 'fresh' }],
    ['a reboot of another step', { ...journaled, stepId: 'other' }, 'boot-b', 2_000, { kind: 'fresh' }],
    [
      'a new boot id',
      journaled,
      'boot-b',
      2_000,
      { kind: 'rebooted', fromBootId: 'boot-a', toBootId: 'boot-b' },
    ],
    ['the same boot, time left', journaled, 'boot-a', 4_000, { kind: 'waiting', remainingMs: 7_000 }],
    [
      'the same boot, bound reached',
      journaled,
      'boot-a',
      11_000,
      { kind: 'did-not-happen', waitedMs: 10_000 },
    ],
    // A new boot wins even long after the bound: the host did reboot, it was only slow to say so.
    [
      'a new boot after the bound',
      journaled,
      'boot-b',
      99_000,
      { kind: 'rebooted', fromBootId: 'boot-a', toBootId: 'boot-b' },
    ],
    ['a clock stepped back', journaled, 'boot-a', 500, { kind: 'waiting', remainingMs: 10_000 }],
  ] as const)('%s', (_what, j, bootNow, now, expected) => {
    expect(decideRebootStart(j, 'reboot', bootNow, now, 10_000)).toEqual(expected);
  });
});

describe('reboot step › whether to reboot', () => {
  it.each([
    ['always', 'always', { rebootRequiredFlag: false }, 'reboot'],
    ['Debian flag', 'ifRequired', { rebootRequiredFlag: true }, 'reboot'],
    [
      'needs-restarting exits 1',
      'ifRequired',
      { rebootRequiredFlag: false, needsRestartingExit: 1 },
      'reboot',
    ],
    ['needs-restarting exits 0', 'ifRequired', { rebootRequiredFlag: false, needsRestartingExit: 0 }, 'skip'],
    ['neither flag nor needs-restarting', 'ifRequired', { rebootRequiredFlag: false }, 'skip'],
    [
      'needs-restarting fails',
      'ifRequired',
      { rebootRequiredFlag: false, needsRestartingExit: 2 },
      'unknown',
    ],
    [
      'needs-restarting killed',
      'ifRequired',
      { rebootRequiredFlag: false, needsRestartingExit: null },
      'unknown',
    ],
  ] as const)('%s', (_what, mode, probe, kind) => {
    expect(decideRebootNeed(mode, probe).kind).toBe(kind);
  });
});

describe('reboot step › the command', () => {
  it('is the recipe’s, else systemctl reboot where systemd runs, else none', () => {
    expect(rebootCommandFor(['/sbin/reboot'], true)).toEqual(['/sbin/reboot']);
    expect(rebootCommandFor(undefined, true)).toEqual(['systemctl', 'reboot']);
    expect(rebootCommandFor(undefined, false)).toBeUndefined();
  });
});

describe('reboot step › a recipe this host could not reboot', () => {
  const recipe = compileRecipe(
    `
name: demo
description: d
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
phases:
  upgrade:
    - { id: bare, type: reboot, reboot: always, source: s }
    - { id: told, type: reboot, reboot: always, command: [/sbin/reboot], source: s }
  rollback:
    - { id: back, type: reboot, reboot: ifRequired, source: s }
`,
    'demo.yaml',
  );

  it('names every reboot step without a command where systemd does not run', () => {
    expect(rebootStepsWithoutCommand(recipe, false)).toEqual(['upgrade.bare', 'rollback.back']);
    expect(rebootStepsWithoutCommand(recipe, true)).toEqual([]);
  });
});
