/**
 * RunPhase: compile the recipe, check a mutating phase against the policy of the host's
 * deployments and the lock of a running rollout (rollout/phase-run-policy.ts), record the run
 * (write-ahead), send the signed `phase` command to the host's agent, and store every step's
 * result when it answers.
 */
import { randomUUID } from 'node:crypto';
import { ConvoyError, isErrorCode, type ErrorCode } from '../../shared/errors';
import { placeholderValues } from '../../shared/recipe/interpolate';
import { PHASES, type PhaseName } from '../../shared/recipe/types';
import type { WirePhaseReport, WireRunPhaseRequest } from '../../proto/wire';
import type { OperatorDeps } from '../deps';
import { prepareRecipe } from '../phase/recipe';
import { sendPhase } from '../phase/send';
import { listDeployments } from '../rollout/deployment-store';
import {
  decidePhaseRun,
  deploymentHasHost,
  MUTATING_PHASES,
  type HostDeployment,
} from '../rollout/phase-run-policy';
import { effectivePolicy } from '../rollout/plan';
import { hostApps, rolloutsHoldingHost } from '../rollout/rollout-store';
import { appendEvent } from '../store/events';
import { recordPhaseRunStart } from '../store/phase-runs';
import type { HostRecord } from '../store/store';

export async function runPhaseOnHost(
  deps: OperatorDeps,
  host: HostRecord,
  req: WireRunPhaseRequest,
): Promise<WirePhaseReport> {
  if (!(PHASES as readonly string[]).includes(req.phase)) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `phase ${JSON.stringify(req.phase)}: use one of ${PHASES.join(', ')}`,
      { field: 'phase' },
    );
  }
  const phase = req.phase as PhaseName;
  const prepared = prepareRecipe(req.recipeYaml, req.recipeLabel || 'recipe');
  const { recipe } = prepared;
  const unknownVar = Object.keys(req.vars).find((k) => !Object.prototype.hasOwnProperty.call(recipe.vars, k));
  if (unknownVar !== undefined) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `var ${JSON.stringify(unknownVar)}: ${recipe.name} declares no such var`,
      { field: 'vars' },
    );
  }
  const versions = {
    ...(req.target ? { target: req.target } : {}),
    ...(req.installed ? { installed: req.installed } : {}),
  };
  const vars = placeholderValues(recipe, versions, req.vars);
  if (req.runId !== '' && !/^[A-Za-z0-9_-]{1,64}$/.test(req.runId)) {
    throw new ConvoyError('INVALID_ARGUMENT', 'run id must be 1-64 letters, digits, - or _', {
      field: 'run_id',
    });
  }
  await checkPhaseRunPolicy(deps, host, req);
  const runId = req.runId || randomUUID();
  const phaseRunId = randomUUID();
  await recordPhaseRunStart(deps.store.db, {
    id: phaseRunId,
    runId,
    hostId: host.id,
    recipe: recipe.name,
    digest: prepared.digest,
    phase,
    nowMs: deps.now(),
  });
  const roles = host.labels['role'] === undefined ? [] : [host.labels['role']];
  const call = await sendPhase(deps, host, prepared, {
    phase,
    runId,
    phaseRunId,
    roles,
    vars,
    timeoutMs: req.timeoutMs,
  });
  if (call.kind === 'refused')
    throw new ConvoyError('COMMAND_REFUSED', `${call.code}: ${call.message}`, { hostId: host.id });
  if (call.kind === 'lost') {
    const code: ErrorCode = isErrorCode(call.code) ? call.code : 'HOST_OFFLINE';
    throw new ConvoyError(code, call.message, { hostId: host.id });
  }
  return call.report;
}

/**
 * A mutating phase on a host of a deployment: the policy and any running rollout's lock, or the
 * operator's override, recorded in the audit log with its reason before anything is sent.
 */
async function checkPhaseRunPolicy(
  deps: OperatorDeps,
  host: HostRecord,
  req: WireRunPhaseRequest,
): Promise<void> {
  if (!MUTATING_PHASES.has(req.phase)) return;
  const apps = (await hostApps(deps.store.db)).get(host.id) ?? [];
  const deployments: HostDeployment[] = (await listDeployments(deps.store))
    .filter((d) => deploymentHasHost(d.spec, host))
    .map((d) => ({
      name: d.spec.name,
      policy: effectivePolicy(prepareRecipe(d.recipeYaml, d.recipeLabel).recipe, d.spec.policy),
      installed: req.installed || (apps.find((a) => a.deployment === d.spec.name)?.installed ?? ''),
    }));
  const verdict = decidePhaseRun({
    phase: req.phase,
    target: req.target,
    approve: req.approve === true,
    override: req.override === true,
    reason: req.reason ?? '',
    deployments,
    holds: await rolloutsHoldingHost(deps.store.db, host.id),
  });
  if (verdict.kind === 'refused')
    throw new ConvoyError(verdict.code, `phase ${req.phase} on ${host.id}: ${verdict.message}`, {
      hostId: host.id,
      phase: req.phase,
    });
  if (verdict.kind !== 'overridden') return;
  await deps.store.db.write((tx) =>
    appendEvent(tx, {
      at: deps.now(),
      actor: 'operator',
      kind: 'phase.override',
      hostId: host.id,
      data: { phase: req.phase, target: req.target, reason: req.reason, wentAround: verdict.refusals },
    }),
  );
  deps.log.warn('phase run goes around the rollout policy', {
    hostId: host.id,
    phase: req.phase,
    reason: req.reason,
  });
}
