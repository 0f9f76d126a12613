/**
 * The fake BlueMind's update model (scripts/fixtures/fake-bluemind-update.ts): what /setup decides
 * and when a host is waiting for it, as seed 001 describes BlueMind's updates.
 */
import {
  decideSetup,
  dpkgInstalledVersion,
  needsPreparation,
  updatePending,
} from '../../scripts/fixtures/fake-bluemind-update';

describe('fake BlueMind update model', () => {
  it.each([
    // From 4.1 on, every update must be prepared, 4.1.0 -> 4.1.2 too (001 "Preparing for the update").
    ['4.1.0', '4.1.2', null, 'refused'],
    ['4.1.0', '4.1.2', '4.1.1', 'refused'],
    ['4.1.0', '4.1.2', '4.1.2', 'update'],
    ['4.1.2', '4.2.0', '4.2.0', 'update'],
    // 4.0 has no preparation.
    ['4.0.5', '4.1.2', null, 'update'],
    // The packages are at the version set up: nothing to do (a /setup played again).
    ['4.1.2', '4.1.2', null, 'nothing'],
  ])('/setup from %s with bm-core %s, prepared %s: %s', (from, installed, prepared, kind) => {
    const decision = decideSetup(installed, { setupVersion: from, prepared });
    expect(decision.kind).toBe(kind);
    if (decision.kind === 'update') expect(decision.to).toBe(installed);
    if (decision.kind === 'refused') expect(decision.reason).toContain(`update to ${installed} not prepared`);
  });

  it('prepares from 4.1.0 on, release candidates of 4.1.0 excluded', () => {
    expect([needsPreparation('4.0.9'), needsPreparation('4.1.0-rc.1'), needsPreparation('4.1.0')]).toEqual([
      false,
      false,
      true,
    ]);
  });

  it('keeps a host pending while its packages are not at the version set up', () => {
    expect(updatePending('4.1.2', { setupVersion: '4.1.0', prepared: '4.1.2' })).toBe(true);
    expect(updatePending('4.1.2', { setupVersion: '4.1.2', prepared: '4.1.2' })).toBe(false);
    // Back on the old packages before /setup (a rollback): nothing pending.
    expect(updatePending('4.1.0', { setupVersion: '4.1.0', prepared: '4.1.2' })).toBe(false);
    // Back on the old packages after /setup: the data is ahead, the host waits for ever.
    expect(updatePending('4.1.0', { setupVersion: '4.1.2', prepared: '4.1.2' })).toBe(true);
    expect(updatePending(undefined, { setupVersion: '4.1.0', prepared: null })).toBe(false);
  });

  it('reads the upstream version of an installed package from a dpkg status file', () => {
    const status = [
      'Package: bm-webmail\nStatus: install ok installed\nVersion: 4.1.0-1',
      'Package: bm-core\nStatus: install ok installed\nVersion: 1:4.1.2-3',
      'Package: bm-gone\nStatus: deinstall ok config-files\nVersion: 4.0.0',
    ].join('\n\n');
    expect(dpkgInstalledVersion(status, 'bm-core')).toBe('4.1.2');
    expect(dpkgInstalledVersion(status, 'bm-webmail')).toBe('4.1.0');
    expect(dpkgInstalledVersion(status, 'bm-gone')).toBeUndefined();
    expect(dpkgInstalledVersion(status, 'bm-none')).toBeUndefined();
  });
});
