/**
 * The rollout engine in the test's own process, with real parts around it: a SQLite store in a
 * temp dir, the real AgentGateway behind a gRPC server on 127.0.0.1:0, scripted agents
 * (./scripted-agent.ts) enrolled through the real Enroll RPC, and a RolloutEngine on a warped
 * scheduler clock that starts at a fixed instant, so windows and staging times are exact.
 *
 * `serveOperator()` also serves the operator API on STATE_DIR/convoy.sock, for the CLI run in
 * process (./cli-in-process.ts) against this controller.
 *
 * `crash()` drops the controller side as kill -9 would (the store closes first, so nothing written
 * after that instant lands), `restart()` opens a new store, gateway and RolloutEngine on the same
 * file and port. `stop()` closes everything; call it in afterAll/finally.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CONFIG_FILE, loadAgentConfig } from '../../agent/config';
import { enrollAgent } from '../../agent/enroll';
import { readAgentKey } from '../../agent/identity';
import { agentHandlers } from '../../controller/agent-service';
import { createEnrollmentToken, EnrollRateLimiter } from '../../controller/enrollment';
import { AgentGateway } from '../../controller/gateway/gateway';
import { SchedulerClock } from '../../controller/rollout/clock';
import { applyDeployments } from '../../controller/rollout/deployment-store';
import { RolloutEngine, type EngineDeps } from '../../controller/rollout/engine';
import { operatorHandlers } from '../../controller/operator/handlers';
import { rolloutHandlers } from '../../controller/operator/rollout-handlers';
import { OPERATOR_SOCKET } from '../../controller/operator-socket';
import type { RolloutHostRecord, RolloutRecord } from '../../controller/rollout/model';
import { getRollout, rolloutHosts } from '../../controller/rollout/rollout-store';
import { startRollout, type RolloutServiceDeps } from '../../controller/rollout/service';
import { loadOrCreateSigningKey, type ControllerKey } from '../../controller/signing-key';
import { listEventViews, type EventView } from '../../controller/store/events';
import { markOrphanedPhaseRunsLost } from '../../controller/store/phase-runs';
import { Store } from '../../controller/store/store';
import { loadConvoyProtos } from '../../proto/load';
import { loadFleetText } from '../../shared/fleet/load';
import { formatPublicKey } from '../../shared/keys';
import { createLogger, type Logger } from '../../shared/logger';
import { tempDir } from './processes';
import { ScriptedAgent } from './scripted-agent';
import { waitFor } from './wait';

/** The scheduler clock, counting how often it is read: the engine reads it once per look at a rollout. */
export class CountingClock extends SchedulerClock {
  reads = 0;

  override now(): number {
    this.reads += 1;
    return super.now();
  }
}

/** One life of the controller side: what a controller process holds. */
interface ControllerSide {
  readonly store: Store;
  readonly gateway: AgentGateway;
  readonly server: grpc.Server;
  readonly engine: RolloutEngine;
  readonly clock: CountingClock;
  readonly deps: RolloutServiceDeps;
  operator?: grpc.Server;
}

/** Engine knobs a test may set: the PHASE_BUSY backoff and its jitter. */
export type EngineOptions = Pick<EngineDeps, 'random' | 'busyBackoff'>;

export interface RolloutPhaseRun {
  readonly host_id: string;
  readonly run_id: string;
  readonly phase: string;
  readonly state: string;
  readonly resumed_json: string | null;
}

export class EngineHarness {
  readonly root = tempDir('engine');
  readonly stateDir = path.join(this.root, 'controller');
  readonly agents: ScriptedAgent[] = [];
  /** Every log line of every controller life, for a failing test's message. */
  readonly logs: string[] = [];
  private readonly log: Logger;
  private side!: ControllerSide;
  private key!: ControllerKey;
  private port = 0;

  private constructor(
    private readonly clockStartMs: number,
    private readonly engineOptions: EngineOptions,
  ) {
    this.log = createLogger({ sink: (line) => this.logs.push(line), level: 'info', now: Date.now });
  }

  /** A controller side whose scheduler clock starts at `clockStartMs` and warps when idle. */
  static async start(clockStartMs: number, engineOptions: EngineOptions = {}): Promise<EngineHarness> {
    const h = new EngineHarness(clockStartMs, engineOptions);
    try {
      h.side = await h.open('127.0.0.1:0', clockStartMs);
    } catch (err) {
      await h.stop();
      throw err;
    }
    return h;
  }

  get engine(): RolloutEngine {
    return this.side.engine;
  }

  get store(): Store {
    return this.side.store;
  }

  get clock(): CountingClock {
    return this.side.clock;
  }

  /** Enrolls one scripted agent per name through the Enroll RPC, starts them, waits until all are online. */
  async addAgents(names: readonly string[]): Promise<ScriptedAgent[]> {
    const { token } = await createEnrollmentToken(
      this.side.store,
      { ttlMs: 600_000, uses: names.length, labels: {}, requireApproval: false },
      Date.now(),
    );
    const added: ScriptedAgent[] = [];
    for (const name of names) {
      const stateDir = path.join(this.root, `agent-${name}`);
      await enrollAgent({
        controller: `127.0.0.1:${this.port}`,
        token,
        controllerKey: formatPublicKey(this.key.publicKey),
        stateDir,
        hostname: name,
      });
      const config = loadAgentConfig(path.join(stateDir, CONFIG_FILE));
      const log = this.log.child({ component: 'scripted-agent', hostId: config.hostId });
      const agent = new ScriptedAgent(config, readAgentKey(stateDir), log);
      this.agents.push(agent);
      added.push(agent);
      agent.start();
    }
    await this.waitOnline(added);
    return added;
  }

  waitOnline(agents: readonly ScriptedAgent[] = this.agents): Promise<true> {
    return waitFor('agents online', () => agents.every((a) => this.side.gateway.isOnline(a.hostId)));
  }

  /** `convoy apply` of one fleet file (recipe text beside it), stored as the CLI would store it. */
  async apply(fleetYaml: string, recipeYaml: string): Promise<void> {
    const file = path.join(this.root, 'fleet.yaml');
    writeFileSync(file, fleetYaml);
    const fleet = loadFleetText(fleetYaml, file);
    const incoming = fleet.deployments.map((spec) => ({
      spec,
      windows: fleet.windows,
      recipeYaml,
      recipeLabel: 'engine-spec.yaml',
    }));
    await applyDeployments(this.side.store, incoming, {
      dryRun: false,
      source: file,
      actor: 'test',
      nowMs: Date.now(),
    });
  }

  /** Serves the operator API on STATE_DIR/convoy.sock (the CLI's `--state-dir` finds it there). */
  async serveOperator(): Promise<void> {
    const server = new grpc.Server();
    const { deps } = this.side;
    server.addService(loadConvoyProtos().OperatorService.service, {
      ...operatorHandlers(deps),
      ...rolloutHandlers(deps),
    });
    await bind(server, `unix:${path.join(this.stateDir, OPERATOR_SOCKET)}`);
    this.side.operator = server;
  }

  /** `convoy rollout start DEPLOYMENT` (plan: `check` on every host; staging by the deployment's schedule). */
  async startRollout(deployment: string): Promise<string> {
    const req = { deployment, target: '', window: '', approve: false, stageNow: false, stageAtMs: 0 };
    return (await startRollout(this.side.deps, req, 'alice')).id;
  }

  rollout(id: string): Promise<RolloutRecord> {
    return getRollout(this.side.store.db, id);
  }

  async host(id: string, hostId: string): Promise<RolloutHostRecord> {
    const found = (await rolloutHosts(this.side.store.db, id)).find((h) => h.hostId === hostId);
    if (found === undefined) throw new Error(`rollout ${id} has no host ${hostId}`);
    return found;
  }

  events(id: string): Promise<EventView[]> {
    return listEventViews(this.side.store.db, { rolloutId: id, limit: 10_000 });
  }

  phaseRuns(id: string): Promise<RolloutPhaseRun[]> {
    return this.side.store.db.all<RolloutPhaseRun>(
      `SELECT host_id, run_id, phase, state, resumed_json FROM phase_runs
        WHERE run_id LIKE ? ORDER BY started_at, rowid`,
      [`${id}-%`],
    );
  }

  /** The spec exactly as stored. */
  async specJson(id: string): Promise<string> {
    const [row] = await this.side.store.db.all<{ spec_json: string }>(
      'SELECT spec_json FROM rollouts WHERE id = ?',
      [id],
    );
    if (row === undefined) throw new Error(`no rollout ${id}`);
    return row.spec_json;
  }

  /** Waits until the rollout satisfies `done`; on timeout the error carries the rollout, its hosts and the logs. */
  async waitRollout(
    id: string,
    what: string,
    done: (r: RolloutRecord, hosts: readonly RolloutHostRecord[]) => boolean,
    timeoutMs = 15_000,
  ): Promise<RolloutRecord> {
    let last = '';
    try {
      return await waitFor(
        what,
        async () => {
          const r = await this.rollout(id);
          const hosts = await rolloutHosts(this.side.store.db, id);
          last = JSON.stringify({ state: r.state, reason: r.reason, paused: r.paused, hosts }, null, 1);
          return done(r, hosts) ? r : undefined;
        },
        timeoutMs,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${last}\n${this.logs.slice(-40).join('')}`);
    }
  }

  /** Waits until the engine has looked at its rollouts `n` more times than now (ticks, not time). */
  async waitLooks(n: number): Promise<void> {
    const from = this.side.clock.reads;
    await waitFor(`${n} more looks by the engine`, () => this.side.clock.reads >= from + n);
  }

  /**
   * The controller dies as with kill -9: the engine stops and the store closes at once (nothing
   * after this instant is written), then its sockets go; the agents keep running.
   */
  async crash(): Promise<void> {
    const { engine, store, server, gateway } = this.side;
    // Not awaited: a tick under way meets the closed store, as it would meet a dead process.
    void engine.stop();
    await store.close();
    server.forceShutdown();
    await gateway.close().catch(() => undefined);
    // The dead engine's flights fail on the closed store; let them end before the next life.
    await engine.settled();
  }

  /** A new controller life on the same store file and port: new store, gateway, server and engine. */
  async restart(): Promise<void> {
    this.side = await this.open(`127.0.0.1:${this.port}`, this.side.clock.now());
  }

  async stop(): Promise<void> {
    for (const a of this.agents) a.stop();
    const side = this.side as ControllerSide | undefined;
    if (side !== undefined) {
      await side.engine.stop();
      side.operator?.forceShutdown();
      side.server.forceShutdown();
      await side.gateway.close().catch(() => undefined);
      await side.engine.settled();
      await side.store.close().catch(() => undefined);
    }
    rmSync(this.root, { recursive: true, force: true });
  }

  private async open(listen: string, clockStartMs: number): Promise<ControllerSide> {
    const log = this.log;
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    this.key = await loadOrCreateSigningKey(this.stateDir);
    const store = await Store.open(path.join(this.stateDir, 'convoy.db'));
    await markOrphanedPhaseRunsLost(store.db, Date.now());
    const gateway = new AgentGateway(
      store,
      this.key,
      { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 2000, commandTtlMs: 60_000, handshakeTimeoutMs: 5000 },
      log.child({ component: 'gateway' }),
    );
    const server = new grpc.Server();
    server.addService(
      loadConvoyProtos().AgentService.service,
      agentHandlers({
        store,
        gateway,
        key: this.key,
        limiter: new EnrollRateLimiter(),
        log,
        now: Date.now,
        requireApproval: false,
      }),
    );
    this.port = await bind(server, listen);
    const clock = new CountingClock(clockStartMs, true);
    const base = { store, gateway, key: this.key, agentListen: `127.0.0.1:${this.port}`, log, now: Date.now };
    const engine = new RolloutEngine({
      ...base,
      clock,
      failpoint: () => undefined,
      tickMs: 50,
      ...this.engineOptions,
    });
    engine.start();
    return { store, gateway, server, engine, clock, deps: { ...base, engine, clock } };
  }
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    );
  });
}
