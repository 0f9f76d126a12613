/**
 * RolloutEngine in-process, as a spec: the real engine, store (SQLite in a temp dir) and agent
 * gateway (gRPC on 127.0.0.1:0), scripted agents that end each phase as the case says, and a
 * scheduler clock warped from a fixed Sunday 01:00 UTC, so that staging (02:00) and the window
 * (03:00-05:00) are exact. Every assertion reads the store: rollout and host rows, phase runs,
 * events in order.
 */
import { EngineHarness } from '../helpers/engine-harness';
import type { ScriptedAgent } from '../helpers/scripted-agent';
import { isIn, RESTING_ROLLOUT_STATES, type RolloutRecord } from '../../controller/rollout/model';
import type { EventView } from '../../controller/store/events';

// Above the longest wait of a case (20 s), so a case that fails says what it waited for.
jest.setTimeout(30_000);

const SUNDAY_1AM = Date.UTC(2030, 0, 6, 1, 0); // 2030-01-06 is a Sunday
const STAGING_AT = Date.UTC(2030, 0, 6, 2, 0);
const WINDOW_OPENS = Date.UTC(2030, 0, 6, 3, 0);

const RECIPE = `
name: engine-spec
description: Every step an exec of true; the scripted agents decide how each phase ends
versions:
  installed: { argv: ['true'], pattern: '([0-9]+\\.[0-9]+\\.[0-9]+)' }
policy: { majorNeedsApproval: false }
manualRecovery: restore the backup shown by hand
phases:
  check: [{ id: current, type: exec, argv: ['true'], source: test }]
  download: [{ id: fetch, type: exec, argv: ['true'], source: test }]
  upgrade: [{ id: swap, type: exec, argv: ['true'], source: test }]
  finalize:
    role: primary
    steps: [{ id: migrate, type: exec, argv: ['true'], pointOfNoReturn: true, source: test }]
  verify: [{ id: health, type: exec, argv: ['true'], source: test }]
  rollback: [{ id: restore, type: exec, argv: ['true'], source: test }]
`;

/** Three hosts (the first is the primary and the canary), one at a time, halting at the first failure. */
function fleet(a: string, b: string, c: string): string {
  return `
windows:
  sunday-night: { cron: '0 3 * * 0', duration: 2h, timezone: UTC }
deployments:
  - name: app-prod
    recipe: ./engine-spec.yaml
    target: latest
    hosts:
      - { id: ${a}, role: primary }
      - { id: ${b}, role: web }
      - { id: ${c}, role: web }
    window: sunday-night
    staging: { cron: '0 2 * * 0', timezone: UTC }
    batches: { canary: 1, concurrency: 1, errorThreshold: 0 }
`;
}

/** Events that move the rollout itself (`rollout.<state>`, operator actions), in order. */
function rolloutMoves(events: readonly EventView[]): string[] {
  return events.map((e) => e.kind).filter((k) => /^rollout\.[a-z-]+$/.test(k) && k !== 'rollout.updated');
}

function kindsFor(events: readonly EventView[], hostId: string): string[] {
  return events.filter((e) => e.hostId === hostId && e.kind.startsWith('rollout.host.')).map((e) => e.kind);
}

const isOver = (r: RolloutRecord): boolean => isIn(RESTING_ROLLOUT_STATES, r.state);

describe('rollout engine in-process', () => {
  let h: EngineHarness;
  let a: ScriptedAgent;
  let b: ScriptedAgent;
  let c: ScriptedAgent;

  beforeEach(async () => {
    h = await EngineHarness.start(SUNDAY_1AM);
    [a, b, c] = (await h.addAgents(['a', 'b', 'c'])) as [ScriptedAgent, ScriptedAgent, ScriptedAgent];
    await h.apply(fleet(a.hostId, b.hostId, c.hostId), RECIPE);
  });

  afterEach(async () => {
    const done = h as EngineHarness | undefined;
    h = undefined as unknown as EngineHarness;
    await done?.stop();
    for (const agent of done?.agents ?? []) expect(agent.protocolErrors).toEqual([]);
  });

  it('a three-host rollout with a canary stages at the staging time, upgrades in the window, finalizes once and succeeds', async () => {
    a.behave('finalize', 'hold');
    const id = await h.startRollout('app-prod');
    // While finalize runs, the engine looks at the rollout again and again: it must not send it twice.
    await h.waitRollout(id, 'finalize running', () => a.holding('finalize'));
    await h.waitLooks(5);
    expect(a.received.filter((p) => p.phase === 'finalize')).toHaveLength(1);
    a.release('finalize');
    const done = await h.waitRollout(id, 'rollout over', isOver);

    expect(done.state).toBe('succeeded');
    expect(done.stageAt).toBe(STAGING_AT);
    expect(done.stagedAt).toBeGreaterThanOrEqual(STAGING_AT);
    expect(done.stagedAt).toBeLessThan(WINDOW_OPENS);
    expect(done.windowOpenedAt).toBeGreaterThanOrEqual(WINDOW_OPENS);
    expect(done.windowOpenedAt).toBeLessThan(WINDOW_OPENS + 60_000);
    expect(done.finalizeState).toBe('succeeded');
    expect(done.finalizeHost).toBe(a.hostId);

    const events = await h.events(id);
    expect(rolloutMoves(events)).toEqual([
      'rollout.created',
      'rollout.staging',
      'rollout.staged',
      'rollout.upgrading',
      'rollout.finalizing',
      'rollout.verifying',
      'rollout.succeeded',
    ]);
    expect(events.filter((e) => e.kind === 'rollout.finalize.sent')).toHaveLength(1);
    // Canary first, then one host at a time: each upgrade starts after the previous host is upgraded.
    const upgradeStarts = events.filter((e) => e.kind === 'rollout.host.upgrading').map((e) => e.hostId);
    expect(upgradeStarts).toEqual([a.hostId, b.hostId, c.hostId]);
    const at = (kind: string, agent: ScriptedAgent): number =>
      events.findIndex((e) => e.kind === kind && e.hostId === agent.hostId);
    for (const [prev, next] of [
      [a, b],
      [b, c],
    ] as const)
      expect(at('rollout.host.upgrading', next)).toBeGreaterThan(at('rollout.host.verifying.ok', prev));

    const runs = await h.phaseRuns(id);
    const finalize = runs.filter((r) => r.phase === 'finalize');
    expect(finalize).toEqual([expect.objectContaining({ host_id: a.hostId, state: 'succeeded' })]);
    expect(a.received.filter((p) => p.phase === 'finalize')).toHaveLength(1);
    for (const agent of [a, b, c]) {
      expect(agent.received.map((p) => p.phase)).toEqual(
        agent === a
          ? ['check', 'download', 'upgrade', 'verify', 'finalize', 'verify']
          : ['check', 'download', 'upgrade', 'verify', 'verify'],
      );
      expect((await h.host(id, agent.hostId)).state).toBe('verified');
    }
    expect(runs.every((r) => r.state === 'succeeded')).toBe(true);
  });

  it('a host whose upgrade fails is rolled back and halts the rollout; a resume tolerates it without editing the spec', async () => {
    b.behave('upgrade', 'fail');
    const id = await h.startRollout('app-prod');
    const halted = await h.waitRollout(id, 'rollout halted', isOver);

    expect(halted.state).toBe('halted');
    expect(halted.reason).toContain(b.hostId);
    expect((await h.host(id, b.hostId)).state).toBe('rolled-back');
    expect((await h.host(id, c.hostId)).state).toBe('staged');
    expect(kindsFor(await h.events(id), b.hostId)).toEqual([
      'rollout.host.staging',
      'rollout.host.staging.ok',
      'rollout.host.upgrading',
      'rollout.host.upgrading.failed',
      'rollout.host.rolling-back.ok',
    ]);
    expect(c.received.map((p) => p.phase)).toEqual(['check', 'download']);
    const specBefore = await h.specJson(id);

    const resumed = await h.engine.act(id, 'resume', 'alice');
    expect(resumed.toleratedFailures).toBe(1);
    const after = await h.waitRollout(
      id,
      'rollout over after resume',
      (r) => isOver(r) && r.state !== 'halted',
    );

    // Tolerated, not forgotten: finalize needs every host, so the rollout is held for an operator.
    expect(after.state).toBe('held');
    expect(after.reason).toContain(b.hostId);
    expect(after.toleratedFailures).toBe(1);
    expect((await h.host(id, c.hostId)).state).toBe('upgraded');
    expect(await h.specJson(id)).toBe(specBefore);
    const resume = (await h.events(id)).find((e) => e.kind === 'rollout.resume');
    expect(resume?.actor).toBe('alice');
  });

  it('a host whose rollback is refused past the point of no return is held, naming its backup and procedure; resolve, then resume, carries on', async () => {
    const point = {
      stepId: 'swap',
      backupId: 'bk-b-1',
      manualRecovery: 'restore bk-b-1 by hand, then start the old version',
    };
    b.behave('verify', 'fail');
    b.refuseRollbackPast(point);
    const id = await h.startRollout('app-prod');
    const halted = await h.waitRollout(id, 'rollout halted', isOver);

    // Halted for the held host, not for the error threshold: the operator has a procedure to run.
    expect(halted.state).toBe('halted');
    expect(halted.reason).toMatch(
      new RegExp(`^${b.hostId} held past the point of no return .* then resolve and resume`),
    );
    const held = await h.host(id, b.hostId);
    expect(held.state).toBe('held');
    expect(held.reason).toBe(
      'past the point of no return at step swap; backup bk-b-1; manual procedure: restore bk-b-1 by hand, then start the old version',
    );
    expect((await h.host(id, c.hostId)).state).toBe('staged');
    const events = await h.events(id);
    expect(kindsFor(events, b.hostId)).toEqual([
      'rollout.host.staging',
      'rollout.host.staging.ok',
      'rollout.host.upgrading',
      'rollout.host.upgrading.ok',
      'rollout.host.verifying.failed',
      'rollout.host.rolling-back.held',
    ]);
    expect(events.find((e) => e.kind === 'rollout.host.rolling-back.held')?.data).toMatchObject({
      pointOfNoReturn: point,
    });
    // The refused rollback is recorded as a failed phase run; it is never re-sent.
    expect(b.received.map((p) => p.phase)).toEqual(['check', 'download', 'upgrade', 'verify', 'rollback']);

    await expect(h.engine.act(id, 'resume', 'alice')).rejects.toThrow(/held: resolve first/);
    await h.engine.act(id, 'resolve', 'alice');
    const resolved = await h.host(id, b.hostId);
    expect(resolved.state).toBe('rolled-back');
    expect(resolved.reason).toMatch(/^resolved by alice after the manual procedure; was: past the point/);
    await h.engine.act(id, 'resume', 'alice');
    const after = await h.waitRollout(
      id,
      'rollout over after resume',
      (r) => isOver(r) && r.state !== 'halted',
    );
    // The resolved host counts as failed: finalize needs every host, so the rollout is held.
    expect(after.state).toBe('held');
    expect((await h.host(id, c.hostId)).state).toBe('upgraded');
    expect((await h.events(id)).find((e) => e.kind === 'rollout.resolve')?.actor).toBe('alice');
  });

  it('a finalize that fails past its point of no return holds the rollout saying so; a rollback then holds the finalize host', async () => {
    a.behave('finalize', 'fail');
    a.refuseRollbackPast({
      stepId: 'migrate',
      backupId: null,
      manualRecovery: 'restore the backup shown by hand',
    });
    const id = await h.startRollout('app-prod');
    const held = await h.waitRollout(id, 'rollout held', isOver);
    expect(held.state).toBe('held');
    expect(held.finalizeState).toBe('failed');
    expect(held.reason).toMatch(
      /^finalize failed past the point of no return \(step migrate\): migrate: .*; retry, or rollback/,
    );

    await h.engine.act(id, 'rollback', 'alice');
    const halted = await h.waitRollout(id, 'rollout halted', (r) => isOver(r) && r.state !== 'held');
    expect(halted.state).toBe('halted');
    expect(halted.reason).toMatch(new RegExp(`^${a.hostId} held past .* then resolve and rollback`));
    expect((await h.host(id, a.hostId)).state).toBe('held');
    for (const other of [b, c]) expect((await h.host(id, other.hostId)).state).toBe('rolled-back');
    await h.engine.act(id, 'resolve', 'alice');
    await h.engine.act(id, 'rollback', 'alice');
    const done = await h.waitRollout(id, 'rollout rolled back', (r) => isOver(r) && r.state !== 'halted');
    expect(done.state).toBe('rolled-back');
  });

  it('a pause stops new hosts from starting while the one in flight finishes; resume carries on', async () => {
    a.behave('upgrade', 'hold');
    const id = await h.startRollout('app-prod');
    await h.waitRollout(id, 'the canary upgrading', () => a.holding('upgrade'));

    await h.engine.act(id, 'pause', 'alice');
    a.release('upgrade');
    await h.waitRollout(id, 'the canary upgraded', (_r, hosts) =>
      hosts.some((x) => x.hostId === a.hostId && x.state === 'upgraded'),
    );
    // Several looks at the paused rollout after the canary ended: none starts the next batch.
    await h.waitLooks(5);
    expect((await h.host(id, b.hostId)).state).toBe('staged');
    expect(b.received.map((p) => p.phase)).toEqual(['check', 'download']);
    expect((await h.rollout(id)).paused).toBe(true);

    await h.engine.act(id, 'resume', 'alice');
    const done = await h.waitRollout(id, 'rollout over', isOver);
    expect(done.state).toBe('succeeded');
    const kinds = (await h.events(id)).map((e) => e.kind);
    const bStarts = (await h.events(id)).findIndex(
      (e) => e.kind === 'rollout.host.upgrading' && e.hostId === b.hostId,
    );
    expect(kinds.indexOf('rollout.pause')).toBeLessThan(kinds.indexOf('rollout.resume'));
    expect(bStarts).toBeGreaterThan(kinds.indexOf('rollout.resume'));
  });

  it('a controller that dies mid-upgrade is replaced by a new engine that takes the result from the agent journal, never sending the upgrade twice', async () => {
    a.behave('upgrade', 'hold');
    const id = await h.startRollout('app-prod');
    await h.waitRollout(id, 'the canary upgrading', () => a.holding('upgrade'));

    await h.crash();
    // The upgrade ends on the host while no controller listens: only the agent's journal knows.
    // A second send would be answered (ok): the case then fails on the count, not on a timeout.
    a.behave('upgrade', 'ok');
    a.release('upgrade');
    await h.restart();
    const done = await h.waitRollout(id, 'rollout over', isOver, 20_000);

    expect(done.state).toBe('succeeded');
    expect(a.received.filter((p) => p.phase === 'upgrade')).toEqual([{ runId: `${id}-u`, phase: 'upgrade' }]);
    const upgrades = (await h.phaseRuns(id)).filter((r) => r.host_id === a.hostId && r.phase === 'upgrade');
    expect(upgrades).toEqual([expect.objectContaining({ state: 'succeeded' })]);
    expect(upgrades[0]?.resumed_json).toContain('reconciled');
    const aKinds = kindsFor(await h.events(id), a.hostId);
    expect(aKinds.filter((k) => k === 'rollout.host.upgrading.ok')).toHaveLength(1);
    expect(aKinds).not.toContain('rollout.host.resent');
  });
});
