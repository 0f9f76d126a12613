/**
 * The rails around a rollout, in-process (test/helpers/engine-harness.ts: the real engine, store
 * and gateway, scripted agents): versions read back from the host rather than copied from the
 * plan, the loop guard, PHASE_BUSY waited out, two deployments on one host, `phase run` under the
 * rollout policy, and cautions acknowledged at `rollout start`. The CLI cases run `convoy` in this
 * process against the harness's operator socket.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { main } from '../../controller/cli/main';
import { MAX_PHASE_RESENDS } from '../../controller/rollout/loop-guard';
import { isIn, RESTING_ROLLOUT_STATES, type RolloutRecord } from '../../controller/rollout/model';
import { listRollouts } from '../../controller/rollout/rollout-store';
import { runInProcess, type CliRun } from '../helpers/cli-in-process';
import { EngineHarness, type EngineOptions } from '../helpers/engine-harness';
import type { ScriptedAgent } from '../helpers/scripted-agent';

jest.setTimeout(40_000);

const SUNDAY_1AM = Date.UTC(2030, 0, 6, 1, 0);

const CAUTION = 'Before 1.0.1, back up the virtual inbox folders: the upgrade deletes them';

function recipe(cautions = false): string {
  return `
name: engine-spec
description: Every step an exec of true; the scripted agents decide how each phase ends
versions:
  installed: { argv: ['true'], pattern: '([0-9]+\\.[0-9]+\\.[0-9]+)' }
policy: { majorNeedsApproval: true }
${cautions ? `cautions:\n  - { from: '<1.0.1', to: '>=1.0.1', message: '${CAUTION}' }` : ''}
phases:
  check: [{ id: current, type: exec, argv: ['true'], source: test }]
  download: [{ id: fetch, type: exec, argv: ['true'], source: test }]
  upgrade: [{ id: swap, type: exec, argv: ['true'], source: test }]
  verify: [{ id: health, type: exec, argv: ['true'], source: test }]
  rollback: [{ id: restore, type: exec, argv: ['true'], source: test }]
`;
}

function deployment(name: string, hostIds: readonly string[]): string {
  return `
  - name: ${name}
    recipe: ./engine-spec.yaml
    target: latest
    hosts:
${hostIds.map((id) => `      - { id: ${id}, role: web }`).join('\n')}
    window: sunday-night
    staging: { cron: '0 2 * * 0', timezone: UTC }
    batches: { canary: 1, concurrency: 1, errorThreshold: 0 }`;
}

function fleet(...deployments: string[]): string {
  return `
windows:
  sunday-night: { cron: '0 3 * * 0', duration: 2h, timezone: UTC }
deployments:${deployments.join('')}
`;
}

const isOver = (r: RolloutRecord): boolean => isIn(RESTING_ROLLOUT_STATES, r.state);

describe('rollout rails', () => {
  let h: EngineHarness;

  async function open(names: readonly string[], options: EngineOptions = {}): Promise<ScriptedAgent[]> {
    h = await EngineHarness.start(SUNDAY_1AM, options);
    return h.addAgents(names);
  }

  function cli(...argv: string[]): Promise<CliRun> {
    return runInProcess(main, [...argv, '--state-dir', h.stateDir]);
  }

  afterEach(async () => {
    const done = h as EngineHarness | undefined;
    h = undefined as unknown as EngineHarness;
    await done?.stop();
    for (const agent of done?.agents ?? []) expect(agent.protocolErrors).toEqual([]);
  });

  describe('versions read back', () => {
    it('an agent that reads back another installed version than the target fails its verify, is rolled back, and records the version the rollback read back', async () => {
      const [a] = (await open(['a'])) as [ScriptedAgent];
      await h.apply(fleet(deployment('app-prod', [a.hostId])), recipe());
      a.reportInstalled('verify', '2.0.0');
      const id = await h.startRollout('app-prod');
      const over = await h.waitRollout(id, 'rollout over', isOver);

      expect(over.state).toBe('halted');
      const host = await h.host(id, a.hostId);
      expect(host.state).toBe('rolled-back');
      expect(host.reason).toBe('VERSION_MISMATCH: installed 2.0.0, planned 1.0.1');
      // Staged: what the download reported; installed: what the rollback read back, not the plan.
      expect(host.staged).toBe('1.0.1');
      expect(host.installed).toBe('1.0.0');
      const events = await h.events(id);
      const verify = events.find((e) => e.kind === 'rollout.host.verifying.failed');
      expect(verify?.data).toMatchObject({ reason: 'VERSION_MISMATCH: installed 2.0.0, planned 1.0.1' });
      const rolledBack = events.find((e) => e.kind === 'rollout.host.rolling-back.ok');
      expect(rolledBack?.data).toMatchObject({ installed: '1.0.0' });
      expect(events.find((e) => e.kind === 'rollout.host.staging.ok')?.data).toMatchObject({
        staged: '1.0.1',
      });
    });
  });

  describe('versions read back after a controller restart', () => {
    it('a download settled from the journal records staged unknown, never the planned target', async () => {
      const [a] = (await open(['a'])) as [ScriptedAgent];
      await h.apply(fleet(deployment('app-prod', [a.hostId])), recipe());
      a.behave('download', 'hold');
      const id = await h.startRollout('app-prod');
      await h.waitRollout(id, 'staging held', () => a.holding('download'));
      await h.crash();
      // The download ends while no controller listens: its report (and what it staged) is lost.
      a.release('download');
      await h.restart();
      const over = await h.waitRollout(id, 'rollout over', isOver, 20_000);

      expect(over.state).toBe('succeeded');
      const host = await h.host(id, a.hostId);
      expect(host.staged).toBe('');
      // The verify's report came back: installed is read back again.
      expect(host.installed).toBe('1.0.1');
    });
  });

  describe('the loop guard', () => {
    it('a step that crashes the agent every time fails the host with PHASE_LOOP after a bounded number of re-sends', async () => {
      const [a] = (await open(['a'])) as [ScriptedAgent];
      await h.apply(fleet(deployment('app-prod', [a.hostId])), recipe());
      a.behave('upgrade', 'crash');
      const id = await h.startRollout('app-prod');
      const over = await h.waitRollout(id, 'rollout over', isOver, 30_000);

      expect(over.state).toBe('halted');
      const host = await h.host(id, a.hostId);
      expect(host.state).toBe('rolled-back');
      expect(host.reason).toMatch(/^PHASE_LOOP: upgrade was interrupted or re-sent 3 times/);
      expect(a.received.filter((p) => p.phase === 'upgrade')).toHaveLength(1 + MAX_PHASE_RESENDS);
      const resent = (await h.events(id)).filter((e) => e.kind === 'rollout.host.resent');
      expect(resent.map((e) => (e.data as Record<string, unknown>)['resends'])).toEqual([1, 2, 3]);
      // After a while, nothing more is sent: the host rests.
      await h.waitLooks(5);
      expect(a.received.filter((p) => p.phase === 'upgrade')).toHaveLength(1 + MAX_PHASE_RESENDS);
    });
  });

  describe('PHASE_BUSY', () => {
    const backoff: EngineOptions = {
      busyBackoff: { baseMs: 400, capMs: 2000, maxWaits: 3 },
      random: () => 0,
    };

    it('is waited out with a growing backoff before the phase is sent again, and the rollout carries on', async () => {
      const [a] = (await open(['a'], backoff)) as [ScriptedAgent];
      await h.apply(fleet(deployment('app-prod', [a.hostId])), recipe());
      a.script('download', ['busy', 'busy']);
      const id = await h.startRollout('app-prod');
      const over = await h.waitRollout(id, 'rollout over', isOver);

      expect(over.state).toBe('succeeded');
      const sends = a.received.flatMap((p, i) => (p.phase === 'download' ? [a.receivedAt[i] ?? 0] : []));
      expect(sends).toHaveLength(3);
      // random() = 0: half of 400 ms, then half of 800 ms.
      expect((sends[1] ?? 0) - (sends[0] ?? 0)).toBeGreaterThanOrEqual(195);
      expect((sends[2] ?? 0) - (sends[1] ?? 0)).toBeGreaterThanOrEqual(395);
      const busy = (await h.events(id)).filter((e) => e.kind === 'rollout.host.busy');
      expect(busy.map((e) => (e.data as Record<string, unknown>)['waitMs'])).toEqual([200, 400]);
      expect((await h.host(id, a.hostId)).state).toBe('verified');
    });

    it('an agent that stays busy fails the host with PHASE_BUSY after the last wait', async () => {
      const [a] = (await open(['a'], backoff)) as [ScriptedAgent];
      await h.apply(fleet(deployment('app-prod', [a.hostId])), recipe());
      a.behave('download', 'busy');
      const id = await h.startRollout('app-prod');
      const over = await h.waitRollout(id, 'rollout over', isOver);

      expect(over.state).toBe('halted');
      const host = await h.host(id, a.hostId);
      expect(host.state).toBe('stage-failed');
      expect(host.reason).toBe('PHASE_BUSY: the agent was still running another phase after 3 waits');
      expect(a.received.filter((p) => p.phase === 'download')).toHaveLength(4);
    });
  });

  describe('two deployments on one host', () => {
    it('each keeps its own application row, and convoy status shows both', async () => {
      const [a] = (await open(['a'])) as [ScriptedAgent];
      await h.apply(fleet(deployment('app-one', [a.hostId]), deployment('app-two', [a.hostId])), recipe());
      const one = await h.startRollout('app-one');
      expect((await h.waitRollout(one, 'app-one over', isOver)).state).toBe('succeeded');
      a.reportInstalled('verify', '9.9.9');
      const two = await h.startRollout('app-two');
      expect((await h.waitRollout(two, 'app-two over', isOver)).state).toBe('halted');

      await h.serveOperator();
      const json = await cli('status', '--json');
      expect(json.code).toBe(0);
      const [host] = (JSON.parse(json.stdout) as { hosts: { id: string; apps: Record<string, unknown>[] }[] })
        .hosts;
      expect(host?.id).toBe(a.hostId);
      expect(host?.apps).toEqual([
        expect.objectContaining({
          deployment: 'app-one',
          installed: '1.0.1',
          staged: '1.0.1',
          maintenance: false,
          lastHealth: 'ok',
        }),
        expect.objectContaining({
          deployment: 'app-two',
          installed: '1.0.0',
          staged: '1.0.1',
          maintenance: false,
          lastHealth: 'failed: VERSION_MISMATCH: installed 9.9.9, planned 1.0.1',
        }),
      ]);
      const table = await cli('status');
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/engine-spec \(app-one\)\s+1\.0\.1\s+1\.0\.1/);
      expect(table.stdout).toMatch(/engine-spec \(app-two\)\s+1\.0\.0\s+1\.0\.1/);
    });
  });

  describe('phase run under the rollout policy', () => {
    it('a phase run that tries to go around a rollout is refused naming it; --override --reason goes through and is audited', async () => {
      const [a, b] = (await open(['a', 'b'])) as [ScriptedAgent, ScriptedAgent];
      await h.apply(fleet(deployment('app-prod', [a.hostId, b.hostId])), recipe());
      await h.serveOperator();
      const file = path.join(h.root, 'engine-spec.yaml');
      writeFileSync(file, recipe());
      a.behave('upgrade', 'hold');
      const id = await h.startRollout('app-prod');
      await h.waitRollout(id, 'the canary upgrading', () => a.holding('upgrade'));
      const run = (...more: string[]): Promise<CliRun> =>
        cli('phase', 'run', '--host', b.hostId, '--recipe', file, ...more);
      const downloadsBefore = b.received.filter((p) => p.phase === 'download').length;

      const refused = await run('--phase', 'upgrade', '--target', '1.0.1', '--installed', '1.0.0');
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('ROLLOUT_LOCKED');
      expect(refused.stderr).toContain(`rollout ${id} of deployment app-prod`);
      const noReason = await run(
        '--phase',
        'download',
        '--target',
        '1.0.1',
        '--installed',
        '1.0.0',
        '--override',
      );
      expect(noReason.stderr).toContain('OVERRIDE_REASON_REQUIRED');
      expect(b.received.map((p) => p.phase)).not.toContain('upgrade');

      // check changes nothing: free, even inside the rollout.
      expect((await run('--phase', 'check')).code).toBe(0);

      const overridden = await run(
        ...['--phase', 'download', '--target', '1.0.1', '--installed', '1.0.0'],
        ...['--override', '--reason', 'mirror test before the window'],
      );
      expect(overridden.code).toBe(0);
      expect(b.received.filter((p) => p.phase === 'download')).toHaveLength(downloadsBefore + 1);
      const events = await h.store.db.all<{
        actor: string;
        kind: string;
        host_id: string;
        data_json: string;
      }>("SELECT actor, kind, host_id, data_json FROM events WHERE kind = 'phase.override'");
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ actor: 'operator', host_id: b.hostId });
      expect(JSON.parse(events[0]?.data_json ?? '{}')).toMatchObject({
        phase: 'download',
        reason: 'mirror test before the window',
        wentAround: [expect.stringContaining(`rollout ${id}`)],
      });

      a.release('upgrade');
      expect((await h.waitRollout(id, 'rollout over', isOver)).state).toBe('succeeded');
      // The rollout is over: the lock is gone, and the policy still holds a major jump for approval.
      const major = await run('--phase', 'upgrade', '--target', '2.0.0', '--installed', '1.0.1');
      expect(major.stderr).toContain('APPROVAL_REQUIRED');
      expect((await run('--phase', 'upgrade', '--target', '1.0.2', '--installed', '1.0.1')).code).toBe(0);
    });
  });

  describe('cautions at rollout start', () => {
    it('are printed and refuse the start until acknowledged; the acknowledgement is audited with the caution', async () => {
      const [a] = (await open(['a'])) as [ScriptedAgent];
      await h.apply(fleet(deployment('app-prod', [a.hostId])), recipe(true));
      await h.serveOperator();

      const refused = await cli('rollout', 'start', 'app-prod');
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('CAUTION_UNACKNOWLEDGED');
      expect(refused.stderr).toContain(CAUTION);
      expect(refused.stderr).toContain('--acknowledge-cautions');
      expect(await listRollouts(h.store.db)).toEqual([]);

      const started = await cli('rollout', 'start', 'app-prod', '--acknowledge-cautions');
      expect(started.code).toBe(0);
      expect(started.stderr).toContain(`CAUTION (acknowledged): ${CAUTION}`);
      const id = started.stdout.trim();
      const ack = (await h.events(id)).filter((e) => e.kind === 'rollout.cautions.acknowledged');
      expect(ack).toHaveLength(1);
      expect(ack[0]?.actor).toBe('operator');
      expect(ack[0]?.data).toMatchObject({ cautions: [CAUTION], target: '1.0.1' });
    });
  });
});
