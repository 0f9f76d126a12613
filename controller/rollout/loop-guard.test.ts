import { BUSY_BACKOFF, decideBusyWait, decideResend, MAX_PHASE_RESENDS } from './loop-guard';

describe('loop guard › re-sending an interrupted phase', () => {
  it.each([0, 1, 2])('after %i re-sends the phase is sent again', (n) => {
    expect(decideResend(n, 'upgrade')).toEqual({ kind: 'resend' });
  });

  it(`after ${MAX_PHASE_RESENDS} re-sends the host fails with PHASE_LOOP`, () => {
    const d = decideResend(MAX_PHASE_RESENDS, 'upgrade');
    expect(d.kind).toBe('give-up');
    expect(d.kind === 'give-up' && d.why).toMatch(/^PHASE_LOOP: upgrade was interrupted or re-sent 3 times/);
  });
});

describe('loop guard › PHASE_BUSY backoff', () => {
  const b = { baseMs: 100, capMs: 1000, maxWaits: 6 };

  it('doubles each wait, half fixed and half jitter, never above the cap', () => {
    const low = [0, 1, 2, 3, 4, 5].map((n) => decideBusyWait(n, () => 0, b));
    const high = [0, 1, 2, 3, 4, 5].map((n) => decideBusyWait(n, () => 0.999_999, b));
    expect(low).toEqual([50, 100, 200, 400, 500, 500].map((ms) => ({ kind: 'wait', ms })));
    expect(high).toEqual([100, 200, 400, 800, 1000, 1000].map((ms) => ({ kind: 'wait', ms })));
  });

  it('gives up with PHASE_BUSY after the last wait', () => {
    const d = decideBusyWait(6, () => 0.5, b);
    expect(d).toEqual({
      kind: 'give-up',
      why: 'PHASE_BUSY: the agent was still running another phase after 6 waits',
    });
  });

  it('by default waits about six minutes in all before giving up', () => {
    let total = 0;
    for (let n = 0; n < BUSY_BACKOFF.maxWaits; n++) {
      const d = decideBusyWait(n, () => 1, BUSY_BACKOFF);
      if (d.kind === 'wait') total += d.ms;
    }
    expect(total).toBeGreaterThan(5 * 60_000);
    expect(total).toBeLessThan(8 * 60_000);
    expect(decideBusyWait(BUSY_BACKOFF.maxWaits, () => 0).kind).toBe('give-up');
  });
});
