/**
 * What must hold after a rollout rests, however often its controller was killed, measured from
 * outside the controller: dpkg's own log (one `upgrade bm-core OLD NEW` line per unpack), the fake
 * BlueMind's maintenance spans, /setup count and health page, and the store's step results and
 * phase runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FleetHost } from '../../../scripts/fixtures/bluemind-fleet';
import { readDeployment, writeDeployment } from '../../../scripts/fixtures/fake-bluemind-update';
import { countOf, ranSteps } from '../../helpers/step-counts';
import type { ChaosFleet } from './chaos-fleet';
import type { ScenarioRun } from './drive';
import type { Scenario } from './scenarios';

const NEVER_UPGRADED = ['pending', 'staged', 'stage-failed', 'current'];
const ROLLED_BACK = ['rolled-back', 'rollback-failed'];

/** How many times dpkg unpacked bm-core `version` over an older one on this host. */
export function dpkgUpgrades(h: FleetHost, version: string): number {
  const file = path.join(h.apt.root, 'var/log/dpkg.log');
  const log = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const line = new RegExp(`^\\S+ \\S+ upgrade bm-core(?::all)? \\S+ ${version.replace(/\./g, '\\.')}$`);
  return log.split('\n').filter((l) => line.test(l)).length;
}

/** The health page's status, or `hang` when it gives no answer within 3 s. */
export async function healthOf(h: FleetHost): Promise<number | 'hang'> {
  try {
    const res = await fetch(`${h.bluemind.url}/`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 'hang';
  }
}

/**
 * The scenario's end, host by host: state; apply ran once where the host was upgraded and never
 * elsewhere (dpkg and store agree); the packages' and the configuration's restore once where the
 * host was rolled back, which puts it back on its old version; the
 * service out of maintenance with every span closed; status shows maintenance only on a host
 * left broken by a failed rollback (it needs an operator); elsewhere the health page answers 200
 * on the version the host is on; /setup once when finalize ran, never otherwise; nothing left in flight.
 */
export async function expectScenarioEnd(
  chaos: ChaosFleet,
  scenario: Scenario,
  run: ScenarioRun,
): Promise<void> {
  const { id, version, before } = run;
  const state = await chaos.storedState(id);
  if (state !== scenario.final)
    throw new Error(`rollout ${id} is ${state}, not ${scenario.final}\n${await chaos.explain(id)}`);
  const states = await chaos.hostStates(id);
  const steps = await ranSteps(chaos.fleet.stateDir, id);
  const shown = await chaos.query<{ host_id: string; maintenance: number }>(
    "SELECT host_id, maintenance FROM host_app WHERE deployment = 'mail-prod'",
  );
  const actual = [];
  const expected = [];
  for (const h of chaos.hosts) {
    const want = scenario.hosts[h.index] ?? '?';
    const upgraded = !NEVER_UPGRADED.includes(want);
    const broken = scenario.leftBroken?.includes(h.index) === true;
    const rolledBack = ROLLED_BACK.includes(want);
    const service = h.bluemind.state();
    const spans = service.maintenanceSpans.slice(before.spans.get(h.hostId) ?? 0);
    const spanList = spans.map((s) => (s.off === null ? 'open' : 'closed'));
    // Past /setup (the gap the scenario names): only whether the last span is still open counts.
    const pastSetup = scenario.pastSetupGap === true && upgraded;
    actual.push({
      host: h.name,
      state: states.get(h.hostId),
      unpacked: dpkgUpgrades(h, version),
      applyRan: countOf(steps, 'apply-packages', h.hostId),
      installed: await h.apt.installedVersion('bm-core'),
      restoreRan: countOf(steps, 'restore-system', h.hostId),
      packagesRestored: countOf(steps, 'restore-packages', h.hostId),
      inMaintenance: service.maintenance,
      spans: pastSetup ? spanList.slice(-1) : spanList,
      statusShowsMaintenance: shown.find((s) => s.host_id === h.hostId)?.maintenance,
      health: await healthOf(h),
    });
    expected.push({
      host: h.name,
      state: want,
      unpacked: upgraded ? 1 : 0,
      applyRan: upgraded ? 1 : 0,
      // The rollback reinstalls the packages kept at staging (restore-packages) before it restores
      // the configuration, so a rolled-back host is on its old version again, even when the
      // configuration's restore then fails. Maintenance lasts from the upgrade until /setup, or
      // until the old packages are back: one span either way.
      installed: upgraded && !rolledBack ? version : before.installed.get(h.hostId),
      restoreRan: rolledBack ? 1 : 0,
      packagesRestored: rolledBack ? 1 : 0,
      inMaintenance: pastSetup,
      spans: pastSetup ? ['open'] : upgraded ? ['closed'] : [],
      statusShowsMaintenance: broken ? 1 : 0,
      health: broken ? 500 : pastSetup ? 503 : 200,
    });
  }
  if (JSON.stringify(actual) !== JSON.stringify(expected))
    process.stderr.write(`${scenario.name} ${id}:\n${await chaos.explain(id)}\n`);
  expect(actual).toEqual(expected);
  const setups = scenario.setup ? 1 : 0;
  expect({
    setupCalls: chaos.fleet.setupCalls() - before.setupCalls,
    setupRan: countOf(steps, 'setup-update'),
  }).toEqual({
    setupCalls: setups,
    setupRan: setups,
  });
  // Every phase sent was answered or reconciled; no host is left with a phase in flight.
  expect(
    await chaos.query(`SELECT host_id, phase FROM phase_runs WHERE run_id LIKE ? AND state = 'sent'`, [
      `${id}-%`,
    ]),
  ).toEqual([]);
  expect(
    await chaos.query('SELECT host_id, phase FROM rollout_hosts WHERE rollout_id = ? AND phase IS NOT NULL', [
      id,
    ]),
  ).toEqual([]);
  if (scenario.pastSetupGap === true) await recoverByHand(chaos);
}

/**
 * The operator's manual recovery after a rollback past /setup (docs/recipes.md, BlueMind): the
 * deployment put back to the version the hosts run again, so that BlueMind leaves maintenance and
 * the next scenario starts from a healthy fleet.
 */
async function recoverByHand(chaos: ChaosFleet): Promise<void> {
  const file = chaos.fleet.hosts[0]?.files.deploymentFile;
  if (file === undefined) throw new Error('the chaos fleet has no hosts');
  const deployment = readDeployment(file);
  const installed = chaos.hosts.map((h) => h.bluemind.state().update.installed);
  writeDeployment(file, { ...deployment, setupVersion: installed[0] ?? null, prepared: null });
  // Each fake reads the deployment state again at its next request: out of maintenance now.
  for (const h of chaos.hosts)
    expect({ host: h.name, health: await healthOf(h) }).toEqual({ host: h.name, health: 200 });
}
