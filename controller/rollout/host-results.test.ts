import { CELLS_POINT, host } from '../../test/helpers/rollout-records';
import { heldReason } from './held-host';
import { decideHostResult, HOST_RESULTS, phaseHostState } from './host-results';
import { PHASE_OF_STATE, type HostState } from './model';

const NOW = 1_900_000_000_000;
const c = { target: '4.1.2', now: NOW, nextPhaseRunId: 'pr-next' };

function inFlight(state: HostState, overrides = {}) {
  return host('h1', state, { phase: PHASE_OF_STATE[state] ?? null, phaseRunId: 'pr-1', ...overrides });
}

describe('host results › every row of the table', () => {
  it.each([
    ['staging', 'ok', 'staged', undefined],
    ['staging', 'failed', 'stage-failed', undefined],
    ['upgrading', 'ok', 'verifying', 'verify'],
    ['upgrading', 'failed', 'rolling-back', 'rollback'],
    ['verifying', 'ok', 'upgraded', undefined],
    ['verifying', 'failed', 'rolling-back', 'rollback'],
    ['final-verifying', 'ok', 'verified', undefined],
    ['final-verifying', 'failed', 'verify-failed', undefined],
    ['rolling-back', 'ok', 'rolled-back', undefined],
    ['rolling-back', 'failed', 'rollback-failed', undefined],
  ] as const)('%s answered %s goes to %s', (from, how, to, chainedPhase) => {
    const outcome =
      how === 'ok' ? ({ kind: 'ok' } as const) : ({ kind: 'failed', why: 'apply: EXIT 1' } as const);
    const r = decideHostResult(inFlight(from), outcome, c);
    expect(r.hostPatch.state).toBe(to);
    expect(r.event).toBe(`rollout.host.${from}.${how}`);
    if (chainedPhase === undefined) {
      // Resting: nothing in flight, finished now.
      expect(r.chained).toBeUndefined();
      expect(r.hostPatch).toMatchObject({ phase: null, phaseRunId: null, finishedAt: NOW });
    } else {
      // Chained: the next phase is in flight in the same write, and the host is not finished.
      expect(r.chained).toEqual({ state: to, phase: chainedPhase });
      expect(r.hostPatch).toMatchObject({ phase: chainedPhase, phaseRunId: 'pr-next' });
      expect(r.hostPatch.finishedAt).toBeUndefined();
    }
    expect(r.hostPatch.reason).toBe(how === 'ok' ? '' : 'apply: EXIT 1');
  });

  it('covers exactly the host states that have a phase', () => {
    expect(Object.keys(HOST_RESULTS).sort()).toEqual(Object.keys(PHASE_OF_STATE).sort());
  });
});

describe('host results › what status learns', () => {
  it('a staged host has the target staged when a download step reported staging it', () => {
    const r = decideHostResult(inFlight('staging'), { kind: 'ok', versions: ['4.1.2'] }, c);
    expect(r.hostPatch.staged).toBe('4.1.2');
    expect(r.appPatch).toEqual({ staged: '4.1.2' });
    expect(r.readBack).toEqual({ staged: '4.1.2' });
  });

  it('a package version of the target (a Debian revision, an RPM release) is the target staged', () => {
    expect(
      decideHostResult(inFlight('staging'), { kind: 'ok', versions: ['4.1.2-1.el9'] }, c).hostPatch.staged,
    ).toBe('4.1.2');
  });

  it.each([
    ['no version', []],
    ['only another version', ['5.0.0']],
  ])(
    'a download that reported %s leaves staged unknown rather than copying the target',
    (_what, versions) => {
      const r = decideHostResult(inFlight('staging'), { kind: 'ok', versions }, c);
      expect(r.hostPatch.staged).toBe('');
      expect(r.appPatch).toEqual({ staged: '' });
    },
  );

  it('an upgrade records its downtime from the host start and the backup it made', () => {
    const r = decideHostResult(
      inFlight('upgrading', { startedAt: NOW - 5000 }),
      { kind: 'ok', backupId: 'b-7' },
      c,
    );
    expect(r.hostPatch.downtimeMs).toBe(5000);
    expect(r.appPatch).toEqual({ lastBackupId: 'b-7' });
  });

  it('a verified upgrade is installed (as read back), healthy, and out of maintenance', () => {
    const r = decideHostResult(inFlight('verifying'), { kind: 'ok', installed: '4.1.2' }, c);
    expect(r.hostPatch.installed).toBe('4.1.2');
    expect(r.appPatch).toEqual({
      installed: '4.1.2',
      lastHealth: 'ok',
      lastHealthAt: NOW,
      maintenance: false,
    });
  });

  it('a verify that read nothing back records installed unknown, never the planned target', () => {
    const r = decideHostResult(inFlight('verifying', { installed: '4.1.0' }), { kind: 'ok' }, c);
    expect(r.hostPatch.state).toBe('upgraded');
    expect(r.hostPatch.installed).toBe('');
    expect(r.appPatch.installed).toBe('');
  });

  it('a verify that read back another version than the target fails and rolls the host back', () => {
    const r = decideHostResult(inFlight('verifying'), { kind: 'ok', installed: '5.0.0' }, c);
    expect(r.hostPatch.state).toBe('rolling-back');
    expect(r.chained).toEqual({ state: 'rolling-back', phase: 'rollback' });
    expect(r.why).toBe('VERSION_MISMATCH: installed 5.0.0, planned 4.1.2');
    expect(r.hostPatch.reason).toBe(r.why);
    expect(r.event).toBe('rollout.host.verifying.failed');
    expect(r.appPatch.installed).toBeUndefined();
  });

  it('a final verify that read back another version is verify-failed', () => {
    const r = decideHostResult(inFlight('final-verifying'), { kind: 'ok', installed: '4.1.1' }, c);
    expect(r.hostPatch.state).toBe('verify-failed');
    expect(r.why).toBe('VERSION_MISMATCH: installed 4.1.1, planned 4.1.2');
  });

  it('the same version written differently is no mismatch', () => {
    const r = decideHostResult(inFlight('verifying'), { kind: 'ok', installed: 'v4.1.2' }, c);
    expect(r.hostPatch.state).toBe('upgraded');
    expect(r.hostPatch.installed).toBe('v4.1.2');
  });

  it('a failed verify is recorded unhealthy, still in maintenance until rolled back', () => {
    const r = decideHostResult(inFlight('verifying'), { kind: 'failed', why: 'health: 500' }, c);
    expect(r.appPatch).toEqual({ lastHealth: 'failed: health: 500', lastHealthAt: NOW });
  });

  it('a rolled-back host leaves maintenance, records the version read back, and keeps why its upgrade failed', () => {
    const r = decideHostResult(
      inFlight('rolling-back', { reason: 'apply: EXIT 1' }),
      { kind: 'ok', installed: '4.1.0' },
      c,
    );
    expect(r.hostPatch.reason).toBe('apply: EXIT 1');
    expect(r.hostPatch.installed).toBe('4.1.0');
    expect(r.appPatch).toEqual({ installed: '4.1.0', maintenance: false });
    expect(r.readBack).toEqual({ installed: '4.1.0' });
  });

  it('a failed rollback leaves maintenance on', () => {
    expect(decideHostResult(inFlight('rolling-back'), { kind: 'failed', why: 'x' }, c).appPatch).toEqual({});
  });
});

describe('host results › bugs', () => {
  it.each(['pending', 'staged', 'upgraded', 'current', 'verified'] as const)(
    'a host in %s has no phase to answer',
    (state) => {
      expect(() => phaseHostState(state)).toThrow(`a host in state ${state} has no phase to answer`);
    },
  );
});

describe('host results › a rollback refused past the point of no return', () => {
  const refused = {
    kind: 'failed',
    why: 'PAST_POINT_OF_NO_RETURN at step start-cells',
    pointOfNoReturn: CELLS_POINT,
  } as const;

  it('holds the host, its reason naming the step, the backup and the procedure', () => {
    const r = decideHostResult(inFlight('rolling-back', { reason: 'check-new-version: EXIT 1' }), refused, c);
    expect(r.hostPatch).toMatchObject({ state: 'held', phase: null, phaseRunId: null, finishedAt: NOW });
    expect(r.hostPatch.reason).toBe(heldReason(CELLS_POINT));
    expect(r.event).toBe('rollout.host.rolling-back.held');
    expect(r.pointOfNoReturn).toEqual(CELLS_POINT);
    expect(r.why).toBe(heldReason(CELLS_POINT));
    // Nothing was undone: the installed version is not touched, maintenance stays on.
    expect(r.appPatch).toEqual({ lastHealth: `failed: ${heldReason(CELLS_POINT)}`, lastHealthAt: NOW });
    expect(r.chained).toBeUndefined();
  });

  it('only a rollback answer holds: a failed verify still chains its rollback', () => {
    const r = decideHostResult(inFlight('verifying'), refused, c);
    expect(r.hostPatch.state).toBe('rolling-back');
    expect(r.chained).toEqual({ state: 'rolling-back', phase: 'rollback' });
    expect(r.pointOfNoReturn).toBeUndefined();
  });
});
