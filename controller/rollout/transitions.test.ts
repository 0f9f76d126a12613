import {
  heldHost,
  host,
  hosts,
  IN_WINDOW,
  NEXT_OPENING,
  OUT_OF_WINDOW,
  rollout,
} from '../../test/helpers/rollout-records';
import {
  PHASE_OF_STATE,
  ROLLOUT_STATES,
  type HostState,
  type RolloutHostRecord,
  type RolloutRecord,
} from './model';
import {
  decideFinalizeResult,
  decideRollout,
  type RolloutDecision,
  type RolloutSnapshot,
} from './transitions';

const NEVER = Number.POSITIVE_INFINITY;
const WALL = 1_900_000_000_000;

/** A host with its state's phase in flight. */
function busy(hostId: string, state: HostState): RolloutHostRecord {
  return host(hostId, state, { phase: PHASE_OF_STATE[state] ?? null, phaseRunId: `pr-${hostId}` });
}

function decide(
  r: RolloutRecord,
  hs: readonly RolloutHostRecord[],
  opts: { now?: number; offline?: string[]; hasFinalize?: boolean } = {},
): RolloutDecision {
  const offline = new Set(opts.offline ?? []);
  const snapshot: RolloutSnapshot = {
    rollout: r,
    hosts: hs,
    now: opts.now ?? IN_WINDOW,
    wallNow: WALL,
    online: new Set(hs.map((h) => h.hostId).filter((id) => !offline.has(id))),
    hasFinalize: opts.hasFinalize ?? true,
  };
  return decideRollout(snapshot);
}

const starts = (d: RolloutDecision): string[] =>
  d.commands.flatMap((c) => (c.kind === 'start-host' ? [`${c.hostId}:${c.state}`] : []));

describe('rollout transitions › scheduled', () => {
  it('waits for the staging time, and wakes at it', () => {
    const r = rollout({ state: 'scheduled', stageAt: IN_WINDOW + 60_000 });
    expect(decide(r, hosts('pending', 'pending', 'pending'))).toEqual({
      commands: [],
      wakeAt: IN_WINDOW + 60_000,
    });
  });

  it('starts staging at the staging time, and looks again at once', () => {
    const r = rollout({ state: 'scheduled', stageAt: IN_WINDOW });
    expect(decide(r, hosts('pending', 'pending', 'pending'))).toEqual({
      commands: [{ kind: 'patch', patch: { state: 'staging', reason: '' } }],
      wakeAt: IN_WINDOW,
    });
  });
});

describe('rollout transitions › staging', () => {
  const staging = rollout({ state: 'staging', stagedAt: null });

  it('stages pending hosts, staging.concurrency at a time, in host order', () => {
    const d = decide(staging, hosts('pending', 'pending', 'pending'));
    expect(starts(d)).toEqual(['h1:staging', 'h2:staging']);
    expect(d.wakeAt).toBe(NEVER);
  });

  it('fills only the free slots', () => {
    expect(
      starts(decide(staging, [busy('h1', 'staging'), host('h2', 'pending'), host('h3', 'pending')])),
    ).toEqual(['h2:staging']);
  });

  it('skips offline hosts, and names them when nothing else can start', () => {
    expect(starts(decide(staging, hosts('pending', 'pending', 'pending'), { offline: ['h1'] }))).toEqual([
      'h2:staging',
      'h3:staging',
    ]);
    const d = decide(staging, hosts('pending', 'staged', 'pending'), { offline: ['h1', 'h3'] });
    expect(d.commands).toEqual([{ kind: 'reason', reason: 'waiting for h1, h3 (offline) to stage' }]);
  });

  it('lets running hosts finish after a failure, and starts no other', () => {
    const d = decide(staging, [host('h1', 'stage-failed'), busy('h2', 'staging'), host('h3', 'pending')]);
    expect(d).toEqual({ commands: [], wakeAt: NEVER });
  });

  it('halts once nothing runs, naming each failed host and why', () => {
    const d = decide(staging, [
      host('h1', 'stage-failed', { reason: 'DISK_FULL' }),
      ...hosts('staged', 'pending').map((h, i) => ({ ...h, hostId: `h${i + 2}` })),
    ]);
    expect(d.commands).toEqual([
      {
        kind: 'patch',
        patch: { state: 'halted', reason: 'staging failed on h1 (DISK_FULL); resume retries it' },
      },
    ]);
  });

  it('is staged when every host is staged or already current', () => {
    expect(decide(staging, hosts('staged', 'current', 'staged'))).toEqual({
      commands: [
        { kind: 'patch', patch: { state: 'staged', stagedAt: IN_WINDOW, reason: 'every host is staged' } },
      ],
      wakeAt: IN_WINDOW,
    });
  });
});

describe('rollout transitions › staged and upgrading', () => {
  it('opens the window on the canary batch alone', () => {
    const d = decide(rollout({ state: 'staged' }), hosts('staged', 'staged', 'staged'));
    expect(d.commands).toEqual([
      { kind: 'patch', patch: { state: 'upgrading', windowOpenedAt: IN_WINDOW, reason: 'batch 0' } },
      { kind: 'start-host', hostId: 'h1', state: 'upgrading' },
    ]);
  });

  it('waits for the window, and wakes when it opens', () => {
    const d = decide(rollout({ state: 'staged' }), hosts('staged', 'staged', 'staged'), {
      now: OUT_OF_WINDOW,
    });
    expect(d.wakeAt).toBe(NEXT_OPENING);
    expect(d.commands).toEqual([
      {
        kind: 'reason',
        reason: expect.stringContaining('waiting: window night opens at 2026-12-09T03:00:00'),
      },
    ]);
  });

  it('starts no host whose estimate does not fit what is left of the window', () => {
    const r = rollout({ state: 'upgrading' }, { estimateMsPerHost: 3 * 3_600_000 });
    const d = decide(r, hosts('staged', 'staged', 'staged'));
    expect(starts(d)).toEqual([]);
    expect(d.commands).toEqual([{ kind: 'reason', reason: expect.stringContaining('does not fit') }]);
  });

  it('starts the next batch when the canary is upgraded', () => {
    expect(starts(decide(rollout(), hosts('upgraded', 'staged', 'staged')))).toEqual([
      'h2:upgrading',
      'h3:upgrading',
    ]);
  });

  it('starts nothing of the next batch while the canary runs', () => {
    expect(decide(rollout(), [busy('h1', 'upgrading'), host('h2', 'staged'), host('h3', 'staged')])).toEqual({
      commands: [],
      wakeAt: NEVER,
    });
  });

  it('starts no offline host, and says which it waits for', () => {
    const d = decide(rollout(), hosts('upgraded', 'staged', 'staged'), { offline: ['h2', 'h3'] });
    expect(d.commands).toEqual([{ kind: 'reason', reason: 'waiting for h2, h3 (offline)' }]);
  });

  it('waits while a host is unknown', () => {
    const d = decide(rollout(), [
      host('h1', 'upgrading', { phase: 'upgrade', unknown: true }),
      ...hosts('staged', 'staged').map((h, i) => ({ ...h, hostId: `h${i + 2}`, batch: 1 })),
    ]);
    expect(d.commands).toEqual([{ kind: 'reason', reason: 'waiting for h1 (state unknown)' }]);
  });

  it('pauses before a batch with pause: manual, releasing it', () => {
    const r = rollout({}, { batches: { ...rollout().spec.batches, pause: { kind: 'manual' } } });
    expect(decide(r, hosts('upgraded', 'staged', 'staged')).commands).toEqual([
      {
        kind: 'patch',
        patch: { paused: true, releasedBatch: 1, reason: 'batch 1 is next; resume to start it' },
      },
    ]);
  });

  it('pauses for the time given with pause: 10m, and wakes at its end', () => {
    const r = rollout({}, { batches: { ...rollout().spec.batches, pause: { kind: 'timed', ms: 600_000 } } });
    expect(decide(r, hosts('upgraded', 'staged', 'staged'))).toEqual({
      commands: [
        {
          kind: 'patch',
          patch: {
            paused: true,
            pauseUntil: IN_WINDOW + 600_000,
            releasedBatch: 1,
            reason: 'pausing 600 s before batch 1',
          },
        },
      ],
      wakeAt: IN_WINDOW + 600_000,
    });
  });

  it('starts a released batch without pausing again', () => {
    const r = rollout(
      { releasedBatch: 1 },
      { batches: { ...rollout().spec.batches, pause: { kind: 'manual' } } },
    );
    expect(starts(decide(r, hosts('upgraded', 'staged', 'staged')))).toEqual([
      'h2:upgrading',
      'h3:upgrading',
    ]);
  });

  it('ends a timed pause when its time comes', () => {
    const r = rollout({ paused: true, pauseUntil: IN_WINDOW });
    expect(decide(r, hosts('upgraded', 'staged', 'staged'))).toEqual({
      commands: [{ kind: 'patch', patch: { paused: false, pauseUntil: null, reason: '' } }],
      wakeAt: IN_WINDOW,
    });
  });

  it('starts nothing while paused by an operator', () => {
    expect(decide(rollout({ paused: true }), hosts('upgraded', 'staged', 'staged'))).toEqual({
      commands: [],
      wakeAt: NEVER,
    });
  });

  it('past the error threshold, lets hosts in flight finish, then halts', () => {
    expect(
      decide(rollout(), [host('h1', 'rolled-back'), busy('h2', 'upgrading'), host('h3', 'staged')]),
    ).toEqual({
      commands: [],
      wakeAt: NEVER,
    });
    expect(decide(rollout(), hosts('rolled-back', 'upgraded', 'staged')).commands).toEqual([
      {
        kind: 'patch',
        patch: { state: 'halted', reason: '1 failed host(s) exceed the error threshold of 0: h1' },
      },
    ]);
  });

  it('tolerates what the threshold and a resumed halt allow', () => {
    expect(starts(decide(rollout({}, { maxFailures: 1 }), hosts('rolled-back', 'staged', 'staged')))).toEqual(
      ['h2:upgrading', 'h3:upgrading'],
    );
    expect(
      starts(decide(rollout({ toleratedFailures: 1 }), hosts('rolled-back', 'staged', 'staged'))),
    ).toEqual(['h2:upgrading', 'h3:upgrading']);
  });

  it('finalizes when every host is upgraded or current', () => {
    expect(decide(rollout(), hosts('upgraded', 'current', 'upgraded'))).toEqual({
      commands: [{ kind: 'patch', patch: { state: 'finalizing', reason: '' } }],
      wakeAt: IN_WINDOW,
    });
  });

  it('holds when the batches ended with rolled-back hosts (finalize needs every host)', () => {
    const d = decide(rollout({}, { maxFailures: 1 }), hosts('upgraded', 'rolled-back', 'upgraded'));
    expect(d.commands).toEqual([
      {
        kind: 'patch',
        patch: {
          state: 'held',
          reason: 'finalize needs every host upgraded; h2 rolled back: retry or rollback',
        },
      },
    ]);
  });
});

describe('rollout transitions › finalizing', () => {
  const finalizing = rollout({ state: 'finalizing' });

  it('sends finalize once, to the host of the recipe role', () => {
    expect(decide(finalizing, hosts('upgraded', 'upgraded', 'upgraded')).commands).toEqual([
      { kind: 'start-finalize', hostId: 'h1' },
    ]);
  });

  it('sends nothing while finalize is in flight or done', () => {
    for (const finalizeState of ['sent', 'succeeded', 'failed'] as const)
      expect(
        decide({ ...finalizing, finalizeState }, hosts('upgraded', 'upgraded', 'upgraded')).commands,
      ).toEqual([]);
  });

  it('goes to verify when the recipe has no finalize, or no host was upgraded', () => {
    const verifying = {
      commands: [{ kind: 'patch', patch: { state: 'verifying', reason: '' } }],
      wakeAt: IN_WINDOW,
    };
    expect(decide(finalizing, hosts('upgraded', 'upgraded', 'upgraded'), { hasFinalize: false })).toEqual(
      verifying,
    );
    expect(decide(finalizing, hosts('current', 'current', 'current'))).toEqual(verifying);
  });

  it('holds when no host has the role', () => {
    const r = rollout({ state: 'finalizing' }, { finalizeRole: 'db' });
    expect(decide(r, hosts('upgraded', 'upgraded', 'upgraded')).commands).toEqual([
      { kind: 'patch', patch: { state: 'held', reason: 'no host of this deployment has role db' } },
    ]);
  });
});

describe('rollout transitions › verifying', () => {
  const verifying = rollout({ state: 'verifying' });

  it('verifies every upgraded and current host', () => {
    expect(starts(decide(verifying, hosts('upgraded', 'current', 'verified')))).toEqual([
      'h1:final-verifying',
      'h2:final-verifying',
    ]);
  });

  it('waits for verifies in flight', () => {
    expect(
      decide(verifying, [busy('h1', 'final-verifying'), host('h2', 'verified'), host('h3', 'verified')])
        .commands,
    ).toEqual([]);
  });

  it('holds on a failed verify', () => {
    expect(decide(verifying, hosts('verified', 'verify-failed', 'verified')).commands).toEqual([
      { kind: 'patch', patch: { state: 'held', reason: 'verify failed on h2: retry or rollback' } },
    ]);
  });

  it('succeeds when every host is verified, stamped with the wall clock', () => {
    expect(decide(verifying, hosts('verified', 'verified', 'verified')).commands).toEqual([
      { kind: 'patch', patch: { state: 'succeeded', reason: '', finishedAt: WALL } },
    ]);
  });
});

describe('rollout transitions › rolling back', () => {
  const back = rollout({ state: 'rolling-back' });

  it('rolls back every upgraded, verified and verify-failed host', () => {
    expect(starts(decide(back, hosts('upgraded', 'verified', 'verify-failed')))).toEqual([
      'h1:rolling-back',
      'h2:rolling-back',
      'h3:rolling-back',
    ]);
  });

  it('waits for rollbacks in flight', () => {
    expect(
      decide(back, [busy('h1', 'rolling-back'), host('h2', 'rolled-back'), host('h3', 'staged')]).commands,
    ).toEqual([]);
  });

  it('is rolled back when every rollback succeeded, failed when one did not', () => {
    expect(decide(back, hosts('rolled-back', 'rolled-back', 'staged')).commands).toEqual([
      { kind: 'patch', patch: { state: 'rolled-back', reason: '', finishedAt: WALL } },
    ]);
    expect(decide(back, hosts('rolled-back', 'rollback-failed', 'staged')).commands).toEqual([
      { kind: 'patch', patch: { state: 'failed', reason: 'rollback failed on h2', finishedAt: WALL } },
    ]);
  });
});

describe('rollout transitions › aborting', () => {
  const aborting = rollout({ state: 'aborting' });

  it('lets hosts and a finalize in flight finish', () => {
    expect(
      decide(aborting, [busy('h1', 'upgrading'), ...hosts('staged', 'staged').slice(1)]).commands,
    ).toEqual([]);
    expect(
      decide({ ...aborting, finalizeState: 'sent' }, hosts('upgraded', 'upgraded', 'upgraded')).commands,
    ).toEqual([]);
  });

  it('is aborted once nothing is in flight', () => {
    expect(decide(aborting, hosts('upgraded', 'staged', 'staged')).commands).toEqual([
      { kind: 'patch', patch: { state: 'aborted', finishedAt: WALL } },
    ]);
  });
});

describe('rollout transitions › resting states', () => {
  it.each(['held', 'halted', 'succeeded', 'aborted', 'rolled-back', 'failed'] as const)(
    '%s decides nothing',
    (state) => {
      expect(decide(rollout({ state }), hosts('staged', 'staged', 'staged'))).toEqual({
        commands: [],
        wakeAt: NEVER,
      });
    },
  );

  it('every rollout state is either decided or resting', () => {
    for (const state of ROLLOUT_STATES)
      expect(() => decide(rollout({ state }), hosts('staged', 'staged', 'staged'))).not.toThrow();
  });
});

describe('finalize results', () => {
  it('moves a finalizing rollout to verify, or holds it', () => {
    expect(decideFinalizeResult('finalizing', true, '')).toEqual({
      finalizeState: 'succeeded',
      state: 'verifying',
      reason: '',
    });
    expect(decideFinalizeResult('finalizing', false, 'setup: HTTP 500')).toEqual({
      finalizeState: 'failed',
      state: 'held',
      reason: 'finalize failed: setup: HTTP 500; retry or rollback',
    });
  });

  it('records the outcome only when an abort was written meanwhile', () => {
    expect(decideFinalizeResult('aborting', true, '')).toEqual({ finalizeState: 'succeeded' });
    expect(decideFinalizeResult('aborting', false, 'x')).toEqual({ finalizeState: 'failed' });
  });
});

describe('rollout transitions › hosts held past the point of no return', () => {
  const lenient = rollout({ state: 'upgrading' }, { maxFailures: 5 });

  it('in flight hosts finish first, then the rollout halts whatever the error threshold', () => {
    expect(decide(lenient, [heldHost('h1'), busy('h2', 'upgrading'), host('h3', 'staged')]).commands).toEqual(
      [],
    );
    const d = decide(lenient, [heldHost('h1'), host('h2', 'upgraded'), host('h3', 'staged')]);
    expect(d.commands).toEqual([
      {
        kind: 'patch',
        patch: {
          state: 'halted',
          reason: expect.stringMatching(
            /^h1 held past the point of no return .* then resolve and resume; or abort$/,
          ),
        },
      },
    ]);
    expect(d.wakeAt).toBe(NEVER);
  });

  it('a rollout rollback that a held host interrupts halts instead of ending', () => {
    const back = rollout({ state: 'rolling-back' });
    expect(
      decide(back, [heldHost('h1'), host('h2', 'rolled-back'), host('h3', 'rollback-failed')]).commands,
    ).toEqual([
      {
        kind: 'patch',
        patch: {
          state: 'halted',
          reason: expect.stringMatching(/^h1 held .* then resolve and rollback; or abort$/),
        },
      },
    ]);
  });

  it('a finalize that failed past its point says retry is the way on', () => {
    expect(decideFinalizeResult('finalizing', false, 'setup-update: HTTP 500', 'setup-update')).toEqual({
      finalizeState: 'failed',
      state: 'held',
      reason: expect.stringMatching(
        /^finalize failed past the point of no return \(step setup-update\): setup-update: HTTP 500; retry, or rollback \(refused on the finalize host/,
      ),
    });
  });
});
