import { StallLedger } from './stall-ledger';

describe('StallLedger', () => {
  it('counts a tick late by more than a period as a stall, and ordinary jitter as none', () => {
    const ledger = new StallLedger(100, 2000, 0);
    expect(ledger.tick(100)).toBe(0);
    expect(ledger.tick(290)).toBe(0); // 90 ms late: jitter
    expect(ledger.tick(3390)).toBe(3000);
    expect(ledger.stalledSince(0)).toBe(3000);
  });

  it('excuses our own stall from a peer silent across it, and not a peer silent since after it', () => {
    const ledger = new StallLedger(100, 2000, 0);
    ledger.tick(100);
    ledger.tick(3200); // stalled 3000 ms; the peer was last heard at 50
    expect(ledger.silenceOf(50, 3200)).toBe(150);
    // A peer silent from 3200 on is judged on real time.
    ledger.tick(3300);
    expect(ledger.silenceOf(3200, 5500)).toBe(2300);
  });

  it('counts only the part of a stall after the peer was last heard', () => {
    const ledger = new StallLedger(100, 10_000, 0);
    ledger.tick(100);
    ledger.tick(1200); // stalled 1000 ms, from 200 to 1200
    expect(ledger.stalledSince(700)).toBe(500);
    expect(ledger.silenceOf(700, 1200)).toBe(0);
  });

  it('still finds a dead peer on a process that is always a little late', () => {
    const ledger = new StallLedger(100, 1500, 0);
    let now = 0;
    let silence = 0;
    // Every tick 150 ms late: a starved loop. The peer never speaks after 0.
    while (silence <= 1500 && now < 60_000) {
      now += 250;
      ledger.tick(now);
      silence = ledger.silenceOf(0, now);
    }
    expect(silence).toBeGreaterThan(1500);
    expect(now).toBeLessThan(5000);
  });

  it('forgets stalls older than it was asked to keep', () => {
    const ledger = new StallLedger(100, 1000, 0);
    ledger.tick(5100); // stall of 5000 ending at 5100
    ledger.tick(5200);
    ledger.tick(7000); // keep 1000: the first stall is gone; this tick is itself a stall of 1700
    expect(ledger.stalledSince(0)).toBe(1700);
  });
});
