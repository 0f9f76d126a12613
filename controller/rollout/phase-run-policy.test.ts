import { decidePhaseRun, deploymentHasHost, type PhaseRunAsk } from './phase-run-policy';

const majorNeedsApproval = { autoApprove: ['patch', 'minor'] as const };
const mail = { name: 'mail', policy: majorNeedsApproval, installed: '4.1.0' };
const ask = (over: Partial<PhaseRunAsk> = {}): PhaseRunAsk => ({
  phase: 'upgrade',
  target: '4.1.2',
  approve: false,
  override: false,
  reason: '',
  deployments: [mail],
  holds: [],
  ...over,
});
const lock = { rolloutId: 'r-abc', deployment: 'mail', state: 'upgrading' };

describe('phase run policy › what stays free', () => {
  it.each(['check', 'verify'])('%s is free even on a host a rollout holds', (phase) => {
    expect(decidePhaseRun(ask({ phase, holds: [lock], target: '9.0.0' }))).toEqual({ kind: 'free' });
  });

  it('a mutating phase on a host of no deployment and no rollout is free', () => {
    expect(decidePhaseRun(ask({ deployments: [] }))).toEqual({ kind: 'free' });
  });

  it('a patch upgrade the policy lets through is allowed', () => {
    expect(decidePhaseRun(ask())).toEqual({ kind: 'allowed' });
  });
});

describe('phase run policy › a phase run that tries to go around a rollout', () => {
  it.each(['download', 'upgrade', 'finalize', 'rollback'])(
    '%s is refused ROLLOUT_LOCKED naming the rollout',
    (phase) => {
      const v = decidePhaseRun(ask({ phase, holds: [lock] }));
      expect(v.kind).toBe('refused');
      expect(v.kind === 'refused' && v.code).toBe('ROLLOUT_LOCKED');
      expect(v.kind === 'refused' && v.message).toContain('rollout r-abc of deployment mail (upgrading)');
      expect(v.kind === 'refused' && v.message).toContain('--override --reason TEXT');
    },
  );

  it('with --override and a reason it goes through, saying what it went around', () => {
    const v = decidePhaseRun(ask({ holds: [lock], override: true, reason: 'hotfix CVE-1' }));
    expect(v).toEqual({ kind: 'overridden', refusals: [expect.stringContaining('rollout r-abc')] });
  });

  it('--override without a reason is refused, and so is a reason without --override', () => {
    expect(decidePhaseRun(ask({ holds: [lock], override: true, reason: ' ' }))).toMatchObject({
      kind: 'refused',
      code: 'OVERRIDE_REASON_REQUIRED',
    });
    expect(decidePhaseRun(ask({ reason: 'why not' }))).toMatchObject({
      kind: 'refused',
      code: 'OVERRIDE_REASON_REQUIRED',
    });
  });
});

describe('phase run policy › the deployment policy', () => {
  it('a major jump needs --approve (majorNeedsApproval), as a rollout would', () => {
    expect(decidePhaseRun(ask({ target: '5.0.0' }))).toMatchObject({
      kind: 'refused',
      code: 'APPROVAL_REQUIRED',
    });
    expect(decidePhaseRun(ask({ target: '5.0.0', approve: true }))).toEqual({ kind: 'allowed' });
  });

  it('a pinned version or an allowedRange refuses other targets, even with --approve', () => {
    const pinned = { ...mail, policy: { ...majorNeedsApproval, pinnedVersion: '4.1.1' } };
    const v = decidePhaseRun(ask({ deployments: [pinned], approve: true }));
    expect(v).toMatchObject({ kind: 'refused', code: 'POLICY_REFUSED' });
    const ranged = { ...mail, policy: { ...majorNeedsApproval, allowedRange: '<4.1.2' } };
    expect(decidePhaseRun(ask({ deployments: [ranged], phase: 'download' }))).toMatchObject({
      kind: 'refused',
      code: 'POLICY_REFUSED',
    });
  });

  it('a download or upgrade without --target, or without a known installed version, is refused', () => {
    expect(decidePhaseRun(ask({ target: '' }))).toMatchObject({ kind: 'refused', code: 'POLICY_REFUSED' });
    const unknown = { ...mail, installed: '' };
    const v = decidePhaseRun(ask({ deployments: [unknown] }));
    expect(v.kind === 'refused' && v.message).toContain('pass --installed');
  });

  it('a rollback makes no jump of its own: only the lock applies', () => {
    expect(decidePhaseRun(ask({ phase: 'rollback', target: '' }))).toEqual({ kind: 'allowed' });
  });
});

describe('phase run policy › which deployments have the host', () => {
  const host = { id: 'h-1', labels: { role: 'core', env: 'prod' } };
  it('by id or by selector', () => {
    expect(deploymentHasHost({ hosts: [{ id: 'h-1', vars: {} }] }, host)).toBe(true);
    expect(deploymentHasHost({ hosts: [{ id: 'h-2', vars: {} }] }, host)).toBe(false);
    expect(deploymentHasHost({ hosts: [{ select: { env: 'prod' }, vars: {} }] }, host)).toBe(true);
    expect(deploymentHasHost({ hosts: [{ select: { env: 'dev' }, vars: {} }] }, host)).toBe(false);
  });
});
