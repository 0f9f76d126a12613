import { formatDuration, parseDuration } from './duration';

describe('parseDuration', () => {
  it.each<[string, number]>([
    ['500ms', 500],
    ['1ms', 1],
    ['30s', 30_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['0h5m', 300_000],
    ['  45s  ', 45_000],
    ['90m', 5_400_000],
  ])('reads %j as %d ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each<[string, string]>([
    ['an empty string', ''],
    ['only whitespace', '   '],
    ['zero seconds', '0s'],
    ['zero in several units', '0h0m'],
    ['a number without a unit', '10'],
    ['a unit without a number', 'h'],
    ['an unknown unit', '1x'],
    ['a negative duration', '-1s'],
    ['a fractional number', '1.5h'],
    ['an explicit plus sign', '+1s'],
    ['a space between parts', '1h 30m'],
    ['a space between number and unit', '1 h'],
    ['a trailing number', '1h30'],
    ['trailing garbage', '30sx'],
    ['an upper-case unit', '1H'],
    ['a long unit name', '1hour'],
    ['weeks', '1w'],
    ['a repeated unit', '1h1h'],
    ['units smallest first', '30m1h'],
    ['ms before s', '500ms1s'],
    ['a total beyond the safe integer range', '9999999999999999999d'],
  ])('returns null for %s', (_name, text) => {
    expect(parseDuration(text)).toBeNull();
  });

  it('gives the same answer when called again after a failed parse (no regex state leaks)', () => {
    expect(parseDuration('1h30')).toBeNull();
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1x')).toBeNull();
    expect(parseDuration('1h30m')).toBe(5_400_000);
  });
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0 ms'],
    [850, '850 ms'],
    [999.4, '999 ms'],
    [1_000, '1.0 s'],
    [12_345, '12.3 s'],
    [59_400, '59.4 s'],
    [60_000, '1m00s'],
    [245_000, '4m05s'],
    [5_400_000, '90m00s'],
  ])('prints %d ms as %j', (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });
});
