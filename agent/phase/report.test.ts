/**
 * The agent's answers parse under the shared phase contract, as the controller parses them: a
 * step of every registered type, every status, a failure, a resumed run, and the journal summary
 * of a status answer.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  parsePhaseJournalSummary,
  parsePhaseReport,
  parseStepProgress,
  type Parsed,
} from '../../shared/phase-contract';
import type { Step } from '../../shared/recipe/types';
import { formatProblem } from '../../shared/schema';
import { STEP_REGISTRY } from '../steps';
import { PhaseJournal } from './journal';
import { phaseReport, stepReport } from './report';
import type { PhaseOutcome, StepRecord } from './runner';
import { markActiveRun, PHASE_STATE_DIR, phaseJournalSummary } from './summary';

const step = (id: string, type: string): Step =>
  ({ id, type, source: 'test', timeoutMs: 1000, retries: 0 }) as unknown as Step;

const RAN: StepRecord = {
  step: step('install', 'apt'),
  status: 'ran',
  attempts: 2,
  result: { ok: true, durationMs: 12, outputTail: 'done\n', versions: ['1.2.3'], exitCode: 0 },
};
const FAILED: StepRecord = {
  step: step('backup', 'backup'),
  status: 'ran',
  attempts: 1,
  result: {
    ok: false,
    durationMs: 3,
    outputTail: '',
    exitCode: null,
    error: { code: 'STEP_FAILED', message: 'tar exited 2' },
    data: { ignored: true },
  },
};
const SKIPPED: StepRecord = { step: step('db', 'exec'), status: 'skipped', attempts: 0 };

function valueOf<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw new Error(parsed.problems.map(formatProblem).join('; '));
  return parsed.value;
}

describe('phase report (agent side of the phase contract)', () => {
  it.each([...STEP_REGISTRY.keys()])('reports a %s step in a form the controller parses', (type) => {
    const record = { ...RAN, step: step(`a-${type}`, type) };
    expect(valueOf(parseStepProgress({ runId: 'r1', step: stepReport(record) })).step).toEqual(
      stepReport(record),
    );
  });

  it.each([
    ['failed', FAILED],
    ['skipped', SKIPPED],
    ['done-before', { ...RAN, status: 'done-before' } as const],
    ['dry-run', { ...SKIPPED, status: 'dry-run' } as const],
  ])('reports a %s step in a form the controller parses', (_what, record: StepRecord) => {
    expect(valueOf(parseStepProgress({ runId: 'r1', step: stepReport(record) })).step).toEqual(
      stepReport(record),
    );
  });

  it('reports a resumed check with the versions it read, as the controller parses it', () => {
    const outcome: PhaseOutcome = {
      runId: 'r1',
      phase: 'check',
      ok: false,
      steps: [RAN, FAILED, SKIPPED],
      resumed: { runId: 'r1', action: 'redo', stepId: 'install', reason: 'interrupted inside install' },
    };
    const report = phaseReport(
      outcome,
      { recipe: 'demo', digest: 'f'.repeat(64) },
      {
        installed: '1.2.2',
        available: ['1.2.3'],
      },
    );
    // The agent's envelope adds `command` to every result body.
    expect(valueOf(parsePhaseReport({ command: 'phase', ...report }))).toEqual(report);
    expect(report).toMatchObject({ installed: '1.2.2', available: ['1.2.3'], steps: [{}, {}, {}] });
  });

  it('reports a phase that read no versions and resumed nothing with nulls', () => {
    const outcome: PhaseOutcome = { runId: 'r1', phase: 'upgrade', ok: true, steps: [RAN] };
    const report = phaseReport(outcome, { recipe: 'demo', digest: 'f'.repeat(64) }, {});
    expect(report).toMatchObject({ installed: null, available: null, resumed: null });
    expect(valueOf(parsePhaseReport(report))).toEqual(report);
  });

  describe('the journal summary of a status answer', () => {
    let stateDir = '';
    beforeEach(() => {
      stateDir = mkdtempSync(path.join(os.tmpdir(), 'convoy-report-'));
      mkdirSync(path.join(stateDir, PHASE_STATE_DIR));
    });
    afterEach(() => {
      markActiveRun(undefined);
      rmSync(stateDir, { recursive: true, force: true });
    });

    it('is null, as the controller parses it, on a host that never ran a phase', () => {
      expect(valueOf(parsePhaseJournalSummary(phaseJournalSummary(stateDir)))).toBeNull();
    });

    it.each([
      ['running', 'r1'],
      ['interrupted', undefined],
    ])('says %s inside a step, as the controller parses it', (state, active) => {
      const journal = PhaseJournal.open(path.join(stateDir, PHASE_STATE_DIR));
      journal.begin('r1', 'demo', 'upgrade', false);
      journal.leave('backup', { ok: true, durationMs: 1, outputTail: '' });
      journal.enter('install', 1, 5);
      markActiveRun(active);
      const summary = phaseJournalSummary(stateDir);
      expect(valueOf(parsePhaseJournalSummary(summary))).toEqual({
        runId: 'r1',
        recipe: 'demo',
        phase: 'upgrade',
        state,
        step: 'install',
        completed: ['backup'],
      });
    });
  });
});
