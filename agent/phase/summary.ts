/** What the agent tells the controller about its phase journal in a status answer (shared/phase-contract.ts). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PhaseJournalSummary } from '../../shared/phase-contract';
import { PHASE_JOURNAL_FILE, PhaseJournal } from './journal';

export const PHASE_STATE_DIR = 'phase';

// The run this process is executing now, so that a status answer can tell a run in progress
// from one a crash interrupted (both say `running` in the journal).
let activeRunId: string | undefined;

export function markActiveRun(runId: string | undefined): void {
  activeRunId = runId;
}

export function activeRun(): string | undefined {
  return activeRunId;
}

/** Null when this host never ran a phase. */
export function phaseJournalSummary(stateDir: string): PhaseJournalSummary | null {
  const dir = path.join(stateDir, PHASE_STATE_DIR);
  if (!existsSync(path.join(dir, PHASE_JOURNAL_FILE))) return null;
  const entry = PhaseJournal.open(dir).current;
  if (entry === null) return null;
  const live = entry.state === 'running' && entry.runId === activeRunId;
  return {
    runId: entry.runId,
    recipe: entry.recipe,
    phase: entry.phase,
    state: entry.state === 'running' && !live ? 'interrupted' : entry.state,
    step: entry.current?.stepId ?? null,
    completed: Object.keys(entry.completed),
  };
}
