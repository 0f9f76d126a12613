/**
 * The operator's rollout actions: apply, plan, start, show, act, events. Starting is serialized
 * per deployment in this process (a second start waits, then finds the first rollout), and the
 * store's unique index makes "one unfinished rollout per deployment" hold across processes.
 */
import { randomBytes } from 'node:crypto';
import { ConvoyError } from '../../shared/errors';
import { stagingTime } from '../../shared/schedule';
import type { OperatorDeps } from '../deps';
import { prepareRecipe } from '../phase/recipe';
import type { SchedulerClock } from './clock';
import { listEventViews, type EventView } from '../store/events';
import { getDeployment } from './deployment-store';
import type { RolloutEngine } from './engine';
import type { RolloutHostSpec, RolloutRecord, RolloutSpec } from './model';
import { planRollout, type Plan } from './plan';
import { getRollout, insertRollout, listRollouts, rolloutHosts } from './rollout-store';
import { buildRolloutView, type RolloutView } from './view';

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
  /** Start only: the operator read the cautions that apply (--acknowledge-cautions). */
  readonly acknowledgeCautions?: boolean;
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
  // The vendor's warnings for this jump are read before anything is stored, not after.
  if (plan.cautions.length > 0 && req.acknowledgeCautions !== true)
    throw new ConvoyError(
      'CAUTION_UNACKNOWLEDGED',
      `cannot start ${req.deployment}: ${plan.cautions.length} caution(s) apply: ${plan.cautions
        .map((c) => `CAUTION: ${c}`)
        .join('; ')}; read them, then run again with --acknowledge-cautions`,
    );
  const now = deps.clock.now();
  const stageAt = req.stageNow
    ? now
    : req.stageAtMs > 0
      ? req.stageAtMs
      : stagingTime(plan.staging, now, Math.random);
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
    cautions: plan.cautions,
  };
  const id = `r-${randomBytes(5).toString('hex')}`;
  await insertRollout(deps.store.db, { id, spec, stageAt, createdBy: actor, nowMs: deps.now() });
  deps.engine.poke();
  return rolloutView(deps, await getRollout(deps.store.db, id));
}

export async function rolloutView(deps: RolloutServiceDeps, r: RolloutRecord): Promise<RolloutView> {
  const hosts = await rolloutHosts(deps.store.db, r.id);
  return buildRolloutView(r, hosts, {
    schedulerNow: deps.clock.now(),
    now: deps.now(),
    engineTicks: deps.engine.completedTicks,
  });
}

export function listEvents(
  deps: OperatorDeps,
  req: { rolloutId: string; hostId: string; limit: number },
): Promise<EventView[]> {
  return listEventViews(deps.store.db, {
    ...(req.rolloutId ? { rolloutId: req.rolloutId } : {}),
    ...(req.hostId ? { hostId: req.hostId } : {}),
    limit: req.limit > 0 ? Math.min(req.limit, 100_000) : 1000,
  });
}

export async function getRolloutView(deps: RolloutServiceDeps, id: string): Promise<RolloutView> {
  return rolloutView(deps, await getRollout(deps.store.db, id));
}
