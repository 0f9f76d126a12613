import { conditionHolds } from './step-condition';

describe('conditionHolds', () => {
  const core = { roles: ['core'] };

  it('holds without a condition, and by role as before', () => {
    expect(conditionHolds(undefined, core)).toBe(true);
    expect(conditionHolds({ role: ['core'] }, core)).toBe(true);
    expect(conditionHolds({ role: ['edge'] }, core)).toBe(false);
    expect(conditionHolds({ notRole: ['core'] }, core)).toBe(false);
  });

  it.each([
    ['4.1.0', true],
    ['4.1.2', true],
    ['5.0.0', true],
    ['4.1.1-rc.1', true],
    ['4.0.5', false],
    ['4.1.0-rc.1', false],
    [undefined, false],
    ['not a version', false],
  ])('installed: >=4.1.0 with {{installed}} %s: %s', (installed, holds) => {
    const facts = { roles: [], ...(installed === undefined ? {} : { installed }) };
    expect(conditionHolds({ installed: '>=4.1.0' }, facts)).toBe(holds);
  });

  it.each([
    // The verify right after a host's upgrade: the rollout still records the version it came from.
    [{ installed: '4.1.0', target: '4.1.2' }, false],
    // The final verify: the host's own verify passed, it is recorded on the target.
    [{ installed: '4.1.2', target: '4.1.2' }, true],
    [{ installed: 'v4.1.2', target: '4.1.2' }, true],
    [{ target: '4.1.2' }, false],
    [{ installed: '4.1.2' }, false],
  ])('onTarget with %j: %s', (versions, onTarget) => {
    expect(conditionHolds({ onTarget: true }, { roles: [], ...versions })).toBe(onTarget);
    expect(conditionHolds({ onTarget: false }, { roles: [], ...versions })).toBe(!onTarget);
  });

  it('needs every part to hold', () => {
    const facts = { roles: ['core'], installed: '4.1.0', target: '4.1.2' };
    expect(conditionHolds({ role: ['edge'], installed: '>=4.1.0', onTarget: false }, facts)).toBe(false);
    expect(conditionHolds({ role: ['core'], installed: '>=4.1.0', onTarget: false }, facts)).toBe(true);
    expect(conditionHolds({ role: ['core'], installed: '>=4.2.0', onTarget: false }, facts)).toBe(false);
  });
});
