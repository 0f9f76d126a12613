import { reconnectDelayMs } from './backoff';

describe('reconnect backoff', () => {
  it.each([
    [0, 0, 250],
    [0, 1, 500],
    [1, 0, 500],
    [3, 1, 4000],
    [10, 1, 30_000],
    [100, 0, 15_000],
    [100, 0.999, 29_985],
  ])(
    'attempt %i with random %d waits %i ms (500 ms doubling to 30 s, half fixed, half random)',
    (attempt, r, expected) => {
      expect(reconnectDelayMs(attempt, 500, 30_000, () => r)).toBe(expected);
    },
  );

  it('spreads a fleet reconnecting at once over the upper half of the ceiling', () => {
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const delays = Array.from({ length: 300 }, () => reconnectDelayMs(6, 500, 30_000, random));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(15_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(30_000);
    expect(new Set(delays).size).toBeGreaterThan(250);
  });
});
