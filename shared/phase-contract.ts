/**
 * The messages of the agent/controller `phase` exchange, each defined once with the schema kit
 * and parsed with it at both ends:
 *
 *   controller ── PhaseCommand ──────────▶ agent     (the signed `phase` command's body)
 *   controller ◀── StepProgress ───────── agent     (one progress body per finished step)
 *   controller ◀── PhaseReport ────────── agent     (the command's result body)
 *   controller ◀── PhaseJournalSummary ── agent     (`phaseJournal` in a `status` answer)
 *
 * A command is strict: a field this agent does not know is refused, since ignoring it could mean
 * doing something other than what the controller asked. An answer is lenient about fields it
 * does not know (a newer agent may say more than this controller reads) and bounds what it keeps:
 * long text is cut and long lists shortened, as the controller stores them, rather than losing a
 * whole report to one long git tag list. Wrong types, unknown states and malformed ids are
 * problems, each with its path (`steps[2].status: must be one of ...`).
 */
import { PHASES } from './recipe/types';
import { STEP_ID } from './recipe/step-schema';
import {
  arrayOf,
  bool,
  enumOf,
  int,
  isMapping,
  matching,
  nullable,
  object,
  recordOf,
  spec,
  str,
  validate,
  withDefault,
  type Infer,
  type Problem,
  type Spec,
} from './schema';

/** A run id: the same for every phase a rollout sends one host for one intent. */
export const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** What a field of an answer is cut to: the controller stores no more than this. */
export const REPORT_LIMITS = Object.freeze({
  /** Characters of a short text field (backup id, recipe name, a version, an installed version). */
  text: 200,
  outputTail: 16_384,
  errorMessage: 2_000,
  /** Versions one step saw. */
  versions: 100,
  /** Versions a check found available. */
  available: 500,
  /** Completed step ids in a journal summary. */
  completed: 1_000,
});

/** How a step of a phase run ended up (see agent/phase/runner.ts). */
export const STEP_STATUSES = [
  /** It ran (`ok` says how it went). */
  'ran',
  /** Its `when` did not match this host. */
  'skipped',
  /** An earlier attempt of the same run completed it; it was not run again. */
  'done-before',
  /** A dry run listed it without running it. */
  'dry-run',
  /**
   * Progress only: a `reboot` step journaled its boot id and is about to reboot the host. Its
   * result comes from the agent that starts after the boot (the controller waits meanwhile).
   */
  'rebooting',
] as const;

/** What a run found when the previous run of its phase was interrupted (agent/phase/resume.ts). */
export const RESUME_ACTIONS = ['continue', 'redo', 'resume', 'rollback'] as const;

/** A phase journal's last run, as a status answer tells it. */
export const JOURNAL_STATES = [
  /** This agent process is running it now. */
  'running',
  'succeeded',
  'failed',
  /** It never finished: the agent died inside it. */
  'interrupted',
] as const;

const runId = (): Spec<string> => matching(RUN_ID, '1-64 letters, digits, - or _');
const stepId = (): Spec<string> => matching(STEP_ID, 'a step id');
const digest = (): Spec<string> => matching(/^[0-9a-f]{64}$/, 'a SHA-256 digest in lowercase hex');

/** Any string, cut to `max` characters. */
const clipped = (max: number): Spec<string> =>
  spec((v) => (typeof v === 'string' ? { ok: v.slice(0, max) } : 'must be a string'));

/** A list whose items are each checked, shortened to its first `max` items. */
function clippedList<T>(item: Spec<T>, max: number): Spec<T[]> {
  const list = arrayOf(item);
  return { parse: (value, path, problems) => list.parse(value, path, problems)?.slice(0, max) };
}

/** Milliseconds, rounded; a negative one (the wall clock stepped back mid-step) counts as 0. */
const millis = (): Spec<number> =>
  spec((v) =>
    typeof v === 'number' && Number.isFinite(v)
      ? { ok: Math.max(0, Math.round(v)) }
      : 'must be a number of milliseconds',
  );

/** The recipe travels as data: the agent compiles it itself, against `digest`. */
const recipeData: Spec<unknown> = spec((v) =>
  isMapping(v) ? { ok: v } : 'must be a mapping (the recipe as data)',
);

const phaseCommandSpec = object({
  runId: runId(),
  phase: enumOf(PHASES),
  recipe: recipeData,
  /** sha256 of the JSON of `recipe`, checked by the agent before it compiles it. */
  digest: digest(),
  /** Placeholder values: `target`, `installed`, `var.NAME`. */
  vars: recordOf(str()),
  /** The host's roles (its `role` label): decides `when` conditions. */
  roles: arrayOf(str()),
  /** Earlier runs whose completed step results the phase may read. Default none. */
  readRuns: withDefault(arrayOf(runId()), []),
});

const stepErrorSpec = object(
  {
    code: matching(/^[A-Z][A-Z0-9_]{0,63}$/, 'an error code (UPPER_SNAKE)'),
    message: clipped(REPORT_LIMITS.errorMessage),
  },
  { unknownFields: 'ignore' },
);

const stepReportSpec = object(
  {
    stepId: stepId(),
    type: matching(/^[a-z][a-z0-9.-]{0,63}$/, 'a step type such as apt or binary.replace'),
    status: enumOf(STEP_STATUSES),
    attempts: int({ min: 0 }),
    /** Null when the step did not run. */
    ok: nullable(bool()),
    exitCode: nullable(int()),
    durationMs: millis(),
    outputTail: clipped(REPORT_LIMITS.outputTail),
    backupId: nullable(clipped(REPORT_LIMITS.text)),
    versions: clippedList(clipped(REPORT_LIMITS.text), REPORT_LIMITS.versions),
    error: nullable(stepErrorSpec),
  },
  { unknownFields: 'ignore' },
);

const stepProgressSpec = object({ runId: runId(), step: stepReportSpec }, { unknownFields: 'ignore' });

const resumedSpec = object(
  {
    runId: runId(),
    action: enumOf(RESUME_ACTIONS),
    stepId: stepId(),
    reason: clipped(REPORT_LIMITS.errorMessage),
  },
  { optional: ['stepId'], unknownFields: 'ignore' },
);

/**
 * A rollback the agent refused because the upgrade passed a step the recipe marks
 * `pointOfNoReturn`: the controller holds the host for an operator, showing these.
 */
const pointOfNoReturnSpec = object(
  {
    stepId: stepId(),
    /** The newest backup taken before the point; null when no step took one. */
    backupId: nullable(clipped(REPORT_LIMITS.text)),
    /** The recipe's `manualRecovery` procedure. */
    manualRecovery: clipped(REPORT_LIMITS.errorMessage),
  },
  { unknownFields: 'ignore' },
);

const phaseReportSpec = object(
  {
    runId: runId(),
    phase: enumOf(PHASES),
    recipe: clipped(REPORT_LIMITS.text),
    digest: digest(),
    ok: bool(),
    /** The installed version the agent read, null when it read none. */
    installed: nullable(clipped(REPORT_LIMITS.text)),
    /** For a check: the versions available, null for other phases. */
    available: nullable(clippedList(clipped(REPORT_LIMITS.text), REPORT_LIMITS.available)),
    /** Set when this run found an earlier run of its phase interrupted. */
    resumed: nullable(resumedSpec),
    /**
     * Set (rollback only) when the agent refused it past the point of no return; null or absent
     * otherwise (an older agent never sends it).
     */
    pointOfNoReturn: nullable(pointOfNoReturnSpec),
    steps: arrayOf(stepReportSpec),
  },
  { optional: ['pointOfNoReturn'], unknownFields: 'ignore' },
);

const journalSummarySpec = object(
  {
    runId: runId(),
    recipe: clipped(REPORT_LIMITS.text),
    phase: enumOf(PHASES),
    state: enumOf(JOURNAL_STATES),
    /** The step the run is (or was, when interrupted) inside of. */
    step: nullable(stepId()),
    /** Step ids the run completed, in order. */
    completed: clippedList(stepId(), REPORT_LIMITS.completed),
  },
  { unknownFields: 'ignore' },
);

/** The body of a `phase` command: run `phase` of `recipe` on this host. */
export type PhaseCommand = Infer<typeof phaseCommandSpec>;
/** One step of a phase run, as the agent reports it (output bounded and masked). */
export type StepReport = Infer<typeof stepReportSpec>;
/** A progress body sent as each step ends, so the controller stores it at once. */
export type StepProgress = Infer<typeof stepProgressSpec>;
/** The result body of a `phase` command. */
export type PhaseReport = Infer<typeof phaseReportSpec>;
/** `phaseJournal` in a `status` answer; null there when the host never ran a phase. */
export type PhaseJournalSummary = Infer<typeof journalSummarySpec>;

/** A message that parsed, or everything wrong with it. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly Problem[] };

function parseWith<T>(s: Spec<T>, value: unknown): Parsed<T> {
  const { value: parsed, problems } = validate(s, value);
  return parsed === undefined || problems.length > 0 ? { ok: false, problems } : { ok: true, value: parsed };
}

export const parsePhaseCommand = (body: unknown): Parsed<PhaseCommand> => parseWith(phaseCommandSpec, body);
export const parseStepProgress = (body: unknown): Parsed<StepProgress> => parseWith(stepProgressSpec, body);
export const parsePhaseReport = (body: unknown): Parsed<PhaseReport> => parseWith(phaseReportSpec, body);

/** `phaseJournal` of a status answer: null (never ran a phase) is a valid value. */
export const parsePhaseJournalSummary = (value: unknown): Parsed<PhaseJournalSummary | null> =>
  parseWith(nullable(journalSummarySpec), value);
