/**
 * The operator's rollout actions: apply, plan, start, show, act, events. Starting is serialized
 * per deployment in this process (a second start waits, then finds the first rollout), and the
 * store's unique index makes "one unfinished rollout per deployment" hold across processes.
 */
import { randomBytes } from 'node:crypto';
import { ConvoyError } from '../../shared/errors';
import { stagingTime, windowState } from '../../shared/schedule';
import type { OperatorDeps } from '../operator/handlers';
import { prepareRecipe } from '../operator/run-phase';
import type { SchedulerClock } from './clock';
import { getDeployment } from './deployments';
import type { RolloutEngine } from './engine';
import type { RolloutHostSpec, RolloutRecord, RolloutSpec } from './model';
import { planRollout, type Plan } from './plan';
import { getRollout, insertRollout, listRollouts, rolloutHosts } from './rollout-store';

export interface RolloutServiceDeps extends OperatorDeps {
  readonly engine: RolloutEngine;
  readonly clock: SchedulerClock;
}

export interface RolloutRequest {
  readonly deployment: string;
  readonly target: string;
  readonly window: string;
  readonly approve: boolean;
  readonly stageNow: boolean;
  readonly stageAtMs: number;
}

const starting = new Map<string, Promise<unknown>>();

export async function planFor(deps: RolloutServiceDeps, req: RolloutRequest): Promise<Plan> {
  const stored = await getDeployment(deps.store, req.deployment);
  const prepared = prepareRecipe(stored.recipeYaml, stored.recipeLabel);
  return planRollout(deps, stored, prepared, {
    requestedTarget: req.target || stored.spec.target,
    ...(req.window ? { windowName: req.window } : {}),
  });
}

export function startRollout(
  deps: RolloutServiceDeps,
  req: RolloutRequest,
  actor: string,
): Promise<RolloutView> {
  const previous = starting.get(req.deployment) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => startNow(deps, req, actor));
  starting.set(req.deployment, run);
  void run
    .finally(() => {
      if (starting.get(req.deployment) === run) starting.delete(req.deployment);
    })
    .catch(() => undefined);
  return run;
}

async function startNow(deps: RolloutServiceDeps, req: RolloutRequest, actor: string): Promise<RolloutView> {
  const open = await listRollouts(deps.store.db, { unfinishedOnly: true, deployment: req.deployment });
  if (open[0] !== undefined)
    throw new ConvoyError(
      'ROLLOUT_EXISTS',
      `deployment ${req.deployment} already has rollout ${open[0].id} (${open[0].state}); one at a time`,
    );
  const stored = await getDeployment(deps.store, req.deployment);
  const plan = await planFor(deps, req);
  if (plan.refusals.length > 0) {
    const code = plan.hosts.some((h) => h.verdict?.decision === 'refused')
      ? 'POLICY_REFUSED'
      : plan.hosts.some((h) => !h.online)
        ? 'HOST_OFFLINE'
        : 'TARGET_UNAVAILABLE';
    throw new ConvoyError(code, `cannot start ${req.deployment}: ${plan.refusals.join('; ')}`);
  }
  if (plan.needsApproval && !req.approve) {
    const why = plan.hosts
      .filter((h) => h.verdict?.decision === 'needs-approval')
      .map((h) => `${h.hostname}: ${h.verdict?.reason ?? ''}`);
    throw new ConvoyError('APPROVAL_REQUIRED', `${why.join('; ')}; run again with --approve`);
  }
  const now = deps.clock.now();
  const stageAt = req.stageNow ? now : req.stageAtMs > 0 ? req.stageAtMs : stagingTime(plan.staging, now);
  const hosts: RolloutHostSpec[] = plan.hosts.map((h) => ({
    hostId: h.hostId,
    hostname: h.hostname,
    role: h.role,
    vars: h.vars,
    batch: h.batch,
    installed: h.installed,
  }));
  const spec: RolloutSpec = {
    deployment: req.deployment,
    recipeName: plan.recipe,
    recipeLabel: stored.recipeLabel,
    recipeYaml: stored.recipeYaml,
    requestedTarget: plan.requestedTarget,
    target: plan.target,
    vars: stored.spec.vars,
    window: plan.window,
    staging: plan.staging,
    batches: stored.spec.batches,
    hosts,
    maxFailures: plan.maxFailures,
    approved: req.approve,
    estimateMsPerHost: plan.estimateMsPerHost,
    finalizeRole: plan.finalizeRole,
  };
  const id = `r-${randomBytes(5).toString('hex')}`;
  await insertRollout(deps.store.db, { id, spec, stageAt, createdBy: actor, nowMs: deps.now() });
  deps.engine.poke();
  return rolloutView(deps, await getRollout(deps.store.db, id));
}

export interface RolloutView {
  readonly id: string;
  readonly deployment: string;
  readonly state: string;
  readonly reason: string;
  readonly paused: boolean;
  readonly recipe: string;
  readonly target: string;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly stageAt: number;
  readonly stagedAt: number | null;
  readonly windowOpenedAt: number | null;
  readonly finishedAt: number | null;
  readonly finalize: {
    readonly state: string | null;
    readonly host: string | null;
    readonly role: string | null;
  };
  readonly window: {
    readonly name: string;
    readonly open: boolean;
    readonly opensAt: number;
    readonly closesAt: number;
  };
  readonly progress: Readonly<Record<string, number>>;
  readonly batches: number;
  readonly currentBatch: number | null;
  readonly elapsedMs: number;
  readonly estimatedRemainingMs: number | null;
  readonly estimateMsPerHost: number | null;
  readonly maxFailures: number;
  readonly schedulerNow: number;
  readonly hosts: readonly Readonly<Record<string, unknown>>[];
}

export async function rolloutView(deps: RolloutServiceDeps, r: RolloutRecord): Promise<RolloutView> {
  const hosts = await rolloutHosts(deps.store.db, r.id);
  const names = new Map(r.spec.hosts.map((h) => [h.hostId, h.hostname]));
  const count = (...states: string[]): number => hosts.filter((h) => states.includes(h.state)).length;
  const pending = hosts.filter(
    (h) => !['upgraded', 'verified', 'current', 'rolled-back', 'rollback-failed'].includes(h.state),
  );
  const now = deps.clock.now();
  const w = windowState(r.spec.window, now);
  return {
    id: r.id,
    deployment: r.deployment,
    state: r.state,
    reason: r.reason,
    paused: r.paused,
    recipe: r.spec.recipeName,
    target: r.spec.target,
    createdAt: r.createdAt,
    createdBy: r.createdBy,
    stageAt: r.stageAt,
    stagedAt: r.stagedAt,
    windowOpenedAt: r.windowOpenedAt,
    finishedAt: r.finishedAt,
    finalize: { state: r.finalizeState, host: r.finalizeHost, role: r.spec.finalizeRole },
    window: { name: r.spec.window.name, open: w.open, opensAt: w.opensAtMs, closesAt: w.closesAtMs },
    progress: {
      hosts: hosts.length,
      staged: hosts.filter((h) => h.staged !== '').length,
      upgraded: count('upgraded', 'final-verifying', 'verified', 'verify-failed'),
      verified: count('verified'),
      current: count('current'),
      failed: count('stage-failed', 'rolled-back', 'rollback-failed', 'verify-failed'),
      inFlight: hosts.filter((h) => h.phase !== null).length,
      unknown: hosts.filter((h) => h.unknown).length,
    },
    batches: new Set(hosts.filter((h) => h.batch >= 0).map((h) => h.batch)).size,
    currentBatch: pending.length === 0 ? null : Math.min(...pending.map((h) => h.batch)),
    elapsedMs: (r.finishedAt ?? deps.now()) - r.createdAt,
    // Batches still to run times the per-host estimate (hosts of a batch run side by side).
    estimatedRemainingMs:
      r.spec.estimateMsPerHost === null || r.finishedAt !== null
        ? null
        : new Set(pending.filter((h) => h.batch >= 0).map((h) => h.batch)).size * r.spec.estimateMsPerHost,
    estimateMsPerHost: r.spec.estimateMsPerHost,
    maxFailures: r.spec.maxFailures,
    schedulerNow: now,
    hosts: hosts.map((h) => ({
      hostId: h.hostId,
      hostname: names.get(h.hostId) ?? '',
      role: h.role,
      batch: h.batch,
      state: h.state,
      phase: h.phase,
      installed: h.installed,
      staged: h.staged,
      unknown: h.unknown,
      reason: h.reason,
      startedAt: h.startedAt,
      finishedAt: h.finishedAt,
      downtimeMs: h.downtimeMs,
    })),
  };
}

export async function listEvents(
  deps: OperatorDeps,
  req: { rolloutId: string; hostId: string; limit: number },
): Promise<Record<string, unknown>[]> {
  const where: string[] = [];
  const params: string[] = [];
  if (req.rolloutId) {
    where.push('rollout_id = ?');
    params.push(req.rolloutId);
  }
  if (req.hostId) {
    where.push('host_id = ?');
    params.push(req.hostId);
  }
  const limit = req.limit > 0 ? Math.min(req.limit, 100_000) : 1000;
  const rows = await deps.store.db.all<{
    id: number;
    at: number;
    actor: string;
    kind: string;
    host_id: string | null;
    data_json: string;
    hash: string;
  }>(
    `SELECT * FROM (SELECT id, at, actor, kind, host_id, data_json, hash FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id DESC LIMIT ${limit}) ORDER BY id`,
    params,
  );
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    actor: r.actor,
    kind: r.kind,
    hostId: r.host_id,
    data: JSON.parse(r.data_json) as unknown,
    hash: r.hash,
  }));
}

export async function getRolloutView(deps: RolloutServiceDeps, id: string): Promise<RolloutView> {
  return rolloutView(deps, await getRollout(deps.store.db, id));
}
