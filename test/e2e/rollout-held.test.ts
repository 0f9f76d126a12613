/**
 * Past the point of no return, end to end: the built-in cells recipe rolled out by a controller
 * process to a real agent process on a fake Cells host (fake-apps.ts: the new binary migrates the
 * data on its first start, and the old one refuses migrated data). The verify fails after the
 * new binary started (the agent's failpoint fails check-new-version after it ran), so the data is
 * migrated: the agent refuses the rollback (PAST_POINT_OF_NO_RETURN), and the rollout must hold the
 * host for an operator, naming the backup that backup-data took and the recipe's manual procedure,
 * rather than count a normal failure. `convoy rollout resolve` then records the manual recovery.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { cellsHost } from '../chaos/agent-sweep/app-hosts';
import type { SweepHost } from '../chaos/agent-sweep/sweep-host';
import { AppFleet, fleetFile, type AppHost } from '../helpers/app-fleets';
import type { EventDoc } from '../helpers/rollout-probe';

jest.setTimeout(90_000);

describe('cells past its point of no return: the rollout holds the host', () => {
  let fleet: AppFleet;
  let cells: SweepHost;
  let host: AppHost;
  let id: string;
  let doc: RolloutView;
  let events: EventDoc[];

  beforeAll(async () => {
    fleet = await AppFleet.start();
    cells = await cellsHost();
    const { target: _target, installed: _installed, ...vars } = cells.agent.vars;
    [host] = (await fleet.addHosts([
      {
        name: 'cells-1',
        env: { CONVOY_AGENT_FAILPOINT: 'fail:check-new-version' },
        releaseKeys: cells.agent.releaseKeys ?? [],
      },
    ])) as [AppHost];
    const yaml = fleetFile({
      name: 'cells-prod',
      recipe: 'cells',
      target: cells.to,
      hosts: [{ id: host.id, vars }],
    });
    id = await fleet.startRollout(yaml, 'cells-prod');
    doc = await fleet.waitRollout(id, 'halted', 60_000);
    events = await fleet.events(id);
  });

  afterAll(async () => {
    await fleet?.stop();
    await cells?.cleanup();
  });

  it('halts for the held host, not for the error threshold', () => {
    expect(doc.reason).toMatch(new RegExp(`^${host.id} held past the point of no return`));
    expect(doc.progress['held']).toBe(1);
  });

  it("shows the host held at start-cells, with backup-data's backup id and the recipe's procedure", async () => {
    const h = doc.hosts[0];
    const backups = await fleet.steps(id, host.id, 'upgrade');
    const backupStep = backups.find((s) => s.stepId === 'backup-data');
    expect(backupStep).toMatchObject({ status: 'ran', ok: 1 });
    expect(h?.state).toBe('held');
    expect(h?.held).toEqual({
      stepId: 'start-cells',
      backupId: expect.stringMatching(/\S/),
      manualRecovery: expect.stringContaining('restore the data backup shown here'),
    });
    // The backup named is the one the upgrade took before the point, where the procedure says.
    const backupId = h?.held?.backupId ?? '';
    expect(existsSync(path.join(cells.agent.vars['backupDir'] ?? '', backupId, 'files.tar'))).toBe(true);
    const text = await fleet.cliOk('rollout', 'status', id);
    expect(text).toContain(
      `${host.id} held past the point of no return at step start-cells; backup ${backupId}`,
    );
    expect(text).toContain('manual procedure: The new Cells binary started and migrated the data');
  });

  it('the refused rollback ran no step and the host is as the point left it: new binary, migrated data', async () => {
    expect(await fleet.steps(id, host.id, 'rollback')).toEqual([]);
    const state = await cells.observe();
    expect(state.version).toBe(cells.to);
    expect(state.problems).toEqual([]);
  });

  it('the audit log carries the step, the backup and the procedure', () => {
    const held = events.find((e) => e.kind === 'rollout.host.rolling-back.held');
    expect(held?.hostId).toBe(host.id);
    expect(held?.data['pointOfNoReturn']).toEqual(doc.hosts[0]?.held);
  });

  it('resume waits for resolve; resolve records the manual recovery and the host counts as rolled back', async () => {
    const resume = await fleet.cli('rollout', 'resume', id);
    expect(resume.code).not.toBe(0);
    expect(resume.stderr).toContain('held: resolve first');
    await fleet.cliOk('rollout', 'resolve', id);
    const after = await fleet.cliJson<RolloutView>('rollout', 'status', id);
    expect(after.hosts[0]).toMatchObject({ state: 'rolled-back', held: null });
    expect(after.hosts[0]?.reason).toMatch(/^resolved by .* after the manual procedure; was: past the point/);
    expect((await fleet.events(id)).some((e) => e.kind === 'rollout.resolve')).toBe(true);
  });
});
