/** The `reboot` step as a recipe author writes it: its fields, defaults and refusals. */
import { compileRecipe } from './compile';
import { DEFAULT_TIMEOUT_MS } from './step-schema';

function recipeWith(step: string): string {
  return `
name: demo
description: d
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
phases:
  upgrade:
    - ${step}
`;
}

describe('reboot step', () => {
  it('compiles with a 15m bound and no command by default', () => {
    const r = compileRecipe(
      recipeWith('{ id: reboot-if-needed, type: reboot, reboot: ifRequired, source: seed }'),
      'demo.yaml',
    );
    expect(r.phases.upgrade[0]).toEqual({
      id: 'reboot-if-needed',
      type: 'reboot',
      reboot: 'ifRequired',
      source: 'seed',
      timeoutMs: 15 * 60_000,
      retries: 0,
    });
    expect(DEFAULT_TIMEOUT_MS.reboot).toBe(15 * 60_000);
  });

  it('takes a command and a timeout', () => {
    const r = compileRecipe(
      recipeWith(
        '{ id: rb, type: reboot, reboot: always, command: [/sbin/reboot], timeout: 20m, source: s }',
      ),
      'demo.yaml',
    );
    expect(r.phases.upgrade[0]).toMatchObject({
      reboot: 'always',
      command: ['/sbin/reboot'],
      timeoutMs: 1_200_000,
    });
  });

  it.each([
    ['{ id: rb, type: reboot, source: s }', 'phases.upgrade[0].reboot: is required'],
    [
      '{ id: rb, type: reboot, reboot: sometimes, source: s }',
      'phases.upgrade[0].reboot: must be one of ifRequired, always',
    ],
    [
      '{ id: rb, type: reboot, reboot: always, command: "systemctl reboot", source: s }',
      'phases.upgrade[0].command: must be a list',
    ],
    ['{ id: rb, type: reboot, reboot: always, command: [], source: s }', 'phases.upgrade[0].command'],
  ])('refuses %s', (step, expected) => {
    expect(() => compileRecipe(recipeWith(step), 'demo.yaml')).toThrow(expected);
  });
});
