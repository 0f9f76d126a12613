/**
 * The phase journal: which phase run is in progress, which steps finished (with their
 * results), and which step the agent was inside of. Written with temp file + fsync + rename
 * *before* a step starts and after it ends, so that after a crash the agent knows exactly where
 * it stopped (style.md §10).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { PhaseName } from '../../shared/recipe/types';
import type { JournaledReboot, StepResult } from '../steps/step';
import { fsyncDir } from '../seq-journal';

export const PHASE_JOURNAL_FILE = 'phase-journal.json';

export interface JournalEntry {
  /** Identifies one run of one phase (a rollout's command id, or a local run's id). */
  readonly runId: string;
  readonly recipe: string;
  readonly phase: PhaseName;
  /** Results of the steps that completed, by step id, in order. */
  readonly completed: Readonly<Record<string, StepResult>>;
  /** The step the agent entered and has not left: set before it runs, cleared after. */
  readonly current: {
    readonly stepId: string;
    readonly attempt: number;
    readonly startedAtMs: number;
  } | null;
  /** `running` until the phase ends; then how it ended. */
  readonly state: 'running' | 'succeeded' | 'failed';
  /**
   * A reboot step that started its reboot (agent/steps/reboot.ts): the boot id it rebooted from
   * and when. Written before the reboot command runs and kept until that step leaves, across
   * resumed runs, so that the agent after the boot knows the reboot happened (a new boot id) and
   * never reboots a second time for the same step.
   */
  readonly reboot?: JournaledReboot;
  /**
   * Completed steps of recent earlier runs, output dropped, so that a later phase of the same run
   * (a rollback after another run came between) still finds the backup its upgrade took.
   */
  readonly history?: Readonly<Record<string, Readonly<Record<string, StepResult>>>>;
}

/** Runs remembered in `history`; older ones are forgotten first. */
const HISTORY_RUNS = 20;

export class PhaseJournal {
  private constructor(
    private readonly file: string,
    private entry: JournalEntry | null,
  ) {}

  static open(stateDir: string): PhaseJournal {
    const file = path.join(stateDir, PHASE_JOURNAL_FILE);
    let entry: JournalEntry | null = null;
    try {
      entry = JSON.parse(readFileSync(file, 'utf8')) as JournalEntry;
    } catch (err) {
      // A missing journal is a fresh host; an unreadable one cannot be trusted either way, and
      // rename() makes a torn file impossible, so treat both as "nothing in progress".
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') entry = null;
    }
    return new PhaseJournal(file, entry);
  }

  get current(): JournalEntry | null {
    return this.entry;
  }

  /** Completed results of an earlier run still in the history (output dropped), or none. */
  resultsOf(runId: string): Readonly<Record<string, StepResult>> {
    if (this.entry?.runId === runId) return this.entry.completed;
    return this.entry?.history?.[runId] ?? {};
  }

  /** The step a crashed run was inside of, if the last run did not finish. */
  interrupted(): JournalEntry | null {
    return this.entry !== null && this.entry.state === 'running' ? this.entry : null;
  }

  begin(runId: string, recipe: string, phase: PhaseName, keepCompleted: boolean): void {
    const history = { ...(this.entry?.history ?? {}) };
    if (this.entry !== null && this.entry.runId !== runId)
      history[this.entry.runId] = withoutOutput(this.entry.completed);
    const earlier = this.entry?.runId === runId ? this.entry.completed : history[runId];
    delete history[runId];
    const kept = Object.keys(history).slice(-HISTORY_RUNS);
    const trimmed = Object.fromEntries(kept.map((id) => [id, history[id] ?? {}]));
    const completed = keepCompleted ? (earlier ?? {}) : {};
    // A reboot in progress belongs to its run: the same run resumed after the boot keeps it.
    const reboot = keepCompleted && this.entry?.runId === runId ? this.entry.reboot : undefined;
    this.write({
      runId,
      recipe,
      phase,
      completed,
      current: null,
      state: 'running',
      history: trimmed,
      ...(reboot === undefined ? {} : { reboot }),
    });
  }

  enter(stepId: string, attempt: number, nowMs: number): void {
    this.write({ ...this.must(), current: { stepId, attempt, startedAtMs: nowMs } });
  }

  /** Records, before the command runs, that `stepId` reboots the host from boot `bootId`. */
  markReboot(stepId: string, bootId: string, nowMs: number): void {
    this.write({ ...this.must(), reboot: { stepId, bootId, atMs: nowMs } });
  }

  leave(stepId: string, result: StepResult): void {
    const { reboot, ...entry } = this.must();
    const completed = result.ok ? { ...entry.completed, [stepId]: result } : entry.completed;
    const kept = reboot !== undefined && reboot.stepId !== stepId ? { reboot } : {};
    this.write({ ...entry, ...kept, completed, current: null });
  }

  finish(state: 'succeeded' | 'failed'): void {
    const { reboot: _done, ...entry } = this.must();
    this.write({ ...entry, current: null, state });
  }

  private must(): JournalEntry {
    if (this.entry === null) throw new Error('phase journal used before begin()');
    return this.entry;
  }

  private write(entry: JournalEntry): void {
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(entry));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    fsyncDir(path.dirname(this.file));
    this.entry = entry;
  }
}

function withoutOutput(completed: Readonly<Record<string, StepResult>>): Record<string, StepResult> {
  return Object.fromEntries(Object.entries(completed).map(([id, r]) => [id, { ...r, outputTail: '' }]));
}
