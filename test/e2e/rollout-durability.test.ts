/**
 * Durability of a BlueMind rollout (design.md "Durability and faults"), on one real fleet: a
 * controller process, three agent processes, isolated apt roots with their repositories, and a
 * fake BlueMind per host. Each case is a new rollout to a newer bm-core (4.1.2, 4.1.3, ...), so
 * the fleet is built once; every count below is a difference from before the case.
 *
 * "Ran once" is measured from the outside: dpkg's own log in each host's apt root (one
 * `upgrade bm-core OLD NEW` line per unpack), the fake service's maintenance spans (bm-core's
 * preinst opens one, its postinst closes it) and its count of /setup calls; and in the store:
 * the step results the agents streamed, and the phase runs the controller wrote before sending.
 *
 * Random kill instants come from CONVOY_TEST_SEED (printed; set it to replay a run).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RESTING_ROLLOUT_STATES, isIn } from '../../controller/rollout/model';
import type { RolloutView } from '../../controller/rollout/view';
import { BlueMindFleet, sleep, type FleetHost } from '../../scripts/fixtures/bluemind-fleet';
import { bmCorePublishOptions } from '../../scripts/fixtures/bluemind-packages';
import { rolloutHost, rolloutStatus } from '../helpers/rollout-probe';
import { seeded } from '../helpers/seeded-random';
import { countOf, ranSteps } from '../helpers/step-counts';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const ALWAYS = '{ cron: "* * * * *", duration: 1d, timezone: UTC }';
const SLOW_APPLY_MS = 3000;

/** Every failpoint a successful BlueMind rollout passes (engine.ts `this.deps.failpoint(...)`), in order. */
const FAILPOINTS = [
  'rollout.staging',
  'host.staging',
  'rollout.staged',
  'rollout.upgrading',
  'host.upgrading',
  'host.verifying',
  'rollout.finalizing',
  'finalize.sent',
  'rollout.verifying',
  'host.final-verifying',
  'rollout.succeeded',
] as const;

/** The fleet's counters before a case's rollout started. */
interface Before {
  readonly setupCalls: number;
  readonly spans: ReadonlyMap<string, number>;
}

let fleet: BlueMindFleet;
let canary: FleetHost;
let patch = 2;
/** The failpoint the running controller was started with ('' for none). */
let armed = '';

beforeAll(async () => {
  fleet = await BlueMindFleet.create({ hosts: 3 });
  canary = fleet.hosts[0] as FleetHost;
  // Every case restarts the controller: agents retry within 0.5 s instead of backing off to 30 s.
  for (const h of fleet.hosts) {
    const file = path.join(h.agentDir, 'agent.yaml');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const fast = { ...config, reconnectInitialMs: 100, reconnectMaxMs: 500 };
    writeFileSync(file, JSON.stringify(fast), { mode: 0o600 });
    await fleet.killAgent(h);
    fleet.startAgent(h);
  }
  await fleet.waitOnline(fleet.hosts.length, 30_000);
  await fleet.cliOk('apply', fleet.writeFleet(fleet.fleetYaml({ window: ALWAYS })));
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
});

// ---- fleet helpers -------------------------------------------------------------------------

/** The next bm-core on every host's repository; the canary's may apply slowly (4.1.2 exists). */
async function publishNext(canaryApplyMs = 300): Promise<string> {
  const version = `4.1.${patch++}`;
  if (version === fleet.to && canaryApplyMs === 300) return version;
  await Promise.all(
    fleet.hosts.map((h) => {
      const flag = path.join(fleet.root, h.name, 'maintenance.flag');
      return h.apt.publish(
        'bm-core',
        version,
        bmCorePublishOptions(flag, h === canary ? canaryApplyMs : 300),
      );
    }),
  );
  return version;
}

async function restartController(failpoint = ''): Promise<void> {
  await fleet.killController();
  await fleet.startController(failpoint === '' ? {} : { CONVOY_FAILPOINT: failpoint });
  armed = failpoint;
  await fleet.waitOnline(fleet.hosts.length, 30_000);
}

/** A running controller without a failpoint, every agent online. */
async function healthyController(): Promise<void> {
  if (armed !== '' || exited()) await restartController();
  // A test that ends right after restarting the controller (failpoint rollout.succeeded) leaves
  // agents still reconnecting: a start then would be refused with HOST_OFFLINE.
  else await fleet.waitOnline(fleet.hosts.length, 30_000);
}

function exited(): boolean {
  const c = fleet.controller;
  return c === undefined || c.exitCode !== null || c.signalCode !== null;
}

function mark(): Before {
  return {
    setupCalls: fleet.setupCalls(),
    spans: new Map(fleet.hosts.map((h) => [h.hostId, h.bluemind.state().maintenanceSpans.length])),
  };
}

/** Starts a rollout; if the controller died (a failpoint) before answering, the store has its id. */
async function startRollout(version: string): Promise<string> {
  const since = Date.now();
  const r = await fleet.cli('rollout', 'start', 'mail-prod', '--to', version, '--stage-now');
  if (r.code === 0) return r.stdout.trim();
  const rows = await queryStore<{ id: string }>(
    fleet.stateDir,
    'SELECT id FROM rollouts WHERE created_at >= ? ORDER BY created_at DESC LIMIT 1',
    [since],
  );
  if (rows[0] === undefined) throw new Error(`rollout start failed: ${r.stderr}\n${fleet.dump()}`);
  return rows[0].id;
}

function rolloutDoc(id: string): Promise<RolloutView> {
  return rolloutStatus(fleet, id);
}

/** The state in the store: fast to poll, and readable while the controller is down. */
async function storedState(id: string): Promise<string> {
  const rows = await queryStore<{ state: string }>(
    fleet.stateDir,
    'SELECT state FROM rollouts WHERE id = ?',
    [id],
  );
  return rows[0]?.state ?? '';
}

async function waitFinished(id: string, timeoutMs = 45_000): Promise<void> {
  try {
    await waitFor(
      `rollout ${id} to finish`,
      async () => isIn(RESTING_ROLLOUT_STATES, await storedState(id)),
      timeoutMs,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await explain(id)}`);
  }
}

/** For failure messages: the rollout's hosts and events, and the processes' logs. */
async function explain(id: string): Promise<string> {
  const hosts = await queryStore(fleet.stateDir, 'SELECT * FROM rollout_hosts WHERE rollout_id = ?', [id]);
  const events = await queryStore<{ kind: string; host_id: string | null; data_json: string }>(
    fleet.stateDir,
    'SELECT kind, host_id, data_json FROM events WHERE data_json LIKE ? ORDER BY id',
    [`%${id}%`],
  );
  const lines = events.map((e) => `  ${e.kind} ${e.host_id ?? ''} ${e.data_json}`);
  return [`hosts: ${JSON.stringify(hosts)}`, `events:\n${lines.join('\n')}`, fleet.dump()].join('\n');
}

function dpkgLog(h: FleetHost): string {
  const file = path.join(h.apt.root, 'var/log/dpkg.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** How many times dpkg unpacked bm-core `version` over an older one on this host. */
function dpkgUpgrades(h: FleetHost, version: string): number {
  const line = new RegExp(`^\\S+ \\S+ upgrade bm-core(?::all)? \\S+ ${version.replace(/\./g, '\\.')}$`);
  return dpkgLog(h)
    .split('\n')
    .filter((l) => line.test(l)).length;
}

/** Inside apply-packages, in its slow part: dpkg unpacked bm-core and runs its postinst. */
function dpkgConfiguring(h: FleetHost, version: string): boolean {
  return dpkgLog(h).includes(`status half-configured bm-core:all ${version}`);
}

// ---- what the store says ---------------------------------------------------------------------

interface ResentEvent {
  rolloutId: string;
  hostId: string;
  phase: string;
  /** What the agent's journal said when the controller decided to send again. */
  journal: string | null;
}

async function resentEvents(id: string, h: FleetHost): Promise<ResentEvent[]> {
  const rows = await queryStore<{ data_json: string }>(
    fleet.stateDir,
    "SELECT data_json FROM events WHERE kind = 'rollout.host.resent' AND host_id = ? AND data_json LIKE ?",
    [h.hostId, `%"rolloutId":"${id}"%`],
  );
  return rows.map((r) => JSON.parse(r.data_json) as ResentEvent);
}

/**
 * The promises of a rollout that survived crashes. `exact`: no step ended while no controller
 * listened, so the store counts each step result once. `at-most-once`: a step may have ended while
 * the controller was dead; its streamed result is then lost and the store has no row for it, but
 * its phase run must say it ended from the agent's journal.
 */
async function expectCleanRollout(
  id: string,
  version: string,
  before: Before,
  evidence: 'exact' | 'at-most-once',
): Promise<void> {
  const doc = await rolloutDoc(id);
  if (doc.state !== 'succeeded')
    throw new Error(`rollout ${id} is ${doc.state}: ${doc.reason}\n${await explain(id)}`);
  expect(fleet.setupCalls() - before.setupCalls).toBe(1);
  const steps = await ranSteps(fleet.stateDir, id);
  const shown = await queryStore<{ host_id: string; maintenance: number }>(
    fleet.stateDir,
    'SELECT host_id, maintenance FROM host_app',
  );
  for (const h of fleet.hosts) {
    const service = h.bluemind.state();
    const spans = service.maintenanceSpans.slice(before.spans.get(h.hostId) ?? 0);
    const applied = countOf(steps, 'apply-packages', h.hostId);
    expect({
      host: h.name,
      installed: await h.apt.installedVersion('bm-core'),
      unpacked: dpkgUpgrades(h, version),
      maintenance: service.maintenance,
      spans: spans.map((s) => (s.off === null ? 'open' : 'closed')),
      statusShowsMaintenance: shown.find((s) => s.host_id === h.hostId)?.maintenance,
    }).toEqual({
      host: h.name,
      installed: version,
      unpacked: 1,
      maintenance: false,
      spans: ['closed'],
      statusShowsMaintenance: 0,
    });
    // A step that ended while no controller listened is recorded from the agent's journal, so
    // the store proves it ran once in every case, whatever the `evidence` of the scenario.
    if (applied !== 1) {
      const runs = await queryStore(
        fleet.stateDir,
        `SELECT pr.id, pr.phase, pr.state, pr.resumed_json, pr.started_at,
                (SELECT group_concat(step_id || ':' || status, ' ') FROM step_results WHERE phase_run_id = pr.id) AS steps
           FROM phase_runs pr WHERE pr.run_id LIKE ? AND pr.host_id = ? ORDER BY pr.started_at`,
        [`${id}-%`, h.hostId],
      );
      process.stderr.write(`${h.name} phase runs: ${JSON.stringify(runs, null, 1)}\n${await explain(id)}\n`);
    }
    expect({ host: h.name, evidence, applied }).toEqual({ host: h.name, evidence, applied: 1 });
  }
  expect(countOf(steps, 'setup-update')).toBe(1);
}

// ---- processes -----------------------------------------------------------------------------

/**
 * kill -9 of the agent and of every process it started, as a power cut or systemd's cgroup kill
 * does: an orphaned dpkg would otherwise finish the upgrade on its own, and the agent's resume
 * table would have nothing to decide.
 */
async function killAgentTree(h: FleetHost): Promise<void> {
  const pid = h.agent?.pid;
  if (pid === undefined) return;
  const tree = descendants(pid);
  await fleet.killAgent(h);
  for (const child of tree) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const line of execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    if (p !== undefined && pp !== undefined) children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const found: number[] = [];
  for (let queue = [pid]; queue.length > 0;) {
    const kids = children.get(queue.shift() as number) ?? [];
    found.push(...kids);
    queue = [...queue, ...kids];
  }
  return found;
}

/** CPU time (user + system) a process used so far, ms (Linux /proc, 100 ticks per second). */
function cpuMs(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function waitCanaryInsideApply(id: string, version: string): Promise<void> {
  await waitFor(
    'the canary to upgrade',
    async () => rolloutHost(await rolloutDoc(id), canary).state === 'upgrading',
    30_000,
    100,
  );
  await waitFor(
    'dpkg to configure bm-core on the canary',
    () => dpkgConfiguring(canary, version),
    10_000,
    20,
  );
}

// ---- the cases -----------------------------------------------------------------------------

describe('rollout durability', () => {
  describe.each(FAILPOINTS)('controller killed at failpoint %s', (failpoint) => {
    it('resumes after a restart: succeeded, /setup once, each apply once, nothing left in maintenance', async () => {
      const [version] = await Promise.all([publishNext(), restartController(failpoint)]);
      const before = mark();
      const id = await startRollout(version);
      const died = await waitFor(
        `failpoint ${failpoint} to kill the controller`,
        async () => {
          if (exited()) return true;
          if (!isIn(RESTING_ROLLOUT_STATES, await storedState(id))) return undefined;
          // A failpoint fires right after its write: the kill may land just after we read it.
          await Promise.race([fleet.controllerExit(), sleep(3000)]);
          return exited() ? true : 'finished without firing';
        },
        40_000,
        100,
      );
      if (died !== true) throw new Error(`failpoint ${failpoint} never fired\n${await explain(id)}`);
      expect(fleet.controller?.signalCode).toBe('SIGKILL');
      expect(fleet.controllerLog).toContain(`failpoint ${failpoint}: killing the controller`);
      await fleet.startController({});
      armed = '';
      await waitFinished(id);
      await expectCleanRollout(id, version, before, 'exact');
    });
  });

  describe('controller killed -9 at random instants', () => {
    const given = process.env['CONVOY_TEST_SEED'];
    const seed = given === undefined ? Date.now() % 1_000_000 : Number(given);
    const random = seeded(seed);

    it.each([1, 2, 3])('rollout %i resumes after every kill and ends as if nothing happened', async (n) => {
      const [version] = await Promise.all([publishNext(), healthyController()]);
      const before = mark();
      const id = await startRollout(version);
      const kills: string[] = [];
      for (let i = 0; i < 4; i++) {
        await sleep(300 + Math.floor(random() * 1700));
        const state = await storedState(id);
        if (isIn(RESTING_ROLLOUT_STATES, state)) break;
        await fleet.killController();
        kills.push(state);
        await fleet.startController({});
      }
      process.stdout.write(
        `CONVOY_TEST_SEED=${seed} rollout ${n} (${id}): killed while ${kills.join(', ') || '-'}\n`,
      );
      await waitFinished(id);
      await expectCleanRollout(id, version, before, 'at-most-once');
    });
  });

  describe('agent killed -9 inside the canary upgrade', () => {
    it('holds the rollout while the host is unknown, then resumes the apply on the agent and completes', async () => {
      const [version] = await Promise.all([publishNext(SLOW_APPLY_MS), healthyController()]);
      const before = mark();
      const id = await startRollout(version);
      await waitCanaryInsideApply(id, version);
      await killAgentTree(canary);

      await waitFor(
        'the canary to be unknown',
        async () => rolloutHost(await rolloutDoc(id), canary).unknown,
        10_000,
        100,
      );
      // While it is unknown no new batch starts (watch longer than a batch takes), and the
      // controller waits without spinning.
      const cpuBefore = cpuMs(fleet.controller?.pid);
      const watchedFrom = Date.now();
      while (Date.now() - watchedFrom < 3000) {
        const doc = await rolloutDoc(id);
        expect(doc.state).toBe('upgrading');
        expect(rolloutHost(doc, canary)).toMatchObject({ state: 'upgrading', unknown: true });
        for (const h of fleet.hosts.slice(1))
          expect({ host: h.name, state: rolloutHost(doc, h).state }).toEqual({
            host: h.name,
            state: 'staged',
          });
        await sleep(200);
      }
      expect(cpuMs(fleet.controller?.pid) - cpuBefore).toBeLessThan((Date.now() - watchedFrom) / 2);
      expect((await rolloutDoc(id)).reason).toContain(`waiting for ${canary.hostId} (state unknown)`);

      fleet.startAgent(canary);
      await waitFinished(id);
      // The apt step's contract says `interrupted: resume`: running it again finishes dpkg's
      // interrupted configure (`dpkg --configure -a`) instead of unpacking the package again.
      expect(await resentEvents(id, canary)).toEqual([
        // The first re-send of this phase: the loop guard counts it (3 allowed).
        { rolloutId: id, hostId: canary.hostId, phase: 'upgrade', journal: 'interrupted', resends: 1 },
      ]);
      const resumed = await queryStore<{ resumed_json: string }>(
        fleet.stateDir,
        "SELECT resumed_json FROM phase_runs WHERE run_id = ? AND host_id = ? AND phase = 'upgrade' AND state = 'succeeded'",
        [`${id}-u`, canary.hostId],
      );
      expect(resumed).toHaveLength(1);
      expect(resumed[0]?.resumed_json).toContain(
        'interrupted inside apply-packages (apt): its contract says resume',
      );
      expect(canary.agentLog).toContain(
        'dpkg was interrupted; finishing its pending work before the upgrade',
      );
      await expectCleanRollout(id, version, before, 'exact');
    });
  });

  describe('controller killed -9 while the canary upgrades', () => {
    it('takes the finished upgrade from the agent journal without sending it again', async () => {
      const [version] = await Promise.all([publishNext(SLOW_APPLY_MS), healthyController()]);
      const before = mark();
      const id = await startRollout(version);
      await waitCanaryInsideApply(id, version);
      await fleet.killController();

      const journalFile = path.join(canary.agentDir, 'phase', 'phase-journal.json');
      await waitFor(
        'the canary agent to finish its upgrade',
        () => {
          const j = JSON.parse(readFileSync(journalFile, 'utf8')) as {
            runId: string;
            phase: string;
            state: string;
          };
          return j.runId === `${id}-u` && j.phase === 'upgrade' && j.state === 'succeeded';
        },
        15_000,
        100,
      );
      expect(await canary.apt.installedVersion('bm-core')).toBe(version);
      const upgradeRuns =
        "SELECT state, resumed_json FROM phase_runs WHERE run_id = ? AND host_id = ? AND phase = 'upgrade'";
      expect(await queryStore(fleet.stateDir, upgradeRuns, [`${id}-u`, canary.hostId])).toEqual([
        { state: 'sent', resumed_json: null },
      ]);

      await fleet.startController({});
      await waitFinished(id);
      expect(await queryStore(fleet.stateDir, upgradeRuns, [`${id}-u`, canary.hostId])).toEqual([
        { state: 'succeeded', resumed_json: JSON.stringify({ reconciled: 'from the agent journal' }) },
      ]);
      expect((await resentEvents(id, canary)).filter((e) => e.phase === 'upgrade')).toEqual([]);
      await expectCleanRollout(id, version, before, 'at-most-once');
    });
  });
});
