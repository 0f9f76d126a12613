import { decideUpgrade } from '../../shared/semver-policy';
import {
  applicationVersionOf,
  compareEvr,
  compareRpmSegments,
  formatEvr,
  parseEvr,
  pinnedEvr,
} from './rpm-version';

describe('rpm versions', () => {
  it.each([
    ['4.1.2-1.el9', { epoch: 0, version: '4.1.2', release: '1.el9' }],
    ['2:4.1.2-1', { epoch: 2, version: '4.1.2', release: '1' }],
    ['4.1.2', { epoch: 0, version: '4.1.2', release: '' }],
    ['1.0~rc1-0.1.el9', { epoch: 0, version: '1.0~rc1', release: '0.1.el9' }],
  ])('parses %s as epoch, version, release', (text, evr) => {
    expect(parseEvr(text)).toEqual(evr);
    expect(formatEvr(parseEvr(text))).toBe(text);
  });

  it('reads the application version as the VERSION field: the release is never a prerelease', () => {
    expect(applicationVersionOf('4.1.2-1.el9')).toBe('4.1.2');
    expect(applicationVersionOf('1:2.1.0-1')).toBe('2.1.0');
    // What semver would make of the raw string: a prerelease of 4.1.2, below 4.1.2 itself.
    expect(decideUpgrade('4.1.2', '4.1.2-1.el9').kind).toBe('downgrade');
    expect(decideUpgrade('4.1.2', applicationVersionOf('4.1.2-1.el9')).kind).toBe('same');
    expect(decideUpgrade('4.1.1', applicationVersionOf('4.1.2-1.el9'))).toMatchObject({
      kind: 'patch',
      decision: 'auto',
    });
  });

  it.each<[string, string, -1 | 0 | 1]>([
    ['1.0', '1.0', 0],
    ['1.0', '2.0', -1],
    ['2.0.1', '2.0', 1],
    ['1.10', '1.9', 1], // numbers, not strings
    ['1.010', '1.10', 0], // leading zeros dropped
    ['1.0a', '1.0', 1],
    ['1.0', '1.0a', -1],
    ['1a', '1.1', -1], // letters sort below digits
    ['1.0~rc1', '1.0', -1], // a tilde sorts before the end
    ['1.0~rc1', '1.0~rc2', -1],
    ['1.0^git1', '1.0', 1], // a caret after the end ...
    ['1.0^git1', '1.0.1', -1], // ... but before anything longer
    ['1.el9', '2.el9', -1],
    ['10.el9', '9.el9', 1],
    ['1_0', '1.0', 0], // separators are only separators
  ])('rpmvercmp(%s, %s) = %i', (a, b, want) => {
    expect(compareRpmSegments(a, b)).toBe(want);
    expect(compareRpmSegments(b, a)).toBe(-want === 0 ? 0 : -want);
  });

  it('orders by epoch, then version, then release', () => {
    expect(compareEvr(parseEvr('1:1.0-1'), parseEvr('9.0-1'))).toBe(1);
    expect(compareEvr(parseEvr('2.1.0-2.el9'), parseEvr('2.1.0-10.el9'))).toBe(-1);
    expect(compareEvr(parseEvr('2.1.0-1'), parseEvr('2.1.0-1'))).toBe(0);
  });

  it('pins the highest release of the target version, never a newer version', () => {
    const offered = ['2.0.0-1', '2.1.0-1', '2.1.0-10.el9', '2.1.0-2.el9', '3.0.0-1'].map(parseEvr);
    expect(pinnedEvr(offered, '2.1.0')).toEqual(parseEvr('2.1.0-10.el9'));
    expect(pinnedEvr(offered, '2.2.0')).toBeUndefined();
    expect(pinnedEvr(offered, '2.1')).toBeUndefined();
  });
});
