/**
 * One BlueMind fleet (scripts/fixtures/bluemind-fleet.ts: a controller process, three agent
 * processes, isolated apt roots, a fake BlueMind per host) shared by every case of a chaos file.
 * Each case is a new rollout to a newer bm-core, so counts are taken as differences from a mark.
 * The recipe is the built-in bluemind one with a short health check, so a broken release is
 * judged in seconds rather than the six minutes of the real recipe's retries.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { BlueMindFleet, sleep, type FleetHost } from '../../../scripts/fixtures/bluemind-fleet';
import { queryStore } from '../../helpers/store-query';
import { hostPaths, publishWithFaults, type Fault, type HostPaths } from './faults';

const ALWAYS = '{ cron: "* * * * *", duration: 1d, timezone: UTC }';
const RECIPE = path.resolve(__dirname, '../../../recipes/bluemind.yaml');

export class ChaosFleet {
  /** The failpoint the running controller was started with ('' for none). */
  armed = '';
  private patch = 3;
  private batches = '';

  private constructor(readonly fleet: BlueMindFleet) {}

  static async create(): Promise<ChaosFleet> {
    const fleet = await BlueMindFleet.create({ hosts: 3, healthFile: true });
    const chaos = new ChaosFleet(fleet);
    // Every case restarts the controller: agents retry within 0.5 s instead of backing off to 30 s.
    for (const h of fleet.hosts) {
      const file = path.join(h.agentDir, 'agent.yaml');
      const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...config, reconnectInitialMs: 100, reconnectMaxMs: 500 }), {
        mode: 0o600,
      });
      await fleet.killAgent(h);
      fleet.startAgent(h);
    }
    await fleet.waitOnline(fleet.hosts.length, 30_000);
    return chaos;
  }

  get hosts(): FleetHost[] {
    return this.fleet.hosts;
  }

  get canary(): FleetHost {
    return this.fleet.hosts[0] as FleetHost;
  }

  paths(h: FleetHost): HostPaths {
    return hostPaths(this.fleet.root, h);
  }

  /** Applies the deployment with these batches (the threshold is frozen into each rollout). */
  async useBatches(batches: string): Promise<void> {
    if (batches === this.batches) return;
    const recipe = path.join(this.fleet.root, 'bluemind-quick-health.yaml');
    const doc = parse(readFileSync(RECIPE, 'utf8')) as { phases: { verify: Record<string, unknown>[] } };
    // The health checks answer fast; the per-host checks (exec) keep their own timeouts.
    for (const step of doc.phases.verify)
      if (step['type'] === 'http') Object.assign(step, { timeout: '2s', retries: 1, backoff: '250ms' });
    writeFileSync(recipe, stringify(doc));
    await this.healthyController();
    await this.fleet.cliOk(
      'apply',
      this.fleet.writeFleet(this.fleet.fleetYaml({ window: ALWAYS, batches, recipe })),
    );
    this.batches = batches;
  }

  /** The next bm-core on every host's repository, each host with its faults. */
  async publishNext(faults: ReadonlyMap<number, readonly Fault[]> = new Map()): Promise<string> {
    const version = `4.1.${this.patch++}`;
    await Promise.all(
      this.hosts.map((h) => publishWithFaults(h, this.paths(h), version, faults.get(h.index) ?? [])),
    );
    return version;
  }

  async restartController(failpoint = ''): Promise<void> {
    await this.fleet.killController();
    await this.startController(failpoint);
    await this.fleet.waitOnline(this.hosts.length, 30_000);
  }

  /**
   * Starts the controller armed with `failpoints` (comma-separated, '' for none). Other work in
   * the same checkout may rebuild dist/ meanwhile (a half-written module fails at load): a start
   * that fails is tried twice more, so only a controller that cannot start at all fails the test.
   */
  async startController(failpoints: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.fleet.startController(failpoints === '' ? {} : { CONVOY_FAILPOINT: failpoints });
        this.armed = failpoints;
        return;
      } catch (err) {
        // One that timed out may still be running: never leave two controllers on one store.
        await this.fleet.killController();
        if (attempt === 3) throw err;
        await sleep(2000);
      }
    }
  }

  /** A running controller without a failpoint. */
  async healthyController(): Promise<void> {
    if (this.armed !== '' || this.exited()) await this.restartController();
  }

  exited(): boolean {
    const c = this.fleet.controller;
    return c === undefined || c.exitCode !== null || c.signalCode !== null;
  }

  /**
   * Starts a rollout; if the controller died (a failpoint) before answering, the store has its id.
   * Under load an agent may miss heartbeats while the start plans: it is refused as offline and
   * nothing is stored, so it is asked again once the agents are back.
   */
  async startRollout(version: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const since = Date.now();
      const r = await this.fleet.cli('rollout', 'start', 'mail-prod', '--to', version, '--stage-now');
      if (r.code === 0) return r.stdout.trim();
      const rows = await this.query<{ id: string }>(
        'SELECT id FROM rollouts WHERE created_at >= ? ORDER BY created_at DESC LIMIT 1',
        [since],
      );
      if (rows[0] !== undefined) return rows[0].id;
      if (!r.stderr.includes('HOST_OFFLINE') || attempt === 3 || this.exited())
        throw new Error(`rollout start failed: ${r.stderr}\n${this.fleet.dump()}`);
      await this.fleet.waitOnline(this.hosts.length, 30_000);
    }
  }

  query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return queryStore<T>(this.fleet.stateDir, sql, params);
  }

  /** The state in the store: fast to poll, and readable while the controller is down. */
  async storedState(id: string): Promise<string> {
    const rows = await this.query<{ state: string }>('SELECT state FROM rollouts WHERE id = ?', [id]);
    return rows[0]?.state ?? '';
  }

  async hostStates(id: string): Promise<Map<string, string>> {
    const rows = await this.query<{ host_id: string; state: string }>(
      'SELECT host_id, state FROM rollout_hosts WHERE rollout_id = ?',
      [id],
    );
    return new Map(rows.map((r) => [r.host_id, r.state]));
  }

  /** For failure messages: the rollout's hosts and events, and the processes' logs. */
  async explain(id: string): Promise<string> {
    const hosts = await this.query('SELECT * FROM rollout_hosts WHERE rollout_id = ?', [id]);
    const events = await this.query<{ kind: string; host_id: string | null; data_json: string }>(
      'SELECT kind, host_id, data_json FROM events WHERE data_json LIKE ? ORDER BY id',
      [`%${id}%`],
    );
    const lines = events.map((e) => `  ${e.kind} ${e.host_id ?? ''} ${e.data_json}`);
    return [`hosts: ${JSON.stringify(hosts)}`, `events:\n${lines.join('\n')}`, this.fleet.dump()].join('\n');
  }

  async stop(): Promise<void> {
    await this.fleet.stop();
  }
}

export { sleep };
