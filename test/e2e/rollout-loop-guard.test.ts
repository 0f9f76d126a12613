/**
 * The loop guard with a real controller and a real agent (loopback): CONVOY_AGENT_FAILPOINT kills
 * the agent with SIGKILL each time its upgrade reaches the step `enter`, and the test starts it
 * again each time, as a supervisor would. The agent's resume table redoes the step (maintenance is
 * `redo`), so without a bound the controller would send the upgrade forever: it re-sends it
 * MAX_PHASE_RESENDS times, then fails the host with PHASE_LOOP and rolls it back.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MAX_PHASE_RESENDS } from '../../controller/rollout/loop-guard';
import type { RolloutView } from '../../controller/rollout/view';
import { fleetFile } from '../helpers/app-fleets';
import { TestFleet } from '../helpers/fleet';
import { AGENT_BIN, Daemon, tempDir } from '../helpers/processes';
import { isResting } from '../helpers/rollout-probe';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

describe('a step that crashes the agent every time', () => {
  const fleet = new TestFleet({ heartbeatInterval: '300ms', heartbeatTimeout: '3s' });
  const dir = tempDir('loop-guard');
  const flag = path.join(dir, 'maintenance.flag');
  const recipeFile = path.join(dir, 'crashy.yaml');
  const lives: Daemon[] = [];
  let supervising = true;

  /** Starts the agent with the failpoint, and again whenever it dies, until the test ends. */
  function supervise(): void {
    const agent = new Daemon(AGENT_BIN, ['run', '--state-dir', fleet.agentDir('a')], {
      CONVOY_AGENT_FAILPOINT: 'before:enter',
    });
    lives.push(agent);
    agent.child.on('exit', () => {
      if (supervising) setTimeout(supervise, 200);
    });
  }

  beforeAll(async () => {
    writeFileSync(
      recipeFile,
      `
name: crashy
description: An upgrade whose first step kills the agent every time (the failpoint)
versions:
  installed: { argv: [echo, '1.0.0'], pattern: '([0-9]+\\.[0-9]+\\.[0-9]+)' }
  available: { argv: [echo, '1.0.1'], pattern: '([0-9]+\\.[0-9]+\\.[0-9]+)' }
policy: { majorNeedsApproval: true }
phases:
  check: [{ id: look, type: exec, argv: ['true'], source: test }]
  download: [{ id: fetch, type: exec, argv: ['true'], source: test }]
  upgrade:
    - { id: enter, type: maintenance, action: 'on', flagFile: '${flag}', source: test }
    - { id: swap, type: exec, argv: ['true'], source: test }
  verify: [{ id: health, type: exec, argv: ['true'], source: test }]
  rollback: [{ id: leave, type: maintenance, action: 'off', flagFile: '${flag}', source: test }]
`,
    );
    await fleet.startController();
    const hostId = fleet.enrollOk('a', fleet.createToken(), '--hostname', 'crashy-host');
    supervise();
    await fleet.waitOnline(1);
    const file = path.join(dir, 'fleet.yaml');
    writeFileSync(file, fleetFile({ name: 'crashy', recipe: recipeFile, hosts: [{ id: hostId, vars: {} }] }));
    expect(fleet.cli('apply', file).code).toBe(0);
  });

  afterAll(async () => {
    supervising = false;
    for (const agent of lives) await agent.stop();
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is re-sent a bounded number of times, then the host fails with PHASE_LOOP and is rolled back', async () => {
    const started = fleet.cliJson<RolloutView>('rollout', 'start', 'crashy', '--stage-now');
    const done = await waitFor(
      `rollout ${started.id} to stop`,
      () => {
        const doc = fleet.cliJson<RolloutView>('rollout', 'status', started.id);
        return isResting(doc) ? doc : undefined;
      },
      100_000,
      250,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${fleet.dump()}\n${lives.map((l) => l.stderr).join('\n---\n')}`);
    });

    expect(done.state).toBe('halted');
    const [host] = done.hosts;
    expect(host?.state).toBe('rolled-back');
    expect(host?.reason).toMatch(/^PHASE_LOOP: upgrade was interrupted or re-sent 3 times/);
    // The first send and every re-send died at the failpoint: one agent life each, then the one
    // that ran the rollback.
    const killed = lives.filter((l) => l.stderr.includes('failpoint before:enter: killing the agent'));
    expect(killed).toHaveLength(1 + MAX_PHASE_RESENDS);
    const events = fleet.cliJson<{ kind: string }[]>('events', '--rollout', started.id);
    expect(events.filter((e) => e.kind === 'rollout.host.resent')).toHaveLength(MAX_PHASE_RESENDS);
  });
});
