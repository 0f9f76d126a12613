/**
 * Runs one scenario to its end on the chaos fleet, playing the operator, with the controller armed
 * with a failpoint or killed -9 at random instants. Every death of the controller is recorded
 * (which failpoint said it fired, or which state a random kill hit) and followed by a restart.
 */
import type { FleetHost } from '../../../scripts/fixtures/bluemind-fleet';
import { sleep, type ChaosFleet } from './chaos-fleet';
import type { Scenario } from './scenarios';

export interface Mark {
  readonly setupCalls: number;
  readonly spans: ReadonlyMap<string, number>;
  readonly installed: ReadonlyMap<string, string | undefined>;
}

export interface ScenarioRun {
  readonly id: string;
  readonly version: string;
  readonly before: Mark;
  /** Failpoints the controller said it fired, in order, each followed by a SIGKILL and a restart. */
  readonly fired: string[];
  /** The rollout's stored state at each random kill. */
  readonly kills: string[];
}

export interface DriveOptions {
  /**
   * Armed together: the controller dies at the first it writes and is restarted armed with the
   * rest, so one rollout is killed once at each (they all lie ahead of the one that fired).
   */
  readonly failpoints?: readonly string[];
  /**
   * Random kills: up to `count`, each 0.3-3.5 s after the previous start (a loaded machine spends
   * seconds restarting: shorter pauses would land every kill in staging).
   */
  readonly random?: { readonly next: () => number; readonly count: number };
  readonly timeoutMs?: number;
}

export async function mark(chaos: ChaosFleet): Promise<Mark> {
  const installed = new Map<string, string | undefined>();
  for (const h of chaos.hosts) installed.set(h.hostId, await h.apt.installedVersion('bm-core'));
  return {
    setupCalls: chaos.fleet.setupCalls(),
    spans: new Map(chaos.hosts.map((h: FleetHost) => [h.hostId, h.bluemind.state().maintenanceSpans.length])),
    installed,
  };
}

export async function runScenario(
  chaos: ChaosFleet,
  scenario: Scenario,
  opts: DriveOptions = {},
): Promise<ScenarioRun> {
  await chaos.useBatches(scenario.batches);
  // Earlier cases' controllers wrote to the same log: only what comes after this counts.
  const logFrom = chaos.fleet.controllerLog.length;
  const [version] = await Promise.all([
    chaos.publishNext(scenario.faults),
    opts.failpoints === undefined
      ? chaos.healthyController()
      : chaos.restartController(opts.failpoints.join(',')),
  ]);
  const before = await mark(chaos);
  const run: ScenarioRun = { id: await chaos.startRollout(version), version, before, fired: [], kills: [] };
  await driveToEnd(chaos, scenario, run, opts, logFrom);
  return run;
}

async function driveToEnd(
  chaos: ChaosFleet,
  scenario: Scenario,
  run: ScenarioRun,
  opts: DriveOptions,
  logStart: number,
): Promise<void> {
  const random = opts.random;
  const pause = (): number => 300 + Math.floor((random?.next() ?? 0) * 3200);
  let nextKill = random === undefined ? Number.POSITIVE_INFINITY : Date.now() + pause();
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let logFrom = logStart;
  for (;;) {
    if (Date.now() > deadline)
      throw new Error(
        `${scenario.name}: rollout ${run.id} did not end ${scenario.final}\n${await chaos.explain(run.id)}`,
      );
    if (chaos.exited()) {
      const log = chaos.fleet.controllerLog.slice(logFrom);
      const said = /failpoint (\S+): killing the controller/.exec(log);
      if (said?.[1] === undefined || chaos.fleet.controller?.signalCode !== 'SIGKILL')
        throw new Error(`the controller died on its own\n${await chaos.explain(run.id)}`);
      run.fired.push(said[1]);
      logFrom = chaos.fleet.controllerLog.length;
      const rest = (opts.failpoints ?? []).filter((f) => !run.fired.includes(f)).join(',');
      await chaos.startController(rest);
      continue;
    }
    const state = await chaos.storedState(run.id);
    if (run.kills.length < (random?.count ?? 0) && Date.now() >= nextKill && state !== scenario.final) {
      await chaos.fleet.killController();
      run.kills.push(state);
      logFrom = chaos.fleet.controllerLog.length;
      await chaos.startController('');
      nextKill = Date.now() + pause();
      continue;
    }
    if (state === scenario.final) {
      // A failpoint fires right after its write: the kill may land just after we read it.
      if (chaos.armed !== '') await Promise.race([chaos.fleet.controllerExit(), sleep(3000)]);
      if (chaos.exited()) continue;
      return;
    }
    const action = (scenario.operator as Record<string, string | undefined>)[state];
    if (action !== undefined) {
      const r = await chaos.fleet.cli('rollout', action, run.id);
      // Refused only when the engine moved on meanwhile, or the controller died answering.
      if (r.code !== 0 && !chaos.exited() && (await chaos.storedState(run.id)) === state)
        throw new Error(`rollout ${action} ${run.id} exited ${r.code}: ${r.stderr}`);
      continue;
    }
    await sleep(100);
  }
}
