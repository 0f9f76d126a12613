/**
 * Runs one phase of a recipe on this host: selects the steps for the host's roles, substitutes
 * variables, and runs each step through its executor with its timeout and retries, journaling
 * before and after every step. The first failed step ends the phase.
 *
 *   begin ──▶ for each step: enter ─▶ run (attempt 1..1+retries) ─▶ leave ──▶ finish
 *                                  └─ crash here: the journal names the step (see resume table)
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../shared/logger';
import { interpolateStep } from '../../shared/recipe/interpolate';
import { conditionHolds } from '../../shared/recipe/step-condition';
import type { PhaseName, Recipe, Step } from '../../shared/recipe/types';
import { hostRebootFacts, type RebootFacts } from '../host/reboot-facts';
import type { RebootHooks, StepContext, StepExecutor, StepResult } from '../steps/step';
import { maskSecrets } from '../steps/mask';
import { agentFailpointFromEnv, type AgentFailpoint } from './failpoint';
import type { PhaseJournal } from './journal';
import { decideResume, type ResumeDecision } from './resume';
import { markPointOfNoReturn, pastPointOfNoReturn, preflight, type PointOfNoReturn } from './preflight';

export type StepRegistry = ReadonlyMap<string, StepExecutor>;

export interface PhaseRequest {
  readonly recipe: Recipe;
  readonly phase: PhaseName;
  /** The host's roles (label `role`); with `installed` and `target` in vars, decides `when`. */
  readonly roles: readonly string[];
  /** `target`, `installed`, `var.NAME` (recipe defaults already merged with overrides). */
  readonly vars: Readonly<Record<string, string>>;
  /** Stable across a retry of the same intent, so that completed steps are not run again. */
  readonly runId?: string;
  readonly dryRun?: boolean;
  /** Earlier runs (from the journal's history) whose completed results this run may read. */
  readonly readRuns?: readonly string[];
}

export interface StepRecord {
  readonly step: Step;
  /** `skipped`: its `when` did not match; `done-before`: completed by an earlier attempt of this run. */
  readonly status: 'ran' | 'skipped' | 'done-before' | 'dry-run';
  readonly result?: StepResult;
  readonly attempts: number;
}

export interface PhaseOutcome {
  readonly runId: string;
  readonly phase: PhaseName;
  readonly ok: boolean;
  readonly steps: readonly StepRecord[];
  /** Set when the run found an earlier run of this phase interrupted, and what it decided. */
  readonly resumed?: ResumeDecision | undefined;
  /** Set when a rollback was refused: the upgrade passed a step marked `pointOfNoReturn`. */
  readonly pointOfNoReturn?: PointOfNoReturn;
}

export interface RunnerDeps {
  readonly registry: StepRegistry;
  readonly journal: PhaseJournal;
  /** Everything a step needs but `vars`, `results` and `signal`, which the runner provides. */
  readonly context: Omit<StepContext, 'vars' | 'results' | 'signal'>;
  readonly log: Logger;
  /** Called as each step starts and ends, for progress output and streaming to the controller. */
  readonly onStep?: (event: { step: Step; phase: 'start' | 'end'; record?: StepRecord }) => void;
  /** Crash injection at step boundaries (chaos tests); default: CONVOY_AGENT_FAILPOINT, else none. */
  readonly failpoint?: AgentFailpoint;
  /**
   * Called when a `reboot` step has journaled its reboot, before its command runs: tell the
   * controller. The step waits for what it returns (the caller bounds it).
   */
  readonly onReboot?: (step: Step) => void | Promise<void>;
  /** The host's boot id and reboot flags; default the real ones (agent/host/reboot-facts.ts). */
  readonly rebootFacts?: RebootFacts;
}

let envFailpoint: AgentFailpoint | undefined;

function failpointOf(deps: RunnerDeps): AgentFailpoint {
  if (deps.failpoint !== undefined) return deps.failpoint;
  envFailpoint ??= agentFailpointFromEnv();
  return envFailpoint;
}

export function stepsFor(recipe: Recipe, phase: PhaseName): readonly Step[] {
  if (phase === 'finalize') return recipe.phases.finalize?.steps ?? [];
  return recipe.phases[phase];
}

/** `finalize` names the one role whose host runs it; any other host skips its steps. */
function hostRunsPhase(req: PhaseRequest): boolean {
  const role = req.phase === 'finalize' ? req.recipe.phases.finalize?.role : undefined;
  return role === undefined || req.roles.includes(role);
}

/** The step's `when`, against the host's roles and the versions the phase was sent with. */
export function appliesTo(step: Step, req: Pick<PhaseRequest, 'roles' | 'vars'>): boolean {
  const { installed, target } = req.vars;
  return conditionHolds(step.when, {
    roles: req.roles,
    ...(installed === undefined ? {} : { installed }),
    ...(target === undefined ? {} : { target }),
  });
}

export async function runPhase(req: PhaseRequest, deps: RunnerDeps): Promise<PhaseOutcome> {
  const steps = stepsFor(req.recipe, req.phase);
  const interrupted = deps.journal.interrupted();
  const resumed =
    interrupted !== null && interrupted.recipe === req.recipe.name && interrupted.phase === req.phase
      ? decideResume(interrupted, steps, deps.registry)
      : undefined;
  const runId = req.runId ?? resumed?.runId ?? randomUUID();
  if (req.dryRun === true) return dryRun(req, steps, runId);
  if (resumed?.action === 'rollback') {
    deps.log.warn('interrupted step must not run again; the phase needs its rollback', {
      step: resumed.stepId,
    });
    return { runId, phase: req.phase, ok: false, steps: [], resumed };
  }
  const held =
    req.phase === 'rollback'
      ? pastPointOfNoReturn(req.recipe, deps.context.stateDir, runsOf(req, runId), readable(req, runId, deps))
      : undefined;
  if (held !== undefined) {
    deps.log.warn('rollback refused: the host is past the point of no return', { step: held.stepId });
    return { runId, phase: req.phase, ok: false, steps: [], pointOfNoReturn: held, resumed };
  }
  const mine = hostRunsPhase(req) ? steps.filter((s) => appliesTo(s, req)) : [];
  const refused = preflight(mine, req.vars, deps.registry);
  if (refused !== undefined) {
    const record: StepRecord = { ...refused, status: 'ran', attempts: 0 };
    return { runId, phase: req.phase, ok: false, steps: [record], resumed };
  }
  deps.journal.begin(runId, req.recipe.name, req.phase, resumed !== undefined || req.runId !== undefined);
  const completed = deps.journal.current?.completed ?? {};
  // Own results last: a step id this run completed wins over an older run's.
  const results = new Map<string, StepResult>([
    ...(req.readRuns ?? []).flatMap((id) => Object.entries(deps.journal.resultsOf(id))),
    ...Object.entries(completed),
  ]);
  // Only this run's own completed steps are skipped; other runs' results are there to be read.
  const done = new Set(Object.keys(completed));
  const records: StepRecord[] = [];
  for (const step of steps) {
    const record = await runOneStep(step, { ...req, runId }, deps, results, done);
    records.push(record);
    if (record.status === 'ran' && record.result?.ok !== true) {
      deps.journal.finish('failed');
      return { runId, phase: req.phase, ok: false, steps: records, resumed };
    }
  }
  deps.journal.finish('succeeded');
  return { runId, phase: req.phase, ok: true, steps: records, resumed };
}

/** This run's id and the runs it may read. */
function runsOf(req: PhaseRequest, runId: string): string[] {
  return [...(req.readRuns ?? []), runId];
}

/** Completed results of this run and of the runs it may read (before the journal begins it). */
function readable(req: PhaseRequest, runId: string, deps: RunnerDeps): Map<string, StepResult> {
  const runs = runsOf(req, runId);
  return new Map(runs.flatMap((id) => Object.entries(deps.journal.resultsOf(id))));
}

async function runOneStep(
  raw: Step,
  req: PhaseRequest,
  deps: RunnerDeps,
  results: Map<string, StepResult>,
  done: ReadonlySet<string>,
): Promise<StepRecord> {
  if (!hostRunsPhase(req) || !appliesTo(raw, req)) return { step: raw, status: 'skipped', attempts: 0 };
  const earlier = done.has(raw.id) ? results.get(raw.id) : undefined;
  if (earlier?.ok === true) return { step: raw, status: 'done-before', result: earlier, attempts: 0 };
  const ready = substituted(raw, req.vars);
  if ('error' in ready) return { step: raw, status: 'ran', result: ready.error, attempts: 0 };
  const step = ready.step;
  const executor = deps.registry.get(step.type);
  if (executor === undefined) throw new Error(`no executor registered for step type ${step.type}`);
  deps.onStep?.({ step, phase: 'start' });
  const failpoint = failpointOf(deps);
  let result: StepResult | undefined;
  let attempt = 0;
  while (attempt <= step.retries && result?.ok !== true) {
    attempt += 1;
    // Written before the step starts: from here on, the rollback is refused (preflight.ts).
    if (step.pointOfNoReturn === true && req.phase !== 'rollback')
      markPointOfNoReturn(deps.context.stateDir, { runId: req.runId ?? '', stepId: step.id });
    deps.journal.enter(step.id, attempt, deps.context.now());
    failpoint('before', step.id);
    result = await attemptStep(step, executor, req, deps, results);
    if (failpoint('fail', step.id) === true) result = injectedFailure(result);
    deps.journal.leave(step.id, result);
    failpoint('after', step.id);
    if (!result.ok) deps.log.warn('step failed', { step: step.id, attempt, code: result.error?.code });
  }
  const final = result as StepResult;
  results.set(step.id, final);
  const record: StepRecord = { step, status: 'ran', result: final, attempts: attempt };
  deps.onStep?.({ step, phase: 'end', record });
  return record;
}

/** The result a `fail:STEP` failpoint reports instead of the step's own (chaos tests only). */
function injectedFailure(real: StepResult): StepResult {
  const message = 'injected failure (CONVOY_AGENT_FAILPOINT fail:STEP) after the step did its work';
  return { ...real, ok: false, error: { code: 'STEP_FAILED', message } };
}

/** One attempt, bounded by the step's timeout; a throw from an executor is a bug, reported as such. */
async function attemptStep(
  step: Step,
  executor: StepExecutor,
  req: PhaseRequest,
  deps: RunnerDeps,
  results: ReadonlyMap<string, StepResult>,
): Promise<StepResult> {
  const controller = new AbortController();
  const started = deps.context.now();
  const timer = setTimeout(
    () => controller.abort(new Error(`step timed out after ${step.timeoutMs} ms`)),
    step.timeoutMs,
  );
  try {
    const ctx: StepContext = {
      ...deps.context,
      vars: req.vars,
      results,
      signal: controller.signal,
      ...(step.type === 'reboot' ? { reboot: rebootHooks(step, deps) } : {}),
    };
    return await executor.run(step, ctx);
  } catch (err) {
    const message = maskSecrets(
      err instanceof Error ? err.message : String(err),
      deps.context.secrets.values(),
    );
    const code = controller.signal.aborted ? 'STEP_TIMEOUT' : 'STEP_FAILED';
    return { ok: false, error: { code, message }, durationMs: deps.context.now() - started, outputTail: '' };
  } finally {
    clearTimeout(timer);
  }
}

/** A reboot step's view of the journal: the reboot it journaled before the agent went, if any. */
function rebootHooks(step: Step, deps: RunnerDeps): RebootHooks {
  const journaled = deps.journal.current?.reboot;
  return {
    facts: deps.rebootFacts ?? hostRebootFacts(),
    ...(journaled === undefined ? {} : { journaled }),
    announce: async (bootId) => {
      deps.journal.markReboot(step.id, bootId, deps.context.now());
      await deps.onReboot?.(step);
    },
  };
}

/** Placeholders are filled in when a step is reached: a phase fails only on a step that runs. */
function substituted(
  step: Step,
  vars: Readonly<Record<string, string>>,
): { step: Step } | { error: StepResult } {
  try {
    return { step: interpolateStep(step, vars) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      error: {
        ok: false,
        error: { code: 'RECIPE_INVALID', message: `${step.id}: ${message}` },
        durationMs: 0,
        outputTail: '',
      },
    };
  }
}

/** Dry runs show each step as it would run; a step whose placeholders have no value shows why. */
function dryRun(req: PhaseRequest, steps: readonly Step[], runId: string): PhaseOutcome {
  const records = steps.map((raw): StepRecord => {
    if (!hostRunsPhase(req) || !appliesTo(raw, req)) return { step: raw, status: 'skipped', attempts: 0 };
    const ready = substituted(raw, req.vars);
    return 'error' in ready
      ? { step: raw, status: 'dry-run', result: ready.error, attempts: 0 }
      : { step: ready.step, status: 'dry-run', attempts: 0 };
  });
  return { runId, phase: req.phase, ok: records.every((r) => r.result?.ok !== false), steps: records };
}
