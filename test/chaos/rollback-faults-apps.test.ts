/**
 * Rollback faults for the application recipes (issue 13): at every step of download, upgrade and
 * verify of passbolt, cells and owncloud, the step does its work and then reports failure
 * (CONVOY_AGENT_FAILPOINT fail:STEP), each phase a real `convoy-agent phase run`; then the host
 * lives on as the controller makes it: a failed download stops there, a failed upgrade or verify
 * is rolled back. Every case ends, on disk:
 *
 * - old and healthy: the previous version, its data as before, out of maintenance, health passing;
 * - or held past the recipe's point of no return: the agent refused the rollback, naming the step,
 *   the backup id and the manual procedure, and the host runs the new version on its new data.
 *
 * The hosts are the agent kill sweep's (agent-sweep/app-hosts.ts), reset from snapshots.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { compiledRecipe, runsWithRoles } from './agent-sweep/cases';
import { goldenRun, runFaultCase, stepBeforePoint, type FaultTrace } from './agent-sweep/driver';
import { cellsHost, owncloudHost, passboltHost } from './agent-sweep/app-hosts';
import { Snapshots } from './agent-sweep/snapshot';
import type { AppState, SweepHost } from './agent-sweep/sweep-host';

const HOSTS: Readonly<Record<string, () => Promise<SweepHost>>> = {
  passbolt: passboltHost,
  cells: cellsHost,
  owncloud: owncloudHost,
};

const FAULT_PHASES = ['download', 'upgrade', 'verify'] as const;
type FaultPhase = (typeof FAULT_PHASES)[number];

interface FaultCase {
  readonly recipe: string;
  readonly phase: FaultPhase;
  readonly stepId: string;
}

/** Every step a host of the sweep runs (roles []: the Debian side of ownCloud's system update). */
function faultCases(recipe: string): FaultCase[] {
  const compiled = compiledRecipe(recipe);
  return FAULT_PHASES.flatMap((phase) =>
    compiled.phases[phase].filter((s) => runsWithRoles(s, [])).map((s) => ({ recipe, phase, stepId: s.id })),
  );
}

/** What the case must end as: stopped or rolled back to old, or held past the point. */
function expectedEnding(c: FaultCase): FaultTrace['ending'] {
  if (c.phase === 'download') return 'stopped';
  const recipe = compiledRecipe(c.recipe);
  const before = stepBeforePoint(recipe);
  if (before === undefined) return 'rolled-back';
  const point = recipe.phases.upgrade.findIndex((s) => s.pointOfNoReturn === true);
  const at = recipe.phases.upgrade.findIndex((s) => s.id === c.stepId);
  return c.phase === 'verify' || at >= point ? 'held' : 'rolled-back';
}

interface RecipeHost {
  readonly ready: Promise<{ host: SweepHost; snaps: Snapshots }>;
  queue: Promise<unknown>;
}
const hosts = new Map<string, RecipeHost>();

function hostOf(recipe: string): RecipeHost {
  let h = hosts.get(recipe);
  if (h === undefined) {
    const ready = (async () => {
      const host = await (HOSTS[recipe] as () => Promise<SweepHost>)();
      const snaps = new Snapshots(host.dirs);
      await goldenRun(compiledRecipe(recipe), host, snaps);
      return { host, snaps };
    })();
    h = { ready, queue: ready.catch(() => undefined) };
    hosts.set(recipe, h);
  }
  return h;
}

/** Runs WORK when the recipe's host is free (one case at a time per host). */
function exclusive<T>(h: RecipeHost, work: () => Promise<T>): Promise<T> {
  const result = h.queue.then(work);
  h.queue = result.catch(() => undefined);
  return result;
}

afterAll(async () => {
  for (const h of hosts.values()) {
    await h.queue;
    const ready = await h.ready.catch(() => undefined);
    ready?.snaps.discard();
    await ready?.host.cleanup();
  }
}, 120_000);

/** Case i of every recipe, then case i+1 of every recipe: different hosts run side by side. */
function interleaved(): FaultCase[] {
  const lists = Object.keys(HOSTS).map(faultCases);
  const longest = Math.max(0, ...lists.map((l) => l.length));
  return Array.from({ length: longest }, (_, i) =>
    lists.flatMap((l) => (l[i] === undefined ? [] : [l[i]])),
  ).flat();
}

describe('coverage', () => {
  it('has a fault case for every step a host runs in download, upgrade and verify', () => {
    for (const recipe of Object.keys(HOSTS)) {
      const compiled = compiledRecipe(recipe);
      const steps = FAULT_PHASES.flatMap((p) => compiled.phases[p].filter((s) => runsWithRoles(s, [])));
      expect(faultCases(recipe).map((c) => c.stepId)).toEqual(steps.map((s) => s.id));
    }
  });
});

describe('a failure injected at every step', () => {
  it.concurrent.each(interleaved().map((c) => [`${c.recipe} ${c.phase} fail:${c.stepId}`, c] as const))(
    '%s: ends old and healthy, or held past the point of no return',
    async (_label, c) => {
      const h = hostOf(c.recipe);
      const { host, trace, app } = await exclusive(h, async () => {
        const { host, snaps } = await h.ready;
        const trace = await runFaultCase(compiledRecipe(c.recipe), host, snaps, c.phase, c.stepId);
        return { host, trace, app: await host.observe() };
      });
      const ending = expectedEnding(c);
      const healthy = (version: string): AppState => ({
        version,
        healthy: true,
        maintenance: false,
        problems: [],
        ranTwice: [],
      });
      expect({ ending: trace.ending, app, runs: trace.runs }).toEqual({
        ending,
        app: healthy(ending === 'held' ? host.to : host.from),
        runs: trace.runs,
      });
      if (ending === 'held') expectHeld(trace.held, host);
    },
    300_000,
  );
});

/** The agent's refusal names the point, a backup that exists on the host, and the procedure. */
function expectHeld(held: string, host: SweepHost): void {
  const m =
    /^PAST_POINT_OF_NO_RETURN: the upgrade started (\S+); no automatic rollback \(backup (\S+)\)$/m.exec(
      held,
    );
  expect({ held, parsed: m !== null }).toMatchObject({ parsed: true });
  const backupDir = host.agent.vars['backupDir'] ?? '';
  expect(existsSync(path.join(backupDir, m?.[2] ?? 'none', 'manifest.json'))).toBe(true);
  expect(held).toMatch(/^manual recovery: .*restore the data backup/m);
}
