import { heldHost, host, hosts, rollout } from '../../test/helpers/rollout-records';
import { ConvoyError } from '../../shared/errors';
import { decideAction, ROLLOUT_ACTIONS, type RolloutAction } from './actions';
import { FINISHED_ROLLOUT_STATES, ROLLOUT_STATES, type RolloutState } from './model';

const UNFINISHED = ROLLOUT_STATES.filter((s) => !(FINISHED_ROLLOUT_STATES as readonly string[]).includes(s));

/** Where each action applies (not paused / paused); every other cell is refused. */
const APPLIES: Record<
  RolloutAction,
  { readonly running: readonly RolloutState[]; readonly paused: readonly RolloutState[] }
> = {
  pause: { running: UNFINISHED, paused: [] },
  resume: { running: ['halted'], paused: UNFINISHED },
  abort: {
    running: UNFINISHED.filter((s) => s !== 'aborting'),
    paused: UNFINISHED.filter((s) => s !== 'aborting'),
  },
  retry: { running: ['held'], paused: ['held'] },
  rollback: { running: ['held', 'halted'], paused: ['held', 'halted'] },
  // Needs a host held past the point of no return; with none (as in this table) it never applies.
  resolve: { running: [], paused: [] },
};

describe('operator actions › each action in each state', () => {
  const cells = ROLLOUT_ACTIONS.flatMap((action) =>
    ROLLOUT_STATES.flatMap((state) => [false, true].map((paused) => [action, state, paused] as const)),
  );
  it.each(cells)('%s on %s (paused: %s)', (action, state, paused) => {
    const r = rollout({ state, paused });
    const applies = APPLIES[action][paused ? 'paused' : 'running'].includes(state);
    const act = (): unknown => decideAction(action, r, hosts('upgraded', 'staged', 'staged'), 'alice');
    if (applies) {
      expect(act()).toMatchObject({ patch: { reason: expect.stringContaining('alice') } });
    } else {
      expect(act).toThrow(ConvoyError);
      expect(act).toThrow(new RegExp(`^rollout r-1 is ${state}${paused ? ' \\(paused\\)' : ''}: `));
    }
  });
});

describe('operator actions › what each changes', () => {
  it('pause stops new starts until resumed', () => {
    expect(decideAction('pause', rollout(), [], 'alice').patch).toEqual({
      paused: true,
      pauseUntil: null,
      reason: 'paused by alice',
    });
  });

  it('resume of a paused rollout unpauses it, state unchanged', () => {
    expect(decideAction('resume', rollout({ paused: true }), [], 'bob')).toEqual({
      patch: { paused: false, pauseUntil: null, reason: 'resumed by bob' },
      hostResets: [],
    });
  });

  it('resume of a halt in staging retries the failed staging', () => {
    const r = rollout({ state: 'halted', stagedAt: null });
    const result = decideAction(
      'resume',
      r,
      [host('h1', 'stage-failed'), ...hosts('staged', 'staged').slice(1)],
      'bob',
    );
    expect(result.patch).toMatchObject({ state: 'staging', toleratedFailures: 0 });
    expect(result.hostResets).toEqual([{ hostId: 'h1', state: 'pending' }]);
  });

  it('resume of a halt in the batches tolerates the failures it halted on, not more', () => {
    const r = rollout({ state: 'halted' }, { maxFailures: 1 });
    const result = decideAction('resume', r, hosts('rolled-back', 'rollback-failed', 'staged'), 'bob');
    expect(result.patch).toMatchObject({ state: 'upgrading', toleratedFailures: 2 });
    expect(result.hostResets).toEqual([]);
    // A second resume counts afresh: the first two are not tolerated twice.
    const again = rollout({ state: 'halted', toleratedFailures: 2 }, { maxFailures: 1 });
    const third = decideAction(
      'resume',
      again,
      hosts('rolled-back', 'rollback-failed', 'rolled-back'),
      'bob',
    );
    expect(third.patch.toleratedFailures).toBe(3);
  });

  it('abort lets hosts in flight finish', () => {
    expect(decideAction('abort', rollout(), [], 'carol').patch).toEqual({
      state: 'aborting',
      reason: 'aborted by carol; hosts in flight finish',
    });
  });

  it('retry after a failed finalize runs finalize again', () => {
    const r = rollout({ state: 'held', finalizeState: 'failed' });
    expect(decideAction('retry', r, hosts('upgraded', 'upgraded', 'upgraded'), 'dan')).toEqual({
      patch: { state: 'finalizing', finalizeState: null, reason: 'retried by dan' },
      hostResets: [],
    });
  });

  it('retry upgrades rolled-back hosts again from their caches', () => {
    const r = rollout({ state: 'held' });
    expect(decideAction('retry', r, hosts('upgraded', 'rolled-back', 'upgraded'), 'dan')).toEqual({
      patch: { state: 'upgrading', reason: 'retried by dan' },
      hostResets: [{ hostId: 'h2', state: 'staged' }],
    });
  });

  it('retry of a failed verify verifies again, after finalize if it had not run', () => {
    const held = rollout({ state: 'held', finalizeState: 'succeeded' });
    expect(decideAction('retry', held, hosts('verified', 'verify-failed', 'verified'), 'dan')).toEqual({
      patch: { state: 'verifying', reason: 'retried by dan' },
      hostResets: [{ hostId: 'h2', state: 'upgraded' }],
    });
    expect(
      decideAction('retry', rollout({ state: 'held' }), hosts('upgraded', 'upgraded', 'upgraded'), 'dan')
        .patch,
    ).toEqual({
      state: 'finalizing',
      reason: 'retried by dan',
    });
  });

  it('rollback rolls every upgraded host back', () => {
    expect(decideAction('rollback', rollout({ state: 'held' }), [], 'erin').patch).toEqual({
      state: 'rolling-back',
      reason: 'rollback requested by erin',
    });
  });
});

describe('operator actions › hosts held past the point of no return', () => {
  const withHeld = [heldHost('h1'), ...hosts('rolled-back', 'rolled-back', 'staged').slice(1)];

  it.each(['halted', 'held'] as const)(
    'resolve on a %s rollout: the held hosts count as rolled back, keeping what held them',
    (state) => {
      const result = decideAction('resolve', rollout({ state }), withHeld, 'fay');
      expect(result.patch).toEqual({ reason: 'h1 resolved by fay (manual recovery)' });
      expect(result.hostResets).toEqual([
        {
          hostId: 'h1',
          state: 'rolled-back',
          reason: expect.stringMatching(
            /^resolved by fay after the manual procedure; was: past the point of no return at step start-cells; backup r-1-u-backup-data/,
          ),
        },
      ]);
    },
  );

  it('resolve with no held host, or on a moving rollout, is refused', () => {
    expect(() => decideAction('resolve', rollout({ state: 'halted' }), hosts('rolled-back'), 'fay')).toThrow(
      /no host is held past the point of no return/,
    );
    expect(() => decideAction('resolve', rollout({ state: 'upgrading' }), withHeld, 'fay')).toThrow(
      /resolve applies to a held or halted rollout/,
    );
  });

  it('resume and retry wait for the held hosts to be resolved; abort and rollback do not', () => {
    expect(() => decideAction('resume', rollout({ state: 'halted' }), withHeld, 'fay')).toThrow(
      /h1 held: resolve first/,
    );
    expect(() => decideAction('retry', rollout({ state: 'held' }), withHeld, 'fay')).toThrow(
      /h1 held: resolve first/,
    );
    expect(decideAction('abort', rollout({ state: 'halted' }), withHeld, 'fay').patch.state).toBe('aborting');
    expect(decideAction('rollback', rollout({ state: 'halted' }), withHeld, 'fay').patch.state).toBe(
      'rolling-back',
    );
  });
});
