import type { StagingSpec, WindowSpec } from './schedule';
import {
  cronProblem,
  formatInZone,
  formatSpan,
  mayStart,
  nextCronTime,
  stagingTime,
  timeZoneProblem,
  windowState,
} from './schedule';

const MIN = 60_000;
const HOUR = 60 * MIN;
const utc = (iso: string): number => Date.parse(iso);

/** Sundays 03:00-05:00 Paris time, no host starts in the last 30 minutes. */
const SUNDAY_NIGHT: WindowSpec = {
  name: 'sunday-night',
  cron: '0 3 * * 0',
  durationMs: 2 * HOUR,
  timezone: 'Europe/Paris',
  cutoffMs: 30 * MIN,
};

describe('nextCronTime', () => {
  it('returns the first instant strictly after the given time, in the given zone', () => {
    // 2026-11-29 is a Sunday; Paris is UTC+1 in winter.
    const sunday = utc('2026-11-29T02:00:00Z');
    expect(nextCronTime('0 3 * * 0', 'Europe/Paris', sunday - 1)).toBe(sunday);
    expect(nextCronTime('0 3 * * 0', 'Europe/Paris', sunday)).toBe(sunday + 7 * 24 * HOUR);
  });

  it('runs a time skipped by the spring DST change right after the gap, and a repeated one once', () => {
    // 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back to 02:00 CET.
    expect(nextCronTime('30 2 * * *', 'Europe/Paris', utc('2026-03-28T12:00:00Z'))).toBe(
      utc('2026-03-29T01:00:00Z'),
    );
    const fall = nextCronTime('30 2 * * *', 'Europe/Paris', utc('2026-10-24T12:00:00Z'));
    expect(fall).toBe(utc('2026-10-25T00:30:00Z'));
    expect(nextCronTime('30 2 * * *', 'Europe/Paris', fall)).toBe(utc('2026-10-26T01:30:00Z'));
  });

  it('throws on a pattern that was not validated', () => {
    expect(() => nextCronTime('0 3 30 2 *', 'UTC', 0)).toThrow(/has no instant after/);
  });
});

describe('cronProblem and timeZoneProblem', () => {
  it.each([
    ['0 3 * * 0', null],
    ['*/15 1-5 L * MON#1', null],
    [
      '0 3 * *',
      'must be a five-field cron expression (minute hour day-of-month month day-of-week), got 4 fields ("0 3 * *")',
    ],
    [
      '@daily',
      'must be a five-field cron expression (minute hour day-of-month month day-of-week), got 1 field ("@daily")',
    ],
    [
      '0 25 * * *',
      'must be a five-field cron expression (minute hour day-of-month month day-of-week): Invalid value for hour: 25 ("0 25 * * *")',
    ],
    ['0 0 31 4 *', 'never fires ("0 0 31 4 *")'],
  ])('cron %j -> %j', (cron, problem) => {
    expect(cronProblem(cron)).toBe(problem);
  });

  it.each([
    ['Europe/Paris', null],
    ['UTC', null],
    ['Mars/Olympus', 'must be an IANA time zone such as Europe/Paris or UTC (got "Mars/Olympus")'],
    ['+01:00', 'must be an IANA time zone such as Europe/Paris or UTC (got "+01:00")'],
    ['', 'must be an IANA time zone such as Europe/Paris or UTC (got "")'],
  ])('time zone %j -> %j', (tz, problem) => {
    expect(timeZoneProblem(tz)).toBe(problem);
  });
});

describe('stagingTime', () => {
  const nightly: StagingSpec = { cron: '0 2 * * *', timezone: 'UTC', jitterMs: 10 * MIN, concurrency: 10 };
  const after = utc('2026-06-01T12:00:00Z');
  const instant = utc('2026-06-02T02:00:00Z');

  it('stages at once when there is no cron', () => {
    expect(stagingTime({ ...nightly, cron: null }, after, () => 0.5)).toBe(after);
  });

  it('adds a jitter in [0, jitterMs) drawn from the injected random source', () => {
    expect(stagingTime(nightly, after, () => 0)).toBe(instant);
    expect(stagingTime(nightly, after, () => 0.5)).toBe(instant + 5 * MIN);
    expect(stagingTime(nightly, after, () => 0.999_999_9)).toBe(instant + 10 * MIN - 1);
    // A broken source returning 1 still stays below the bound.
    expect(stagingTime(nightly, after, () => 1)).toBe(instant + 10 * MIN - 1);
    expect(stagingTime({ ...nightly, jitterMs: 0 }, after, () => 0.9)).toBe(instant);
  });

  it('keeps every jitter within bounds over many draws', () => {
    for (let i = 0; i < 200; i++) {
      const at = stagingTime(nightly, after, Math.random);
      expect(at).toBeGreaterThanOrEqual(instant);
      expect(at).toBeLessThan(instant + 10 * MIN);
    }
  });
});

describe('windowState', () => {
  it('is open from the instant (inclusive) to instant + duration (exclusive)', () => {
    const opens = utc('2026-11-29T02:00:00Z');
    const closes = opens + 2 * HOUR;
    expect(windowState(SUNDAY_NIGHT, opens)).toEqual({ open: true, opensAtMs: opens, closesAtMs: closes });
    expect(windowState(SUNDAY_NIGHT, closes - 1)).toEqual({
      open: true,
      opensAtMs: opens,
      closesAtMs: closes,
    });
    const next = opens + 7 * 24 * HOUR;
    expect(windowState(SUNDAY_NIGHT, closes)).toEqual({
      open: false,
      opensAtMs: next,
      closesAtMs: next + 2 * HOUR,
    });
    expect(windowState(SUNDAY_NIGHT, opens - 1)).toEqual({
      open: false,
      opensAtMs: opens,
      closesAtMs: closes,
    });
  });

  it('spans midnight', () => {
    const w: WindowSpec = {
      name: 'late',
      cron: '0 23 * * *',
      durationMs: 3 * HOUR,
      timezone: 'UTC',
      cutoffMs: 0,
    };
    const opens = utc('2026-06-01T23:00:00Z');
    expect(windowState(w, utc('2026-06-02T01:30:00Z'))).toEqual({
      open: true,
      opensAtMs: opens,
      closesAtMs: utc('2026-06-02T02:00:00Z'),
    });
    expect(windowState(w, utc('2026-06-02T02:00:00Z'))).toMatchObject({
      open: false,
      opensAtMs: utc('2026-06-02T23:00:00Z'),
    });
  });

  it('measures the duration in elapsed time across the spring DST change in Europe/Paris', () => {
    // Opens at 01:00 CET (00:00Z) the night clocks jump from 02:00 to 03:00: 3 h later is 05:00 CEST.
    const w: WindowSpec = {
      name: 'n',
      cron: '0 1 * * *',
      durationMs: 3 * HOUR,
      timezone: 'Europe/Paris',
      cutoffMs: 0,
    };
    const state = windowState(w, utc('2026-03-29T02:30:00Z'));
    expect(state).toEqual({
      open: true,
      opensAtMs: utc('2026-03-29T00:00:00Z'),
      closesAtMs: utc('2026-03-29T03:00:00Z'),
    });
    expect(formatInZone(state.closesAtMs, 'Europe/Paris')).toBe('2026-03-29T05:00:00+02:00');
    // The next night opens at 01:00 CEST, which is 23:00Z.
    expect(windowState(w, utc('2026-03-29T03:00:00Z')).opensAtMs).toBe(utc('2026-03-29T23:00:00Z'));
  });

  it('opens at local 03:00 on both sides of the autumn DST change', () => {
    // 2026-10-25 is the last Sunday of October: Paris falls back from +02:00 to +01:00 at 03:00.
    const before = windowState(SUNDAY_NIGHT, utc('2026-10-18T00:00:00Z'));
    expect(formatInZone(before.opensAtMs, 'Europe/Paris')).toBe('2026-10-18T03:00:00+02:00');
    const after = windowState(SUNDAY_NIGHT, before.closesAtMs);
    expect(formatInZone(after.opensAtMs, 'Europe/Paris')).toBe('2026-10-25T03:00:00+01:00');
    expect(after.opensAtMs - before.opensAtMs).toBe(7 * 24 * HOUR + HOUR);
  });

  it('merges occurrences that overlap into one window', () => {
    const w: WindowSpec = {
      name: 'o',
      cron: '0 1,2 * * *',
      durationMs: 90 * MIN,
      timezone: 'UTC',
      cutoffMs: 0,
    };
    expect(windowState(w, utc('2026-06-01T01:15:00Z'))).toEqual({
      open: true,
      opensAtMs: utc('2026-06-01T01:00:00Z'),
      closesAtMs: utc('2026-06-01T03:30:00Z'),
    });
  });
});

describe('mayStart', () => {
  const opens = utc('2026-11-29T02:00:00Z');
  const nextWeek = opens + 7 * 24 * HOUR;

  it('lets a host start when the window is open and the estimate fits', () => {
    expect(mayStart(SUNDAY_NIGHT, opens + 30 * MIN, 40 * MIN)).toEqual({ ok: true, remainingMs: 90 * MIN });
  });

  it('refuses while closed, saying when the window opens in its own zone', () => {
    expect(mayStart(SUNDAY_NIGHT, opens - HOUR, MIN)).toEqual({
      ok: false,
      reason: 'window sunday-night opens at 2026-11-29T03:00:00+01:00',
      retryAtMs: opens,
    });
  });

  it('refuses when less than the cutoff remains, until the next opening', () => {
    expect(mayStart(SUNDAY_NIGHT, opens + 108 * MIN, MIN)).toEqual({
      ok: false,
      reason: 'only 12m left in window sunday-night, cutoff is 30m',
      retryAtMs: nextWeek,
    });
    // Exactly the cutoff left is still enough.
    expect(mayStart(SUNDAY_NIGHT, opens + 90 * MIN, MIN)).toEqual({ ok: true, remainingMs: 30 * MIN });
  });

  it('refuses when the estimate does not fit what remains', () => {
    const w = { ...SUNDAY_NIGHT, name: 'X', cutoffMs: 10 * MIN };
    expect(mayStart(w, opens + 95 * MIN, 40 * MIN)).toEqual({
      ok: false,
      reason: 'estimated 40m does not fit the 25m left in window X',
      retryAtMs: nextWeek,
    });
    expect(mayStart(w, opens + 95 * MIN, 25 * MIN)).toEqual({ ok: true, remainingMs: 25 * MIN });
  });
});

describe('formatInZone and formatSpan', () => {
  it.each([
    ['UTC', '2026-11-29T02:00:00+00:00'],
    ['Europe/Paris', '2026-11-29T03:00:00+01:00'],
    ['Asia/Kolkata', '2026-11-29T07:30:00+05:30'],
    ['America/St_Johns', '2026-11-28T22:30:00-03:30'],
  ])('formats an instant in %s', (tz, text) => {
    expect(formatInZone(utc('2026-11-29T02:00:00.750Z'), tz)).toBe(text);
  });

  it.each([
    [500, '500ms'],
    [45_000, '45s'],
    [12 * MIN + 59_999, '12m59s'],
    [2 * HOUR, '2h'],
    [90 * MIN, '1h30m'],
    [50 * HOUR + 1000, '50h1s'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatSpan(ms)).toBe(text);
  });
});
