/**
 * Controller kill -9 at every transition (security.md "controller kill -9 at any point"): the
 * controller is started with CONVOY_FAILPOINT naming every transition of a scenario, SIGKILLs
 * itself right after writing the first it reaches, and is restarted armed with the rest, so one
 * rollout per scenario dies once at each of its transitions. It must end exactly as its scenario
 * says, with no host step duplicated or skipped and no host left in maintenance
 * (controller-sweep/invariants.ts).
 * The transitions come from the model's state lists (controller-sweep/transitions.ts), so a new
 * state without a scenario fails the first test. Then random instants in the failure scenarios:
 * CONVOY_TEST_SEED (printed) replays them.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/processes';
import { HOST_STATES, ROLLOUT_STATES } from '../../controller/rollout/model';
import { ChaosFleet } from './controller-sweep/chaos-fleet';
import { runScenario } from './controller-sweep/drive';
import { expectScenarioEnd } from './controller-sweep/invariants';
import { seeded } from '../helpers/seeded-random';
import { SCENARIOS, type ScenarioName } from './controller-sweep/scenarios';
import {
  COVERAGE,
  NOT_YET_SWEPT,
  WITHOUT_FAILPOINT,
  engineFailpoints,
  sweepCases,
} from './controller-sweep/transitions';

jest.setTimeout(150_000);

const ENGINE = path.resolve(__dirname, '../../controller/rollout/engine.ts');

let chaos: ChaosFleet;

beforeAll(async () => {
  chaos = await ChaosFleet.create();
}, 120_000);

afterAll(async () => {
  await chaos?.stop();
});

/** The states engine.ts writes: `state: 'x'` patches and the states host phases start in. */
function statesWrittenByEngine(): Set<string> {
  // An operator's host reset (resume, retry) is written under the rollout's failpoint.
  const source = readFileSync(ENGINE, 'utf8')
    .split('\n')
    .filter((line) => !line.includes('hostResets.push'))
    .join('\n');
  const found = new Set<string>();
  for (const re of [/state: '([a-z-]+)'/g, /then: '([a-z-]+)'/g, /startHostPhase\([^;]*?'([a-z-]+)'\)/g])
    for (const m of source.matchAll(re)) if (m[1] !== undefined) found.add(m[1]);
  return found;
}

describe('controller kill -9 sweep', () => {
  it('has a scenario for every transition the engine writes, and names the states it cannot kill after', () => {
    const names = engineFailpoints();
    expect(names.filter((n) => COVERAGE[n] === undefined && NOT_YET_SWEPT[n] === undefined)).toEqual([]);
    // A gap names a test that exists and a transition that is really not covered here.
    for (const [n, gap] of Object.entries(NOT_YET_SWEPT)) {
      expect({ n, exists: existsSync(path.join(ROOT, gap.test)) }).toEqual({ n, exists: true });
      expect({ n, covered: COVERAGE[n] }).toEqual({ n, covered: undefined });
    }
    expect(Object.keys(COVERAGE).filter((n) => !names.includes(n))).toEqual([]);
    // Every state the engine writes has a failpoint; those without one are never written there.
    const written = statesWrittenByEngine();
    const known = new Set<string>([...ROLLOUT_STATES, ...HOST_STATES]);
    expect([...written].filter((s) => !known.has(s))).toEqual([]);
    expect(
      [...written].filter(
        (s) => COVERAGE[`rollout.${s}`] === undefined && COVERAGE[`host.${s}`] === undefined,
      ),
    ).toEqual([]);
    const withoutFailpoint = Object.keys(WITHOUT_FAILPOINT).map((n) => n.replace(/^(rollout|host)\./, ''));
    expect(withoutFailpoint.filter((s) => written.has(s))).toEqual([]);
  });

  describe.each(sweepCases())('scenario $scenario', ({ scenario, failpoints }) => {
    it(`killed at each of ${failpoints.join(', ')}: each fires once, and the rollout ends as the scenario says, every step once`, async () => {
      const s = SCENARIOS[scenario];
      const run = await runScenario(chaos, s, { failpoints });
      process.stdout.write(`${scenario} (${run.id}): killed at ${run.fired.join(', ')}\n`);
      expect([...run.fired].sort()).toEqual([...failpoints].sort());
      await expectScenarioEnd(chaos, s, run);
    });
  });

  describe('killed -9 at random instants', () => {
    const given = process.env['CONVOY_TEST_SEED'];
    const seed = given === undefined ? Date.now() % 1_000_000 : Number(given);
    const random = seeded(seed);
    const cases: ScenarioName[] = ['canary-unhealthy', 'rollback-fails', 'stage-failure'];

    it.each(cases)('%s ends as if nothing happened', async (scenario) => {
      const s = SCENARIOS[scenario];
      const run = await runScenario(chaos, s, { random: { next: random, count: 4 } });
      process.stdout.write(
        `CONVOY_TEST_SEED=${seed} ${scenario} (${run.id}): killed while ${run.kills.join(', ') || '-'}\n`,
      );
      await expectScenarioEnd(chaos, s, run);
    });
  });
});
