/**
 * The resume table: what a phase run does when the journal says the previous run of the same
 * phase never finished. The step the agent was inside of decides, through its contract:
 *
 *   crashed between steps          -> continue   (completed steps are not run again)
 *   inside a `redo` step           -> redo       (e.g. a download: it changed nothing that matters)
 *   inside a `resume` step         -> resume     (running it again finishes it, e.g. apt upgrade)
 *   inside a `rollback` step       -> rollback   (it must not run twice: undo through rollback)
 *   inside an `exec` step          -> its `onInterrupt` (default rollback; `redo` when declared safe)
 *   inside a `reboot` step         -> resume     (it completes on a new boot id, fails on the same one)
 *   inside a step no longer known  -> rollback   (the recipe changed under us: be safe)
 */
import type { Step } from '../../shared/recipe/types';
import type { InterruptedPolicy, StepExecutor } from '../steps/step';
import type { JournalEntry } from './journal';

export interface ResumeDecision {
  readonly runId: string;
  readonly action: 'continue' | InterruptedPolicy;
  /** The step the crashed run was inside of, if any. */
  readonly stepId?: string;
  readonly reason: string;
}

export function decideResume(
  entry: JournalEntry,
  steps: readonly Step[],
  registry: ReadonlyMap<string, StepExecutor>,
): ResumeDecision {
  const current = entry.current;
  if (current === null) {
    return {
      runId: entry.runId,
      action: 'continue',
      reason: 'interrupted between steps; completed steps are kept',
    };
  }
  const step = steps.find((s) => s.id === current.stepId);
  const executor = step === undefined ? undefined : registry.get(step.type);
  if (step === undefined || executor === undefined) {
    return {
      runId: entry.runId,
      action: 'rollback',
      stepId: current.stepId,
      reason: `interrupted inside ${current.stepId}, which this recipe no longer has`,
    };
  }
  // exec is the one type whose safety depends on the program: the recipe author says.
  const action = step.type === 'exec' ? step.onInterrupt : executor.contract.interrupted;
  return {
    runId: entry.runId,
    action,
    stepId: step.id,
    reason: `interrupted inside ${step.id} (${step.type}): its contract says ${action}`,
  };
}
