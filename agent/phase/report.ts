/**
 * The agent's end of the phase contract (shared/phase-contract.ts): what it answers the controller
 * for a step and for a whole phase run, built from the runner's records.
 */
import type { PhaseReport, StepReport } from '../../shared/phase-contract';
import type { Step } from '../../shared/recipe/types';
import type { VersionsSeen } from './versions';
import type { PhaseOutcome, StepRecord } from './runner';

/** What the controller stores per step: bounded, masked output and the facts a later step needs. */
export function stepReport(r: StepRecord): StepReport {
  const res = r.result;
  return {
    stepId: r.step.id,
    type: r.step.type,
    status: r.status,
    attempts: r.attempts,
    ok: res?.ok ?? null,
    exitCode: res?.exitCode ?? null,
    durationMs: res?.durationMs ?? 0,
    outputTail: res?.outputTail ?? '',
    backupId: res?.backupId ?? null,
    versions: [...(res?.versions ?? [])],
    error: res?.error === undefined ? null : { code: res.error.code, message: res.error.message },
  };
}

/** The progress a reboot step sends before its command runs: the host is about to go away. */
export function rebootingReport(step: Step): StepReport {
  return {
    stepId: step.id,
    type: step.type,
    status: 'rebooting',
    attempts: 1,
    ok: null,
    exitCode: null,
    durationMs: 0,
    outputTail: 'rebooting the host; the step completes after the boot\n',
    backupId: null,
    versions: [],
    error: null,
  };
}

/** The result of a `phase` command: how the run went, and the versions it read. */
export function phaseReport(
  outcome: PhaseOutcome,
  sent: { readonly recipe: string; readonly digest: string },
  seen: VersionsSeen,
): PhaseReport {
  const resumed = outcome.resumed;
  return {
    runId: outcome.runId,
    phase: outcome.phase,
    recipe: sent.recipe,
    digest: sent.digest,
    ok: outcome.ok,
    installed: seen.installed ?? null,
    available: seen.available === undefined ? null : [...seen.available],
    resumed:
      resumed === undefined
        ? null
        : {
            runId: resumed.runId,
            action: resumed.action,
            reason: resumed.reason,
            ...(resumed.stepId === undefined ? {} : { stepId: resumed.stepId }),
          },
    pointOfNoReturn: outcome.pointOfNoReturn === undefined ? null : { ...outcome.pointOfNoReturn },
    steps: outcome.steps.map(stepReport),
  };
}
