/**
 * The OperatorService: what the `convoy` CLI calls. Wire messages are translated here and only
 * here; the work itself lives in the store, enrollment and gateway modules.
 */
import type * as grpc from '@grpc/grpc-js';
import { ConvoyError } from '../../shared/errors';
import { labelProblem, matchesSelector, type Labels } from '../../shared/labels';
import { CONVOY_VERSION } from '../../shared/version';
import type {
  WireRunPhaseRequest,
  WireAgentReport,
  WireControllerInfo,
  WireCreatedToken,
  WireCreateTokenRequest,
  WireHostApp,
  WireHostView,
  WirePingRequest,
  WirePingResult,
} from '../../proto/wire';
import { createEnrollmentToken } from '../enrollment';
import type { AgentGateway, DispatchResult } from '../gateway/gateway';
import type { OperatorDeps } from '../deps';
import { toServiceError, unary } from '../grpc-errors';
import { runPhaseOnHost } from './run-phase';
import { hostApps, listRollouts, type HostAppRecord } from '../rollout/rollout-store';
import type { HostRecord } from '../store/store';

const DEFAULT_PING_TIMEOUT_MS = 5000;
const MAX_PING_TIMEOUT_MS = 120_000;

export function operatorHandlers(deps: OperatorDeps): grpc.UntypedServiceImplementation {
  const { store, gateway, log } = deps;
  const view = (h: HostRecord): WireHostView => hostView(h, gateway);
  const selected = async (selector: Record<string, string>): Promise<HostRecord[]> => {
    const wanted = checkedSelector(selector);
    return (await store.listHosts()).filter((h) => matchesSelector(h.labels, wanted));
  };
  const mustHost = async (id: string): Promise<HostRecord> => {
    const host = await store.getHost(id);
    if (host === undefined)
      throw new ConvoyError('HOST_UNKNOWN', `no host with id ${JSON.stringify(id)}`, { hostId: id });
    return host;
  };

  return {
    GetControllerInfo: unary(log, async (): Promise<WireControllerInfo> => ({
      publicKey: deps.key.publicText,
      keyId: deps.key.keyId,
      version: CONVOY_VERSION,
      agentListen: deps.agentListen,
    })),
    GetStatus: unary(log, async (req: { selector: Record<string, string> }) => {
      const apps = await hostApps(store.db);
      const unfinished = new Set((await listRollouts(store.db, { unfinishedOnly: true })).map((r) => r.id));
      return {
        hosts: (await selected(req.selector))
          .filter((h) => h.state !== 'revoked')
          .map((h) => hostView(h, gateway, apps.get(h.id), unfinished)),
        generatedAtMs: deps.now(),
      };
    }),
    ListHosts: unary(log, async (req: { selector: Record<string, string> }) => ({
      hosts: (await selected(req.selector)).map(view),
    })),
    GetHost: unary(log, async (req: { id: string }) => view(await mustHost(req.id))),
    ApproveHost: unary(log, async (req: { id: string }) => {
      await mustHost(req.id);
      return view(await store.setHostState(req.id, 'active', 'operator', deps.now()));
    }),
    RevokeHost: unary(log, async (req: { id: string }) => {
      await mustHost(req.id);
      const host = await store.setHostState(req.id, 'revoked', 'operator', deps.now());
      gateway.disconnect(req.id, 'revoked by operator');
      return view(host);
    }),
    DecommissionHost: unary(log, async (req: { id: string }) => {
      await mustHost(req.id);
      const host = await store.decommissionHost(req.id, 'operator', deps.now());
      gateway.disconnect(req.id, 'decommissioned by operator');
      return view(host);
    }),
    CreateToken: unary(log, async (req: WireCreateTokenRequest): Promise<WireCreatedToken> => {
      const issued = await createEnrollmentToken(
        store,
        {
          ttlMs: req.ttlMs,
          uses: req.uses === 0 ? 1 : req.uses,
          labels: checkedLabels(req.labels),
          requireApproval: req.requireApproval,
        },
        deps.now(),
      );
      log.info('enrollment token created', { tokenId: issued.tokenId, uses: issued.uses });
      return issued;
    }),
    RunPhase: unary(log, async (req: WireRunPhaseRequest) =>
      runPhaseOnHost(deps, await mustHost(req.hostId), req),
    ),
    QueryAgent: unary(log, async (req: { id: string }) => queryAgent(deps, await mustHost(req.id))),
    Ping: (call: grpc.ServerWritableStream<WirePingRequest, WirePingResult>) => {
      ping(deps, call, selected).catch((err: unknown) => call.emit('error', toServiceError(err, log)));
    },
  };
}

async function ping(
  deps: OperatorDeps,
  call: grpc.ServerWritableStream<WirePingRequest, WirePingResult>,
  selected: (selector: Record<string, string>) => Promise<HostRecord[]>,
): Promise<void> {
  const timeoutMs = call.request.timeoutMs === 0 ? DEFAULT_PING_TIMEOUT_MS : call.request.timeoutMs;
  if (timeoutMs > MAX_PING_TIMEOUT_MS) {
    throw new ConvoyError('INVALID_ARGUMENT', `timeout must be at most ${MAX_PING_TIMEOUT_MS} ms`, {
      field: 'timeout',
    });
  }
  const hosts = (await selected(call.request.selector)).filter((h) => h.state !== 'revoked');
  await deps.gateway.dispatch(hosts, 'ping', {}, timeoutMs, (r) => call.write(pingResult(r)));
  call.end();
}

const QUERY_TIMEOUT_MS = 10_000;

async function queryAgent(deps: OperatorDeps, host: HostRecord): Promise<WireAgentReport> {
  const [answer] = await deps.gateway.dispatch([host], 'status', {}, QUERY_TIMEOUT_MS);
  const outcome = answer?.outcome;
  if (outcome === undefined) throw new Error('dispatch returned no outcome for its only host');
  if (outcome.outcome === 'refused') {
    throw new ConvoyError('COMMAND_REFUSED', `agent refused: ${outcome.code}: ${outcome.message}`, {
      hostId: host.id,
    });
  }
  if (outcome.outcome !== 'ok') throw new ConvoyError(outcome.code, outcome.message, { hostId: host.id });
  const b = outcome.result.body;
  const num = (k: string): number => (typeof b[k] === 'number' ? b[k] : 0);
  const str = (k: string): string => (typeof b[k] === 'string' ? b[k] : '');
  return {
    hostId: host.id,
    hostname: str('hostname'),
    agentVersion: str('agentVersion'),
    uptimeMs: num('uptimeMs'),
    lastSeq: num('lastSeq'),
    pid: num('pid'),
    rssBytes: num('rssBytes'),
    rttMs: outcome.rttMs,
    phaseJournal: JSON.stringify(b['phaseJournal'] ?? null),
  };
}

function pingResult(r: DispatchResult): WirePingResult {
  const o = r.outcome;
  return {
    hostId: r.host.id,
    hostname: r.host.hostname,
    outcome: o.outcome,
    rttMs: o.outcome === 'ok' || o.outcome === 'refused' ? o.rttMs : 0,
    seq: r.seq,
    errorCode: o.outcome === 'ok' ? '' : o.code,
    message: o.outcome === 'ok' ? '' : o.message,
  };
}

export function hostView(
  h: HostRecord,
  gateway: AgentGateway,
  apps: readonly HostAppRecord[] = [],
  unfinished?: ReadonlySet<string>,
): WireHostView {
  const views = apps.map((a) => hostAppView(a, unfinished));
  const first = views[0];
  return {
    id: h.id,
    hostname: h.hostname,
    state: h.state,
    online: gateway.isOnline(h.id),
    lastSeenMs: Math.max(h.lastSeenMs, gateway.lastSeen(h.id) ?? 0),
    agentVersion: h.agentVersion,
    labels: { ...h.labels },
    enrolledAtMs: h.enrolledAtMs,
    osPlatform: h.facts.osPlatform,
    osRelease: h.facts.osRelease,
    arch: h.facts.arch,
    osPrettyName: h.facts.osPrettyName,
    lastSeq: h.lastSeq,
    keyId: h.keyId,
    deployment: first?.deployment ?? '',
    application: first?.application ?? '',
    installedVersion: first?.installedVersion ?? '',
    stagedVersion: first?.stagedVersion ?? '',
    maintenance: first?.maintenance ?? false,
    lastBackupId: first?.lastBackupId ?? '',
    lastHealth: first?.lastHealth ?? '',
    lastHealthAtMs: first?.lastHealthAtMs ?? 0,
    currentRollout: first?.currentRollout ?? '',
    clockSkewMs: gateway.clockSkew(h.id) ?? 0,
    apps: views,
  };
}

function hostAppView(app: HostAppRecord, unfinished: ReadonlySet<string> | undefined): WireHostApp {
  const rollout = app.rolloutId ?? '';
  return {
    deployment: app.deployment,
    application: app.application,
    installedVersion: app.installed,
    stagedVersion: app.staged,
    maintenance: app.maintenance,
    lastBackupId: app.lastBackupId,
    lastHealth: app.lastHealth,
    lastHealthAtMs: app.lastHealthAt ?? 0,
    currentRollout: unfinished?.has(rollout) === true ? rollout : '',
  };
}

function checkedLabels(labels: Record<string, string>): Labels {
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(labels)) {
    const problem = labelProblem(k, v);
    if (problem !== null)
      throw new ConvoyError('INVALID_ARGUMENT', `label ${JSON.stringify(k)}: ${problem}`, {
        field: 'labels',
      });
    out[k] = v;
  }
  return out;
}

function checkedSelector(selector: Record<string, string>): Labels {
  return checkedLabels(selector);
}
