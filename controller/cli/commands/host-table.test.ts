import { onlineText } from './host-table';

describe('convoy status ONLINE cell', () => {
  it.each<[boolean, number, string]>([
    [false, 0, 'offline'],
    [false, 600_000, 'offline'],
    [true, 0, 'online'],
    [true, 1999, 'online'],
    [true, -1999, 'online'],
    [true, 2000, 'online, clock 2.0 s ahead'],
    [true, 600_004, 'online, clock 10m00s ahead'],
    [true, -600_004, 'online, clock 10m00s behind'],
  ])('online %s with the agent %i ms off reads %j', (online, clockSkewMs, text) => {
    expect(onlineText({ online, clockSkewMs })).toBe(text);
  });
});
