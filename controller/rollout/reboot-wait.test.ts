import { compileRecipe } from '../../shared/recipe/compile';
import { decideRebootWait, isRebootingReason } from './reboot-wait';

const recipe = compileRecipe(
  `
name: demo
description: d
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
phases:
  upgrade:
    - { id: apply, type: exec, argv: [/bin/true], source: s }
    - { id: reboot, type: reboot, reboot: always, timeout: 10s, source: s }
`,
  'demo.yaml',
);

describe('a host inside a reboot step', () => {
  it('is not rebooting without a rebooting report', () => {
    expect(decideRebootWait(undefined, recipe, 'upgrade', 5_000)).toEqual({ kind: 'none' });
  });

  it('waits until the step’s bound after the connection dropped, with a reason status recognises', () => {
    const wait = decideRebootWait({ stepId: 'reboot', sinceMs: 1_000 }, recipe, 'upgrade', 10_999);
    expect(wait).toMatchObject({ kind: 'waiting', untilMs: 11_000 });
    expect(wait.kind === 'waiting' && isRebootingReason(wait.reason)).toBe(true);
    expect(isRebootingReason('offline with a phase in flight')).toBe(false);
  });

  it('fails with REBOOT_TIMEOUT once the bound has passed', () => {
    const wait = decideRebootWait({ stepId: 'reboot', sinceMs: 1_000 }, recipe, 'upgrade', 11_000);
    expect(wait).toMatchObject({ kind: 'timed-out' });
    expect(wait.kind === 'timed-out' && wait.why.startsWith('REBOOT_TIMEOUT: reboot:')).toBe(true);
  });

  it('takes the default bound (15m) for a step the recipe no longer has', () => {
    expect(decideRebootWait({ stepId: 'gone', sinceMs: 0 }, recipe, 'upgrade', 14 * 60_000).kind).toBe(
      'waiting',
    );
    expect(decideRebootWait({ stepId: 'gone', sinceMs: 0 }, recipe, 'upgrade', 15 * 60_000).kind).toBe(
      'timed-out',
    );
  });
});
