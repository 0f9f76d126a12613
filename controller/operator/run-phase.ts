/**
 * RunPhase: compile the recipe, record the run (write-ahead), send the signed `phase` command
 * to the host's agent, and store every step's result when it answers.
 */
import { randomUUID } from 'node:crypto';
import { sha256Hex } from '../../shared/envelope';
import { ConvoyError, isErrorCode, type ErrorCode } from '../../shared/errors';
import { compileRecipeData, RecipeError } from '../../shared/recipe/compile';
import { placeholderValues } from '../../shared/recipe/interpolate';
import { readRecipeYaml } from '../../shared/recipe/yaml-source';
import { PHASES, type PhaseName, type Recipe } from '../../shared/recipe/types';
import type { WirePhaseReport, WireRunPhaseRequest, WireStepReport } from '../../proto/wire';
import { recordPhaseRunEnd, recordPhaseRunStart, recordStepResult } from '../store/phase-runs';
import type { HostRecord } from '../store/store';
import type { OperatorDeps } from './handlers';

const MAX_PHASE_TIMEOUT_MS = 24 * 3_600_000;

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

/** A recipe compiled once on the controller, with the digest the agent checks it against. */
export interface PreparedRecipe {
  readonly recipe: Recipe;
  readonly data: unknown;
  readonly digest: string;
}

export function prepareRecipe(yaml: string, label: string): PreparedRecipe {
  const source = readRecipeYaml(yaml);
  if (source.data === undefined) throw new RecipeError(label, source.problems);
  const recipe = compileRecipeData(source.data, label, source.problems);
  return { recipe, data: source.data, digest: sha256Hex(Buffer.from(JSON.stringify(source.data))) };
}

export interface PhaseCall {
  readonly phase: PhaseName;
  readonly runId: string;
  /** Its phase_runs row must already be written (write-ahead); sendPhase records how it ends. */
  readonly phaseRunId: string;
  readonly roles: readonly string[];
  /** Placeholder values: `target`, `installed`, `var.NAME`. */
  readonly vars: Readonly<Record<string, string>>;
  /** 0: the sum of the phase's step bounds. */
  readonly timeoutMs: number;
  readonly rolloutId?: string;
  /** Earlier runs on this host whose step results the phase may read (see relatedRunIds). */
  readonly readRuns?: readonly string[];
}

/**
 * How a phase command ended: `answered` (the agent ran it; `report.ok` says how it went),
 * `refused` (the agent would not run it: busy, bad recipe...) or `lost` (offline, timed out,
 * stream gone: the agent may still be running it, its journal will tell).
 */
export type PhaseCallResult =
  | { readonly kind: 'answered'; readonly report: WirePhaseReport }
  | { readonly kind: 'refused'; readonly code: string; readonly message: string }
  | { readonly kind: 'lost'; readonly code: string; readonly message: string };

export async function sendPhase(
  deps: Pick<OperatorDeps, 'store' | 'gateway' | 'log' | 'now'>,
  host: HostRecord,
  prepared: PreparedRecipe,
  call: PhaseCall,
): Promise<PhaseCallResult> {
  const { recipe, digest } = prepared;
  const timeoutMs =
    call.timeoutMs > 0 ? Math.min(call.timeoutMs, MAX_PHASE_TIMEOUT_MS) : phaseBoundMs(recipe, call.phase);
  const body = {
    runId: call.runId,
    phase: call.phase,
    recipe: prepared.data,
    digest,
    vars: { ...call.vars },
    roles: [...call.roles],
    ...(call.readRuns === undefined || call.readRuns.length === 0 ? {} : { readRuns: [...call.readRuns] }),
  };
  const onProgress = (_hostId: string, progress: Readonly<Record<string, unknown>>): void => {
    recordStepResult(deps.store.db, call.phaseRunId, stepFromAgent(progress['step'])).catch((err: unknown) =>
      deps.log.error('could not record a streamed step result', {
        hostId: host.id,
        phaseRunId: call.phaseRunId,
        err,
      }),
    );
  };
  const [answer] = await deps.gateway.dispatch([host], 'phase', body, timeoutMs, undefined, onProgress);
  const outcome = answer?.outcome;
  const end = {
    id: call.phaseRunId,
    hostId: host.id,
    seq: answer?.seq ?? 0,
    nowMs: deps.now(),
    rolloutId: call.rolloutId,
  };
  if (outcome === undefined || outcome.outcome !== 'ok') {
    await recordPhaseRunEnd(deps.store.db, { ...end, state: 'lost', resumedJson: null, steps: [] });
    if (outcome?.outcome === 'refused')
      return { kind: 'refused', code: outcome.code, message: outcome.message };
    return { kind: 'lost', code: outcome?.code ?? 'HOST_OFFLINE', message: outcome?.message ?? 'no answer' };
  }
  const result = outcome.result.body;
  const steps = Array.isArray(result['steps']) ? result['steps'].map(stepFromAgent) : [];
  const ok = result['ok'] === true;
  const resumed =
    result['resumed'] === null || result['resumed'] === undefined ? '' : JSON.stringify(result['resumed']);
  await recordPhaseRunEnd(deps.store.db, {
    ...end,
    state: ok ? 'succeeded' : 'failed',
    resumedJson: resumed || null,
    steps,
  });
  return {
    kind: 'answered',
    report: {
      runId: call.runId,
      hostId: host.id,
      recipe: recipe.name,
      digest,
      phase: call.phase,
      ok,
      resumed,
      steps,
      seq: answer?.seq ?? 0,
      phaseRunId: call.phaseRunId,
      installed: typeof result['installed'] === 'string' ? result['installed'].slice(0, 100) : '',
      available: Array.isArray(result['available'])
        ? result['available'].filter((v): v is string => typeof v === 'string').slice(0, 500)
        : [],
    },
  };
}

/** The longest a phase can legitimately take: every step's timeout times its attempts, plus slack. */
function phaseBoundMs(recipe: Recipe, phase: PhaseName): number {
  const steps = phase === 'finalize' ? (recipe.phases.finalize?.steps ?? []) : recipe.phases[phase];
  const total = steps.reduce((sum, s) => sum + s.timeoutMs * (s.retries + 1), 0);
  return Math.min(MAX_PHASE_TIMEOUT_MS, total + 30_000);
}

/** Agent answers are data: every field is checked and bounded before it is stored. */
function stepFromAgent(value: unknown): WireStepReport {
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const str = (x: unknown, max = 200): string => (typeof x === 'string' ? x.slice(0, max) : '');
  const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const error = (typeof v['error'] === 'object' && v['error'] !== null ? v['error'] : {}) as Record<
    string,
    unknown
  >;
  return {
    stepId: str(v['stepId']),
    type: str(v['type']),
    status: str(v['status']),
    attempts: num(v['attempts']),
    ok: v['ok'] === true,
    exitCode: typeof v['exitCode'] === 'number' ? v['exitCode'] : -1,
    durationMs: num(v['durationMs']),
    outputTail: str(v['outputTail'], 16_384),
    backupId: str(v['backupId']),
    versions: Array.isArray(v['versions'])
      ? v['versions'].filter((x): x is string => typeof x === 'string').slice(0, 100)
      : [],
    errorCode: str(error['code']),
    errorMessage: str(error['message'], 2000),
  };
}
