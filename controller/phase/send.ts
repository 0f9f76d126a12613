/**
 * Sending one `phase` command to one host's agent and recording how it ended: the phase run's
 * row (written ahead by the caller) gets its end, and every step result the agent streams or
 * answers is stored as it arrives. Used by `convoy phase run`, the rollout engine and the planner.
 */
import type { PhaseName, Recipe } from '../../shared/recipe/types';
import {
  parsePhaseReport,
  parseStepProgress,
  type PhaseCommand,
  type PhaseReport,
  type StepReport,
} from '../../shared/phase-contract';
import { formatProblem } from '../../shared/schema';
import type { WirePhaseReport, WireStepReport } from '../../proto/wire';
import type { OperatorDeps } from '../deps';
import { recordPhaseRunEnd, recordStepResult } from '../store/phase-runs';
import type { HostRecord } from '../store/store';
import type { PreparedRecipe } from './recipe';

type PointOfNoReturnReport = NonNullable<PhaseReport['pointOfNoReturn']>;

/** The longest a phase may be given, whatever its steps say. */
export const MAX_PHASE_TIMEOUT_MS = 24 * 3_600_000;

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
  | {
      readonly kind: 'answered';
      readonly report: WirePhaseReport;
      /** The agent refused a rollback past the point of no return (not on the wire report). */
      readonly pointOfNoReturn?: PointOfNoReturnReport;
    }
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
  const body: PhaseCommand = {
    runId: call.runId,
    phase: call.phase,
    recipe: prepared.data,
    digest,
    vars: { ...call.vars },
    roles: [...call.roles],
    readRuns: [...(call.readRuns ?? [])],
  };
  const onProgress = (_hostId: string, progress: Readonly<Record<string, unknown>>): void => {
    const parsed = parseStepProgress(progress);
    if (!parsed.ok) {
      deps.log.warn('dropped a malformed step progress from the agent', {
        hostId: host.id,
        phaseRunId: call.phaseRunId,
        problems: parsed.problems.map(formatProblem),
      });
      return;
    }
    recordStepResult(deps.store.db, call.phaseRunId, toWireStep(parsed.value.step)).catch((err: unknown) =>
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
  const parsed = parsePhaseReport(outcome.result.body);
  if (!parsed.ok) {
    // The agent answered, signed, with something this controller cannot read: the phase ran
    // there, but nobody can say how. It counts as failed (a rollout rolls the host back).
    await recordPhaseRunEnd(deps.store.db, { ...end, state: 'failed', resumedJson: null, steps: [] });
    const message = `the agent's phase report is malformed: ${parsed.problems.map(formatProblem).join('; ')}`;
    return { kind: 'refused', code: 'PROTOCOL_VIOLATION', message };
  }
  const report = parsed.value;
  const steps = report.steps.map(toWireStep);
  const resumed = report.resumed === null ? '' : JSON.stringify(report.resumed);
  await recordPhaseRunEnd(deps.store.db, {
    ...end,
    state: report.ok ? 'succeeded' : 'failed',
    resumedJson: resumed || null,
    steps,
  });
  return {
    kind: 'answered',
    ...(report.pointOfNoReturn == null ? {} : { pointOfNoReturn: report.pointOfNoReturn }),
    report: {
      runId: call.runId,
      hostId: host.id,
      recipe: recipe.name,
      digest,
      phase: call.phase,
      ok: report.ok,
      resumed,
      steps,
      seq: answer?.seq ?? 0,
      phaseRunId: call.phaseRunId,
      installed: report.installed ?? '',
      available: report.available ?? [],
    },
  };
}

/** The longest a phase can legitimately take: every step's timeout times its attempts, plus slack. */
function phaseBoundMs(recipe: Recipe, phase: PhaseName): number {
  const steps = phase === 'finalize' ? (recipe.phases.finalize?.steps ?? []) : recipe.phases[phase];
  const total = steps.reduce((sum, s) => sum + s.timeoutMs * (s.retries + 1), 0);
  return Math.min(MAX_PHASE_TIMEOUT_MS, total + 30_000);
}

/** A step report (checked and bounded by the shared contract) as the store and the CLI take it. */
function toWireStep(step: StepReport): WireStepReport {
  return {
    stepId: step.stepId,
    type: step.type,
    status: step.status,
    attempts: step.attempts,
    ok: step.ok === true,
    exitCode: step.exitCode ?? -1,
    durationMs: step.durationMs,
    outputTail: step.outputTail,
    backupId: step.backupId ?? '',
    versions: step.versions,
    errorCode: step.error?.code ?? '',
    errorMessage: step.error?.message ?? '',
  };
}
