/**
 * The controller process: store, signing key, agent gateway and the two gRPC faces (agents on
 * `listen`, operators on a unix socket and optionally TCP), assembled from compiled options.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ConvoyError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { loadConvoyProtos } from '../proto/load';
import { agentHandlers } from './agent-service';
import { EnrollRateLimiter } from './enrollment';
import { AgentGateway, type GatewayOptions } from './gateway/gateway';
import { operatorHandlers } from './operator/handlers';
import { requireBearer, loadOrCreateOperatorToken } from './operator/bearer';
import { AGENT_SERVICE_POLICY, assertEveryMethodHasPolicy, OPERATOR_SERVICE_POLICY } from './policy';
import { loadOrCreateSigningKey, type ControllerKey } from './signing-key';
import { acquireStateLock, type StateLock } from './state-lock';
import { Store } from './store/store';
import { markOrphanedPhaseRunsLost } from './store/phase-runs';
import { SchedulerClock } from './rollout/clock';
import { RolloutEngine } from './rollout/engine';
import { failpointsFromEnv } from './rollout/failpoint';
import { rolloutHandlers } from './operator/rollout-handlers';
import { OPERATOR_SOCKET } from './operator-socket';

export interface ControllerOptions {
  readonly stateDir: string;
  /** Agent service address, `host:port` or `unix:/path`. Default `127.0.0.1:4860`. */
  readonly listen: string;
  /** Optional TCP address for the operator API (bearer token required). */
  readonly operatorListen?: string;
  readonly gateway: GatewayOptions;
  /** Enrollment attempts allowed per peer address per minute. Default 600. */
  readonly enrollPerMinute: number;
  /** Every newly enrolled host stays pending until `convoy hosts approve`. Default false. */
  readonly requireApproval: boolean;
  /** How often last-seen times are flushed to the store. Default 15 s. */
  readonly lastSeenFlushMs: number;
  /** gRPC keepalive ping interval towards agents. Default 30 s. */
  readonly keepaliveMs: number;
  /** Scheduler clock for demos and tests (see rollout/clock.ts); the wall clock when absent. */
  readonly clockStartMs?: number;
  readonly clockWarp?: boolean;
}

export { OPERATOR_SOCKET };
export const STORE_FILE = 'convoy.db';

/** grpc-js server settings from security.md: bounded messages, keepalive on idle streams. */
function serverOptions(keepaliveMs: number): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': 1024 * 1024,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': Math.min(20_000, Math.max(1000, Math.floor(keepaliveMs / 2))),
    'grpc.keepalive_permit_without_calls': 1,
  };
}

export class Controller {
  private constructor(
    readonly store: Store,
    readonly key: ControllerKey,
    readonly gateway: AgentGateway,
    readonly engine: RolloutEngine,
    private readonly servers: grpc.Server[],
    private readonly flushTimer: NodeJS.Timeout,
    private readonly lock: StateLock,
    readonly agentAddress: string,
    /** Where the operator API listens on TCP, when it does. */
    readonly operatorAddress: string | undefined,
    private readonly log: Logger,
  ) {}

  static async start(
    options: ControllerOptions,
    log: Logger,
    now: () => number = Date.now,
  ): Promise<Controller> {
    await fs.mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    const lock = await acquireStateLock(options.stateDir);
    const opened: { store?: Store; servers: grpc.Server[]; engine?: RolloutEngine } = { servers: [] };
    try {
      const key = await loadOrCreateSigningKey(options.stateDir);
      const store = await Store.open(path.join(options.stateDir, STORE_FILE));
      opened.store = store;
      await markOrphanedPhaseRunsLost(store.db, now());
      const gateway = new AgentGateway(store, key, options.gateway, log.child({ component: 'gateway' }), now);
      const protos = loadConvoyProtos();
      assertEveryMethodHasPolicy('AgentService', protos.AgentService.service, AGENT_SERVICE_POLICY);
      assertEveryMethodHasPolicy('OperatorService', protos.OperatorService.service, OPERATOR_SERVICE_POLICY);

      const agentServer = new grpc.Server(serverOptions(options.keepaliveMs));
      opened.servers.push(agentServer);
      const limiter = new EnrollRateLimiter(options.enrollPerMinute, 60_000);
      agentServer.addService(
        protos.AgentService.service,
        agentHandlers({ store, gateway, key, limiter, log, now, requireApproval: options.requireApproval }),
      );
      const agentPort = await bind(agentServer, options.listen);
      const agentAddress = resolvedAddress(options.listen, agentPort);

      const operatorDeps = {
        store,
        gateway,
        key,
        agentListen: agentAddress,
        log: log.child({ component: 'operator' }),
        now,
      };
      const clock = new SchedulerClock(options.clockStartMs, options.clockWarp === true, now);
      const engine = new RolloutEngine({ ...operatorDeps, clock, failpoint: failpointsFromEnv() });
      opened.engine = engine;
      const operator = {
        ...operatorHandlers(operatorDeps),
        ...rolloutHandlers({ ...operatorDeps, engine, clock }),
      };
      const socketServer = new grpc.Server(serverOptions(options.keepaliveMs));
      opened.servers.push(socketServer);
      socketServer.addService(protos.OperatorService.service, operator);
      await bindUnixSocket(socketServer, path.join(options.stateDir, OPERATOR_SOCKET));
      let operatorAddress: string | undefined;
      if (options.operatorListen !== undefined) {
        const token = await loadOrCreateOperatorToken(options.stateDir);
        const tcpServer = new grpc.Server(serverOptions(options.keepaliveMs));
        opened.servers.push(tcpServer);
        tcpServer.addService(protos.OperatorService.service, requireBearer(operator, token));
        operatorAddress = resolvedAddress(
          options.operatorListen,
          await bind(tcpServer, options.operatorListen),
        );
      }
      const flushTimer = setInterval(() => {
        gateway.flushLastSeen().catch((err: unknown) => log.error('last-seen flush failed', { err }));
      }, options.lastSeenFlushMs);
      flushTimer.unref();
      engine.start();
      log.info('controller started', {
        agentListen: agentAddress,
        operatorListen: operatorAddress,
        keyId: key.keyId,
        stateDir: options.stateDir,
      });
      return new Controller(
        store,
        key,
        gateway,
        engine,
        opened.servers,
        flushTimer,
        lock,
        agentAddress,
        operatorAddress,
        log,
      );
    } catch (err) {
      await opened.engine?.stop();
      for (const s of opened.servers) s.forceShutdown();
      await opened.store?.close();
      await lock.release();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.engine.stop();
    clearInterval(this.flushTimer);
    await this.gateway.close();
    for (const s of this.servers) s.forceShutdown();
    await this.store.close();
    await this.lock.release();
    this.log.info('controller stopped');
  }
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err)
        reject(
          new ConvoyError('INVALID_ARGUMENT', `cannot listen on ${address}: ${err.message}`, {
            field: 'listen',
          }),
        );
      else resolve(port);
    });
  });
}

/** Binds with a umask that leaves the socket 0600, so only the controller's user can call it. */
async function bindUnixSocket(server: grpc.Server, socketPath: string): Promise<void> {
  await fs.rm(socketPath, { force: true });
  const previous = process.umask(0o177);
  try {
    await bind(server, `unix:${socketPath}`);
  } finally {
    process.umask(previous);
  }
  await fs.chmod(socketPath, 0o600);
}

function resolvedAddress(requested: string, port: number): string {
  if (requested.startsWith('unix:')) return requested;
  const colon = requested.lastIndexOf(':');
  return `${requested.slice(0, colon)}:${port}`;
}
