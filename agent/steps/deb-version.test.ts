import { appVersionOfDeb, compareDebVersions, parseDebVersion, pickDebVersionFor } from './deb-version';
import { packageGlob, pinsMissed, resolvePins, unstagedPins, parseMadison, pinPreferences } from './apt-pin';

describe('Debian versions', () => {
  it.each([
    ['4.1.0', '4.1.0'],
    ['4.1.0-3', '4.1.0'],
    ['1:4.1.0-3', '4.1.0'],
    ['2:4.1.0-beta-1-2', '4.1.0-beta-1'],
    ['4.1.0+dfsg-1~bpo12+1', '4.1.0+dfsg'],
  ])('%s belongs to application version %s', (deb, app) => {
    expect(appVersionOfDeb(deb)).toBe(app);
  });

  it('parses epoch, upstream and revision', () => {
    expect(parseDebVersion('1:2.0-3')).toEqual({ epoch: 1, upstream: '2.0', revision: '3' });
    expect(parseDebVersion('2.0')).toEqual({ epoch: 0, upstream: '2.0', revision: '' });
  });

  // Expected orders as `dpkg --compare-versions` (dpkg 1.21) gave them for each pair.
  it.each([
    ['1.0', '1.0-1', 'lt'],
    ['1.0-1', '1.0-2', 'lt'],
    ['1.0~rc1', '1.0', 'lt'],
    ['1.0~rc1-1', '1.0~rc1', 'gt'],
    ['1.0a', '1.0', 'gt'],
    ['1.0+b1', '1.0a', 'gt'],
    ['1.00', '1.0', 'eq'],
    ['1.01', '1.1', 'eq'],
    ['1.10', '1.9', 'gt'],
    ['1:0.1', '2.0', 'gt'],
    ['2:0.1', '1:9', 'gt'],
    ['4.1.0-10', '4.1.0-9', 'gt'],
    ['4.1.0~', '4.1.0', 'lt'],
    ['4.1.0-1~bpo', '4.1.0-1', 'lt'],
    ['1.0-a', '1.0-A', 'gt'],
    ['1.0.a', '1.0a', 'gt'],
    ['1.0-0', '1.0', 'eq'],
    ['0:1.0', '1.0', 'eq'],
    ['1.0~~', '1.0~', 'lt'],
    ['1.0-1+b1', '1.0-1', 'gt'],
    ['1.0.0', '1.0', 'gt'],
    ['1.2.3-beta', '1.2.3-1', 'gt'],
  ] as const)('%s against %s: %s, as dpkg says', (a, b, dpkg) => {
    const want = { lt: -1, eq: 0, gt: 1 }[dpkg];
    expect(Math.sign(compareDebVersions(a, b))).toBe(want);
    expect(Math.sign(compareDebVersions(b, a))).toBe(-want || 0);
  });

  it('picks the highest revision of the application version, or nothing', () => {
    const offered = ['4.0.0-1', '4.1.0-1', '4.1.0-10', '4.1.0-9', '5.0.0-1', '1:4.1.0-2'];
    expect(pickDebVersionFor(offered, '4.1.0')).toBe('1:4.1.0-2');
    expect(pickDebVersionFor(offered.slice(0, 5), '4.1.0')).toBe('4.1.0-10');
    expect(pickDebVersionFor(offered, '4.2.0')).toBeUndefined();
  });
});

describe('apt pins', () => {
  const pkg = (name: string, version: string, status = 'ii') => ({ name, version, arch: 'all', status });

  it('matches apt globs anchored, and nothing else', () => {
    expect(packageGlob('bm-*').test('bm-core')).toBe(true);
    expect(packageGlob('bm-*').test('xbm-core')).toBe(false);
    expect(packageGlob('bm-c?re').test('bm-core')).toBe(true);
    expect(packageGlob('bm.core').test('bmxcore')).toBe(false);
  });

  it('resolves installed packages to the pinned version; not offered and downgrades apart', () => {
    const installed = [
      pkg('bm-removed', '4.0.0', 'rc'),
      pkg('bm-core', '4.0.0-1'),
      pkg('bm-old', '4.0.0'),
      pkg('bm-new', '5.0.0'),
      pkg('libc6', '2.36'),
    ];
    const offered = parseMadison(
      [
        '   bm-core | 4.1.0-1 | http://r ./ Packages',
        '   bm-core | 4.1.0-2 | http://r ./ Packages',
        '   bm-core | 5.0.0-1 | http://r ./ Packages',
        '    bm-new | 4.1.0 | http://r ./ Packages',
        '     libc6 | 4.1.0 | http://r ./ Packages',
      ].join('\n'),
    );
    expect(resolvePins(installed, offered, { packages: ['bm-*'], version: '4.1.0' })).toEqual({
      pinned: [{ name: 'bm-core', installed: '4.0.0-1', version: '4.1.0-2' }],
      notOffered: ['bm-old'],
      downgrades: [{ name: 'bm-new', installed: '5.0.0', version: '4.1.0' }],
    });
  });

  it('writes the pins before the host preferences', () => {
    const text = pinPreferences(
      [{ name: 'bm-core', installed: '1', version: '1:4.1.0-2' }],
      'Package: x\nPin: release a=b\nPin-Priority: 50\n',
    );
    expect(text).toBe(
      'Explanation: convoy pin: bm-core at 4.1.0\nPackage: bm-core\nPin: version 1:4.1.0-2\nPin-Priority: 1001\n\n' +
        'Package: x\nPin: release a=b\nPin-Priority: 50\n',
    );
  });

  it('finds pinned versions missing from the cache, epochs written %3a', () => {
    const pins = [
      { name: 'bm-core', installed: '4.0.0', version: '1:4.1.0-2' },
      { name: 'bm-web', installed: '4.0.0', version: '4.1.0' },
      { name: 'bm-same', installed: '4.1.0', version: '4.1.0' },
    ];
    expect(unstagedPins(pins, ['bm-core_1%3a4.1.0-2_all.deb', 'bm-web_5.0.0_all.deb'])).toEqual([
      { name: 'bm-web', version: '4.1.0', cached: ['5.0.0'] },
    ]);
  });

  it('reads back: another version, another state, or absent is a miss', () => {
    const pins = ['a', 'b', 'c', 'd'].map((name) => ({ name, installed: '1', version: '2' }));
    expect(pinsMissed(pins, [pkg('a', '2'), pkg('b', '1'), pkg('c', '2', 'iF')])).toEqual([
      { name: 'b', wanted: '2', found: '1' },
      { name: 'c', wanted: '2', found: '2 (dpkg state iF)' },
      { name: 'd', wanted: '2', found: 'not installed' },
    ]);
  });
});
