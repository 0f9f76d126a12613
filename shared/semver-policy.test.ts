import {
  classifyUpgrade,
  decideUpgrade,
  type PolicyDecision,
  type UpgradeKind,
  type UpgradePolicy,
} from './semver-policy';

describe('classifyUpgrade', () => {
  it.each<[string, string, UpgradeKind]>([
    // Plain releases.
    ['4.1.2', '4.1.3', 'patch'],
    ['4.1.2', '4.2.0', 'minor'],
    ['4.1.2', '5.0.0', 'major'],
    ['4.1.2', '5.3.9', 'major'],
    ['4.1.2', '4.1.2', 'same'],
    ['4.1.2', '4.1.1', 'downgrade'],
    ['5.0.0', '4.9.9', 'downgrade'],
    // Prereleases follow semver ordering; a prerelease-only step is a patch.
    ['4.1.0-beta.1', '4.1.0-beta.2', 'patch'],
    ['4.1.0-rc.1', '4.1.0', 'patch'],
    ['4.1.0-alpha', '4.1.0-beta', 'patch'],
    ['4.1.2', '4.2.0-beta.1', 'minor'],
    ['4.1.2', '5.0.0-rc.1', 'major'],
    ['4.1.0-rc.1', '4.2.0', 'minor'],
    ['4.1.0-beta.2', '4.1.0-beta.1', 'downgrade'],
    ['4.1.0', '4.1.0-rc.1', 'downgrade'],
    ['4.1.0-rc.1', '4.1.0-rc.1', 'same'],
    // A valid semver string is read as semver: '-1' is a prerelease, below the release.
    ['4.1.2-1', '4.1.2', 'patch'],
    ['4.1.2', '4.1.2-1', 'downgrade'],
    // Git-tag prefixes and surrounding whitespace.
    ['v2.1.0', 'v2.1.1', 'patch'],
    ['V2.1.0', '2.2.0', 'minor'],
    ['  2.1.0\n', 'v3.0.0 ', 'major'],
    ['v2.1.0', '2.1.0', 'same'],
    // Build metadata never orders versions.
    ['1.0.0+build1', '1.0.0+build2', 'same'],
    ['1.0.0+build9', '1.0.1+build1', 'patch'],
    // Below 1.0.0 a minor bump is breaking.
    ['0.3.1', '0.4.0', 'major'],
    ['0.3.1', '0.3.2', 'patch'],
    ['0.9.0', '1.0.0', 'major'],
    // Packaging versions that strict semver rejects are coerced.
    ['4.1', '4.1.1', 'patch'],
    ['4', '4.1.0', 'minor'],
    ['4.1.2-1~deb12u1', '4.1.3', 'patch'],
  ])('%j -> %j is %s', (installed, target, kind) => {
    expect(classifyUpgrade(installed, target)).toBe(kind);
  });

  it.each([
    ['', '4.1.2'],
    ['4.1.2', ''],
    [' ', '4.1.2'],
    ['4.1.2', 'latest'],
    ['abc', '4.1.2'],
    ['1.2.3.4.5x', '1.2.3'],
    ['1.2.3', '1.2.3.4'],
    ['vv1.2.3', '1.2.3'],
    ['=1.2.3', '1.2.4'],
    ['1:4.1.2-1', '4.1.3'],
    ['4.1.2~rc1', '4.1.2'],
    ['latest', 'abc'],
  ])('%j -> %j is invalid', (installed, target) => {
    expect(classifyUpgrade(installed, target)).toBe('invalid');
  });
});

describe('decideUpgrade', () => {
  const DEFAULT: UpgradePolicy = {};
  const ALL: UpgradePolicy = { autoApprove: ['patch', 'minor', 'major'] };
  const PATCH_ONLY: UpgradePolicy = { autoApprove: ['patch'] };
  const NONE: UpgradePolicy = { autoApprove: [] };
  const DOWN: UpgradePolicy = { allowDowngrade: true };
  const NO_DOWN: UpgradePolicy = { allowDowngrade: false };
  const PRE: UpgradePolicy = { allowPrerelease: true };
  const V4: UpgradePolicy = { allowedRange: '>=4.1.0 <5' };
  const CARET4: UpgradePolicy = { allowedRange: '^4.1.0' };
  const BAD_RANGE: UpgradePolicy = { allowedRange: 'not a range' };
  const BLANK_RANGE: UpgradePolicy = { allowedRange: '  ' };
  const PIN: UpgradePolicy = { pinnedVersion: '4.1.5' };
  const PIN_BUILD: UpgradePolicy = { pinnedVersion: '4.1.5+build7' };
  const PIN_BAD: UpgradePolicy = { pinnedVersion: 'latest' };
  const PIN_MAJOR: UpgradePolicy = { pinnedVersion: '5.0.0' };
  const PIN_ANY: UpgradePolicy = { pinnedVersion: '4.1.5', allowedRange: '*' };

  type Row = [string, string, UpgradePolicy, UpgradeKind, PolicyDecision, RegExp];
  it.each<Row>([
    // Default policy.
    ['4.1.2', '4.1.3', DEFAULT, 'patch', 'auto', /patch upgrade; it proceeds without approval/],
    ['4.1.2', '4.2.0', DEFAULT, 'minor', 'auto', /minor upgrade/],
    ['4.1.2', '5.0.0', DEFAULT, 'major', 'needs-approval', /major upgrade; it needs --approve$/],
    ['0.3.1', '0.4.0', DEFAULT, 'major', 'needs-approval', /0\.x minor bump.*--approve/],
    ['4.1.2', '4.1.2', DEFAULT, 'same', 'auto', /^already on 4\.1\.2; nothing to do$/],
    ['1.0.0+build1', '1.0.0+build2', DEFAULT, 'same', 'auto', /on 1\.0\.0\+build1 .*1\.0\.0\+build2/],
    ['4.1.2', '4.1.1', DEFAULT, 'downgrade', 'refused', /downgrade; the policy does not allow downgrades/],
    ['4.1.2', '4.2.0-beta.1', DEFAULT, 'minor', 'needs-approval', /prerelease; it needs --approve/],
    ['4.1.0-beta.1', '4.1.0-beta.2', DEFAULT, 'patch', 'needs-approval', /prerelease/],
    ['4.1.0-rc.1', '4.1.0', DEFAULT, 'patch', 'auto', /patch upgrade/],
    ['4.1.0-rc.1', '4.1.0-rc.1', DEFAULT, 'same', 'auto', /nothing to do/],
    ['v2.1.0', 'v2.1.1', DEFAULT, 'patch', 'auto', /v2\.1\.0 -> v2\.1\.1/],
    // A prerelease target never softens a downgrade.
    ['4.1.2', '4.1.0-beta.1', DEFAULT, 'downgrade', 'refused', /downgrade/],
    ['4.1.2', '4.1.0-beta.1', PRE, 'downgrade', 'refused', /downgrade/],
    // autoApprove.
    ['4.1.2', '5.0.0', ALL, 'major', 'auto', /major upgrade; it proceeds/],
    ['4.1.2', '4.2.0', PATCH_ONLY, 'minor', 'needs-approval', /minor upgrade; it needs --approve/],
    ['4.1.2', '4.1.3', NONE, 'patch', 'needs-approval', /patch upgrade; it needs --approve/],
    // allowDowngrade.
    ['4.1.2', '4.1.1', DOWN, 'downgrade', 'needs-approval', /downgrade; it needs --approve/],
    ['4.1.2', '4.1.1', NO_DOWN, 'downgrade', 'refused', /does not allow downgrades/],
    // allowedRange.
    ['4.1.2', '4.3.0', V4, 'minor', 'auto', /minor upgrade/],
    ['4.1.2', '5.0.0', V4, 'major', 'refused', /outside the allowed range >=4\.1\.0 <5/],
    ['4.1.2', '5.0.0-beta.1', V4, 'major', 'refused', /outside the allowed range/],
    ['4.1.2', '4.2.0-rc.1', CARET4, 'minor', 'needs-approval', /prerelease/],
    ['4.1.2', '4.2.0', BAD_RANGE, 'minor', 'refused', /policy range "not a range" is invalid/],
    ['4.1.2', '4.2.0', BLANK_RANGE, 'minor', 'refused', /policy range " {2}" is invalid/],
    // pinnedVersion; build metadata does not count against the pin.
    ['4.1.2', '4.1.5', PIN, 'patch', 'auto', /patch upgrade/],
    ['4.1.2', 'v4.1.5', PIN_BUILD, 'patch', 'auto', /patch upgrade/],
    ['4.1.2', '4.1.6', PIN, 'patch', 'refused', /refused; the policy pins 4\.1\.5$/],
    ['4.1.2', '4.1.5', PIN_BAD, 'patch', 'refused', /policy pin "latest" is not a valid version/],
    ['4.1.2', '5.0.0', PIN_MAJOR, 'major', 'needs-approval', /major upgrade; it needs --approve/],
    ['4.1.2', '4.1.6', PIN_ANY, 'patch', 'refused', /pins 4\.1\.5/],
    // allowPrerelease.
    ['4.1.2', '4.2.0-beta.1', PRE, 'minor', 'auto', /minor upgrade; it proceeds/],
    ['4.1.2', '5.0.0-rc.1', PRE, 'major', 'needs-approval', /major upgrade; it needs/],
  ])('%j -> %j under %j is %s / %s', (installed, target, policy, kind, decision, reason) => {
    expect(decideUpgrade(installed, target, policy)).toEqual({
      kind,
      decision,
      reason: expect.stringMatching(reason),
    });
  });

  it('words a major upgrade the way operators see it in the CLI', () => {
    expect(decideUpgrade('4.1.2', '5.0.0').reason).toBe(
      '4.1.2 -> 5.0.0 is a major upgrade; it needs --approve',
    );
  });

  it('uses the default policy when none is given', () => {
    expect(decideUpgrade('4.1.2', '4.2.0')).toEqual(decideUpgrade('4.1.2', '4.2.0', {}));
    expect(decideUpgrade('4.1.2', '5.0.0').decision).toBe('needs-approval');
  });

  // Reasons for anything but 'same' name both versions so an operator can act on the line alone.
  it.each<[string, string, UpgradePolicy]>([
    ['4.1.2', '4.1.3', {}],
    ['4.1.2', '5.0.0', {}],
    ['4.1.2', '4.1.1', {}],
    ['4.1.2', '4.1.1', { allowDowngrade: true }],
    ['4.1.2', '4.2.0-beta.1', {}],
    ['4.1.2', '5.0.0', { allowedRange: '<5' }],
    ['4.1.2', '5.0.0', { allowedRange: '%%' }],
    ['4.1.2', '4.1.6', { pinnedVersion: '4.1.5' }],
    ['4.1.2', 'latest', {}],
  ])('the reason for %j -> %j under %j names both versions', (installed, target, policy) => {
    const { reason } = decideUpgrade(installed, target, policy);
    expect(reason).toContain(`${installed} -> ${target}`);
  });

  it.each([
    ['', '4.1.2', /^cannot decide "" -> 4\.1\.2: "" is not a valid version$/],
    [' ', '4.1.2', /^cannot decide " " -> 4\.1\.2: " " is not a valid version$/],
    ['4.1.2', 'latest', /^cannot decide 4\.1\.2 -> latest: "latest" is not a valid version$/],
    ['abc', '4.1.2', /"abc" is not a valid version/],
    ['abc', 'latest', /"abc" and "latest" are not valid versions/],
  ])('refuses %j -> %j as invalid', (installed, target, reason) => {
    expect(decideUpgrade(installed, target)).toEqual({
      kind: 'invalid',
      decision: 'refused',
      reason: expect.stringMatching(reason),
    });
  });

  it('is not loosened by an invalid version even when every permission is granted', () => {
    const policy: UpgradePolicy = {
      autoApprove: ['patch', 'minor', 'major'],
      allowDowngrade: true,
      allowPrerelease: true,
    };
    expect(decideUpgrade('4.1.2', 'latest', policy).decision).toBe('refused');
  });
});
