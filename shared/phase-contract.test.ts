import {
  parsePhaseCommand,
  parsePhaseJournalSummary,
  parsePhaseReport,
  parseStepProgress,
  REPORT_LIMITS,
  type Parsed,
} from './phase-contract';
import { formatProblem } from './schema';

const DIGEST = 'a'.repeat(64);

const COMMAND = {
  runId: 'r-upgrade_1',
  phase: 'upgrade',
  recipe: { name: 'demo', phases: {} },
  digest: DIGEST,
  vars: { target: '1.2.3', 'var.port': '8080' },
  roles: ['core'],
  readRuns: ['r-stage'],
};

const STEP = {
  stepId: 'install',
  type: 'apt',
  status: 'ran',
  attempts: 1,
  ok: false,
  exitCode: 100,
  durationMs: 1234,
  outputTail: 'E: Unable to locate package\n',
  backupId: null,
  versions: ['1.2.3'],
  error: { code: 'STEP_FAILED', message: 'apt-get exited 100' },
};

const SKIPPED = {
  ...STEP,
  stepId: 'db',
  status: 'skipped',
  attempts: 0,
  ok: null,
  exitCode: null,
  error: null,
};

const REPORT = {
  command: 'phase',
  runId: 'r-upgrade_1',
  phase: 'check',
  recipe: 'demo',
  digest: DIGEST,
  ok: false,
  installed: '1.2.2',
  available: ['1.2.2', '1.2.3'],
  resumed: { runId: 'r-upgrade_1', action: 'redo', stepId: 'install', reason: 'interrupted inside install' },
  steps: [STEP, SKIPPED],
};

const JOURNAL = {
  runId: 'r-upgrade_1',
  recipe: 'demo',
  phase: 'upgrade',
  state: 'interrupted',
  step: 'install',
  completed: ['backup', 'stop'],
};

/** The problems of a failed parse as `path: message` lines (fails the test if it parsed). */
function problemsOf<T>(parsed: Parsed<T>): string[] {
  if (parsed.ok) throw new Error(`expected problems, parsed ${JSON.stringify(parsed.value)}`);
  return parsed.problems.map(formatProblem);
}

function valueOf<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw new Error(`expected a value, got ${parsed.problems.map(formatProblem).join('; ')}`);
  return parsed.value;
}

describe('phase contract', () => {
  describe('the phase command', () => {
    it('parses a whole command, keeping the recipe data as sent (its digest is over it)', () => {
      const cmd = valueOf(parsePhaseCommand(COMMAND));
      expect(cmd).toEqual(COMMAND);
      expect(cmd.recipe).toBe(COMMAND.recipe);
    });

    it('reads no readRuns as none', () => {
      const { readRuns: _none, ...rest } = COMMAND;
      expect(valueOf(parsePhaseCommand(rest)).readRuns).toEqual([]);
    });

    it.each<[string, unknown, string[]]>([
      ['not a mapping', ['upgrade'], ['must be a mapping of fields']],
      ['nothing at all', null, ['is required']],
      ['a missing run id', { ...COMMAND, runId: undefined }, ['runId: is required']],
      [
        'a run id with shell characters',
        { ...COMMAND, runId: 'r; rm -rf /' },
        ['runId: must be 1-64 letters, digits, - or _'],
      ],
      [
        'an unknown phase',
        { ...COMMAND, phase: 'deploy' },
        ['phase: must be one of check, download, upgrade, finalize, verify, rollback (got "deploy")'],
      ],
      [
        'a recipe that is not data',
        { ...COMMAND, recipe: 'name: demo' },
        ['recipe: must be a mapping (the recipe as data)'],
      ],
      [
        'a digest in upper case',
        { ...COMMAND, digest: DIGEST.toUpperCase() },
        ['digest: must be a SHA-256 digest in lowercase hex'],
      ],
      ['a var that is not a string', { ...COMMAND, vars: { target: 1 } }, ['vars.target: must be a string']],
      ['roles that are not a list', { ...COMMAND, roles: 'core' }, ['roles: must be a list']],
      [
        'a bad earlier run id',
        { ...COMMAND, readRuns: ['ok', '../x'] },
        ['readRuns[1]: must be 1-64 letters, digits, - or _'],
      ],
      [
        'a field this agent does not know',
        { ...COMMAND, dryRun: true },
        ['dryRun: unknown field (known: runId, phase, recipe, digest, vars, roles, readRuns)'],
      ],
    ])('refuses %s, naming the field', (_what, body, problems) => {
      expect(problemsOf(parsePhaseCommand(body))).toEqual(problems);
    });

    it('reports every problem at once', () => {
      expect(
        problemsOf(parsePhaseCommand({ ...COMMAND, runId: '', phase: 1, digest: undefined })),
      ).toHaveLength(3);
    });
  });

  describe('the step progress', () => {
    it('parses a step as it ends, ignoring fields a newer agent adds', () => {
      expect(valueOf(parseStepProgress({ runId: 'r1', step: { ...STEP, costCents: 3 } }))).toEqual({
        runId: 'r1',
        step: STEP,
      });
      expect(valueOf(parseStepProgress({ runId: 'r1', step: SKIPPED })).step).toEqual(SKIPPED);
    });

    it('parses the report a reboot step sends before its command runs', () => {
      const rebooting = { ...SKIPPED, type: 'reboot', status: 'rebooting', ok: null };
      expect(valueOf(parseStepProgress({ runId: 'r1', step: rebooting })).step).toEqual(rebooting);
    });

    it('cuts long text and lists to what the controller stores, and rounds durations', () => {
      const step = valueOf(
        parseStepProgress({
          runId: 'r1',
          step: {
            ...STEP,
            durationMs: -3.4,
            outputTail: 'x'.repeat(REPORT_LIMITS.outputTail + 10),
            versions: Array.from({ length: 150 }, (_, i) => `1.${i}`),
            error: { code: 'STEP_FAILED', message: 'y'.repeat(5000) },
          },
        }),
      ).step;
      expect(step.durationMs).toBe(0);
      expect(step.outputTail).toHaveLength(REPORT_LIMITS.outputTail);
      expect(step.versions).toHaveLength(REPORT_LIMITS.versions);
      expect(step.error?.message).toHaveLength(REPORT_LIMITS.errorMessage);
    });

    it.each<[string, unknown, string[]]>([
      ['no step', { runId: 'r1' }, ['step: is required']],
      ['a bad run id', { runId: '', step: STEP }, ['runId: must be 1-64 letters, digits, - or _']],
      [
        'a malformed step id',
        { runId: 'r1', step: { ...STEP, stepId: '-x y' } },
        ['step.stepId: must be a step id'],
      ],
      [
        'an unknown status',
        { runId: 'r1', step: { ...STEP, status: 'done' } },
        ['step.status: must be one of ran, skipped, done-before, dry-run, rebooting (got "done")'],
      ],
      [
        'negative attempts',
        { runId: 'r1', step: { ...STEP, attempts: -1 } },
        ['step.attempts: must be an integer >= 0'],
      ],
      [
        'ok that is not a boolean',
        { runId: 'r1', step: { ...STEP, ok: 'yes' } },
        ['step.ok: must be true or false'],
      ],
      [
        'a duration that is no number',
        { runId: 'r1', step: { ...STEP, durationMs: '1s' } },
        ['step.durationMs: must be a number of milliseconds'],
      ],
      [
        'versions that are not strings',
        { runId: 'r1', step: { ...STEP, versions: [1] } },
        ['step.versions[0]: must be a string'],
      ],
      [
        'an error code that is not one',
        { runId: 'r1', step: { ...STEP, error: { code: 'oops', message: '' } } },
        ['step.error.code: must be an error code (UPPER_SNAKE)'],
      ],
      [
        'an error without its message',
        { runId: 'r1', step: { ...STEP, error: { code: 'STEP_FAILED' } } },
        ['step.error.message: is required'],
      ],
    ])('refuses %s, naming the field', (_what, body, problems) => {
      expect(problemsOf(parseStepProgress(body))).toEqual(problems);
    });
  });

  describe('the phase report', () => {
    it('parses the result body of a phase command (its `command` field is the envelope type, not read)', () => {
      const { command: _phase, ...rest } = REPORT;
      // An agent that says nothing of a point of no return (an older one) reads as null.
      expect(valueOf(parsePhaseReport(REPORT))).toEqual({ ...rest, pointOfNoReturn: null });
    });

    it('carries a rollback refused past the point of no return: step, backup id, procedure', () => {
      const held = { stepId: 'start-cells', backupId: 'b-1', manualRecovery: 'stop cells; restore b-1' };
      const report = valueOf(
        parsePhaseReport({ ...REPORT, phase: 'rollback', steps: [], pointOfNoReturn: held }),
      );
      expect(report.pointOfNoReturn).toEqual(held);
      expect(
        problemsOf(parsePhaseReport({ ...REPORT, pointOfNoReturn: { ...held, stepId: '../x' } })),
      ).toEqual([expect.stringContaining('pointOfNoReturn.stepId')]);
    });

    it('takes null for what a phase did not read, and for no resume', () => {
      const report = valueOf(
        parsePhaseReport({ ...REPORT, installed: null, available: null, resumed: null }),
      );
      expect(report).toMatchObject({ installed: null, available: null, resumed: null });
      const { stepId: _none, ...between } = REPORT.resumed;
      expect(
        valueOf(parsePhaseReport({ ...REPORT, resumed: { ...between, action: 'continue' } })).resumed,
      ).toEqual({
        ...between,
        action: 'continue',
      });
    });

    it.each<[string, unknown, string[]]>([
      ['a missing ok', { ...REPORT, ok: undefined }, ['ok: is required']],
      [
        'an unknown phase',
        { ...REPORT, phase: 'stage' },
        ['phase: must be one of check, download, upgrade, finalize, verify, rollback (got "stage")'],
      ],
      ['a bad digest', { ...REPORT, digest: 'abc' }, ['digest: must be a SHA-256 digest in lowercase hex']],
      [
        'available versions that are not a list',
        { ...REPORT, available: '1.2.3' },
        ['available: must be a list'],
      ],
      [
        'an unknown resume action',
        { ...REPORT, resumed: { ...REPORT.resumed, action: 'ignore' } },
        ['resumed.action: must be one of continue, redo, resume, rollback (got "ignore")'],
      ],
      ['steps that are not a list', { ...REPORT, steps: STEP }, ['steps: must be a list']],
      [
        'a bad step among good ones',
        { ...REPORT, steps: [STEP, { ...SKIPPED, type: 'APT!' }] },
        ['steps[1].type: must be a step type such as apt or binary.replace'],
      ],
    ])('refuses %s, naming the field', (_what, body, problems) => {
      expect(problemsOf(parsePhaseReport(body))).toEqual(problems);
    });
  });

  describe('the journal summary', () => {
    it('parses the summary a status answer carries, and null for a host that never ran a phase', () => {
      expect(valueOf(parsePhaseJournalSummary(JOURNAL))).toEqual(JOURNAL);
      expect(valueOf(parsePhaseJournalSummary({ ...JOURNAL, state: 'succeeded', step: null }))).toMatchObject(
        {
          step: null,
        },
      );
      expect(valueOf(parsePhaseJournalSummary(null))).toBeNull();
      expect(valueOf(parsePhaseJournalSummary(undefined))).toBeNull();
    });

    it.each<[string, unknown, string[]]>([
      ['a string', 'running', ['must be a mapping of fields']],
      [
        'an unknown state',
        { ...JOURNAL, state: 'paused' },
        ['state: must be one of running, succeeded, failed, interrupted (got "paused")'],
      ],
      ['no completed list', { ...JOURNAL, completed: undefined }, ['completed: is required']],
      [
        'a completed id that is not a step id',
        { ...JOURNAL, completed: ['backup', ''] },
        ['completed[1]: must be a step id'],
      ],
      ['a missing run id', { ...JOURNAL, runId: undefined }, ['runId: is required']],
    ])('refuses %s, naming the field', (_what, value, problems) => {
      expect(problemsOf(parsePhaseJournalSummary(value))).toEqual(problems);
    });
  });
});
