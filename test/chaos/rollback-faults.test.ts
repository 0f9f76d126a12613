/**
 * Rollback faults (security.md "failed health after upgrade" and "rollback fails") on the real
 * BlueMind fleet: a release whose health page answers 500 or hangs is rolled back (the recipe
 * restores the configuration it backed up, which brings the healthy page back) and the rollout
 * halts per its error threshold; a rollback whose restore refuses a damaged backup leaves the host
 * `rollback-failed`, the rollout waiting for an operator (`rollout watch` exits 3), and the
 * controller and agents idle: no CPU spent and no row written while nobody acts.
 *
 * BlueMind's rollback reinstalls the packages kept when they were staged, then restores the
 * configuration (recipes/bluemind.yaml): "old-healthy" here means the old packages and the
 * configuration from before the upgrade, healthy.
 */
import { readFileSync } from 'node:fs';
import { ChaosFleet, sleep } from './controller-sweep/chaos-fleet';
import { runScenario } from './controller-sweep/drive';
import type { Fault } from './controller-sweep/faults';
import { activity, growth } from './controller-sweep/idle';
import { expectScenarioEnd } from './controller-sweep/invariants';
import { STRICT, type Scenario } from './controller-sweep/scenarios';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const QUIET_WINDOW_MS = 5000;
/** Generous: an idle process spends a few ms per second on heartbeats and its timers. */
const IDLE_CPU_MS = 500;

let chaos: ChaosFleet;

beforeAll(async () => {
  chaos = await ChaosFleet.create();
}, 120_000);

afterAll(async () => {
  await chaos?.stop();
});

function canaryFails(faults: readonly Fault[], overrides: Partial<Scenario>): Scenario {
  return {
    name: `canary ${faults.join(' + ')}`,
    batches: STRICT,
    faults: new Map([[0, faults]]),
    operator: {},
    final: 'halted',
    hosts: ['rolled-back', 'staged', 'staged'],
    setup: false,
    ...overrides,
  };
}

/** Frees the deployment for the next case. */
async function abort(id: string): Promise<void> {
  await chaos.fleet.cliOk('rollout', 'abort', id);
  await waitFor(
    'the rollout to be aborted',
    async () => (await chaos.storedState(id)) === 'aborted',
    30_000,
    100,
  );
}

async function hostReason(id: string, hostId: string): Promise<string> {
  const [row] = await chaos.query<{ reason: string }>(
    'SELECT reason FROM rollout_hosts WHERE rollout_id = ? AND host_id = ?',
    [id, hostId],
  );
  return row?.reason ?? '';
}

describe('health failing after the upgrade', () => {
  it.each([
    ['health-500', /status 500/],
    ['health-hang', /was not healthy after/],
  ] as const)(
    '%s on the canary: rolled back to the healthy config, the rollout halts at threshold 0',
    async (fault, why) => {
      const s = canaryFails([fault], {});
      const run = await runScenario(chaos, s);
      await expectScenarioEnd(chaos, s, run);
      expect(readFileSync(chaos.paths(chaos.canary).healthFile, 'utf8')).toBe('ok\n');
      expect(await hostReason(run.id, chaos.canary.hostId)).toMatch(why);
      expect((await chaos.fleet.cliJson<{ reason: string }>('rollout', 'status', run.id)).reason).toContain(
        'exceed the error threshold of 0',
      );
      expect((await chaos.fleet.cli('rollout', 'watch', run.id)).code).toBe(3);
      await abort(run.id);
    },
  );

  it('tolerated by a threshold of 1: the other hosts upgrade, the rollout is held, rollback undoes them', async () => {
    const s = canaryFails(['health-500'], {
      batches: '{ canary: 1, concurrency: 2, errorThreshold: 1 }',
      operator: { held: 'rollback' },
      final: 'rolled-back',
      hosts: ['rolled-back', 'rolled-back', 'rolled-back'],
    });
    const run = await runScenario(chaos, s);
    await expectScenarioEnd(chaos, s, run);
    const held = await chaos.query<{ data_json: string }>(
      "SELECT data_json FROM events WHERE kind = 'rollout.held' AND data_json LIKE ?",
      [`%${run.id}%`],
    );
    expect(held).toHaveLength(1);
  });
});

describe('the rollback itself failing', () => {
  it('restore refuses the damaged backup: rollback-failed, needs an operator, and nothing spins', async () => {
    const s = canaryFails(['health-500', 'corrupt-backup'], {
      hosts: ['rollback-failed', 'staged', 'staged'],
      leftBroken: [0],
    });
    const run = await runScenario(chaos, s);
    await expectScenarioEnd(chaos, s, run);
    expect(await hostReason(run.id, chaos.canary.hostId)).toContain('BACKUP_CORRUPT');

    // Settled: one rollback phase was sent, once; then a quiet window with nobody acting.
    await sleep(1000);
    const from = await activity(chaos);
    await sleep(QUIET_WINDOW_MS);
    const gained = growth(from, await activity(chaos));
    process.stdout.write(`idle ${QUIET_WINDOW_MS} ms after rollback-failed: ${JSON.stringify(gained)}\n`);
    for (const [name, ms] of Object.entries(gained.cpu))
      expect({ name, ms, under: ms < IDLE_CPU_MS }).toMatchObject({ under: true });
    expect(gained.rows).toEqual({ events: 0, phase_runs: 0, step_results: 0 });
    expect(
      await chaos.query(
        "SELECT state FROM phase_runs WHERE run_id = ? AND host_id = ? AND phase = 'rollback'",
        [`${run.id}-u`, chaos.canary.hostId],
      ),
    ).toEqual([{ state: 'failed' }]);

    const watched = await chaos.fleet.cli('rollout', 'watch', run.id);
    expect({ code: watched.code, out: watched.stdout }).toMatchObject({ code: 3 });
    expect(watched.stdout).toContain('rollback-failed');
    await abort(run.id);
    // Aborted, yet the canary is still broken: watch keeps saying an operator is needed.
    const afterAbort = await chaos.fleet.cli('rollout', 'watch', run.id);
    expect({ code: afterAbort.code, state: afterAbort.stdout }).toMatchObject({ code: 3 });
    expect(afterAbort.stdout).toMatch(/aborted[\s\S]*rollback-failed/);
  });
});
