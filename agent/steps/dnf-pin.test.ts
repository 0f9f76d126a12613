import { changingTargets, pinMismatches, readBack, resolvePinTargets } from './dnf-pin';
import { nevraOf, parseQueryRows, type RpmPackage } from './dnf-query';

const pkg = (name: string, version: string, arch = 'x86_64'): RpmPackage => ({ name, arch, version });
const PIN = { packages: ['kcm-*'], version: '2.1.0' };

describe('dnf pin decisions', () => {
  it('takes the highest release of the target on the installed arch, never the newer major', () => {
    const installed = [pkg('kcm-guacd', '2.0.0-1'), pkg('kcm-guacamole', '2.0.0-1', 'noarch')];
    const offered = [
      pkg('kcm-guacd', '2.1.0-1'),
      pkg('kcm-guacd', '2.1.0-3.el9'),
      pkg('kcm-guacd', '2.1.0-9.el9', 'i686'),
      pkg('kcm-guacd', '3.0.0-1'),
      pkg('kcm-guacamole', '2.1.0-2', 'noarch'),
    ];
    expect(resolvePinTargets(installed, offered, PIN)).toEqual([
      { name: 'kcm-guacd', arch: 'x86_64', from: '2.0.0-1', to: '2.1.0-3.el9' },
      { name: 'kcm-guacamole', arch: 'noarch', from: '2.0.0-1', to: '2.1.0-2' },
    ]);
  });

  it('names every package whose target is not offered (TARGET_NOT_OFFERED)', () => {
    const installed = [pkg('kcm-guacd', '2.0.0-1'), pkg('kcm-guacamole', '2.0.0-1')];
    const offered = [pkg('kcm-guacd', '2.1.0-1'), pkg('kcm-guacamole', '3.0.0-1')];
    const failure = (f: () => unknown): unknown => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(failure(() => resolvePinTargets(installed, offered, PIN))).toMatchObject({
      code: 'TARGET_NOT_OFFERED',
      message: 'the repository does not offer the pinned version of kcm-guacamole 2.1.0 (it offers 3.0.0)',
    });
    expect(failure(() => resolvePinTargets([], offered, PIN))).toMatchObject({ code: 'VERSION_MISMATCH' });
  });

  it('leaves a package already at its target out of the transaction', () => {
    const targets = resolvePinTargets(
      [pkg('kcm-guacd', '2.1.0-1'), pkg('kcm-guacamole', '2.0.0-1')],
      [pkg('kcm-guacd', '2.1.0-1'), pkg('kcm-guacamole', '2.1.0-1')],
      PIN,
    );
    expect(changingTargets(targets).map((t) => t.name)).toEqual(['kcm-guacamole']);
  });

  it('reads the rpm database back: another version, or one installed twice, breaks the pin', () => {
    expect(pinMismatches([pkg('kcm-guacd', '2.1.0-1.el9')], '2.1.0')).toEqual([]);
    expect(pinMismatches([pkg('kcm-guacd', '1:2.1.0-1')], '2.1.0')).toEqual([]);
    expect(pinMismatches([pkg('kcm-guacd', '3.0.0-1')], '2.1.0')).toEqual([
      'kcm-guacd is at 3.0.0-1, not 2.1.0',
    ]);
    expect(pinMismatches([pkg('kcm-guacd', '2.1.0-1'), pkg('kcm-guacd', '2.0.0-1')], '2.1.0')).toEqual([
      'kcm-guacd.x86_64 is installed twice (2.1.0-1 and 2.0.0-1)',
      'kcm-guacd is at 2.0.0-1, not 2.1.0',
    ]);
    expect(pinMismatches([], '2.1.0')).toEqual(['no installed package matches the pin']);
    expect(readBack([pkg('a', '2.1.0-1.el9'), pkg('b', '2.1.0-2')])).toEqual({
      versions: ['2.1.0'],
      data: {
        installed: [
          { name: 'a', version: '2.1.0-1.el9' },
          { name: 'b', version: '2.1.0-2' },
        ],
      },
    });
  });

  it('parses rpm and repoquery rows, epoch included only when set', () => {
    const rows = 'kcm-guacd\t0\t2.1.0\t1.el9\tx86_64\nwarning: something\nbm-core\t2\t4.1.2\t1\tnoarch\n';
    expect(parseQueryRows(rows)).toEqual([
      pkg('kcm-guacd', '2.1.0-1.el9'),
      pkg('bm-core', '2:4.1.2-1', 'noarch'),
    ]);
    expect(nevraOf(pkg('bm-core', '2:4.1.2-1', 'noarch'))).toBe('bm-core-2:4.1.2-1.noarch');
  });
});
