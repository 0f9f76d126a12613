/**
 * Checks that need the whole recipe: unique step ids, `fromStep` references, declared secrets,
 * and `{{...}}` placeholders. They read the raw data, not the compiled recipe, so that they run
 * even when the schema found problems elsewhere (one bad timeout must not hide a duplicate id,
 * nor make the backup it sits on look missing to the restore that refers to it). Anything of the
 * wrong shape is skipped here: the schema has reported it already.
 */
import { at, isMapping, type Problem } from '../schema';
import { LITERAL_FIELDS, PLACEHOLDER, PLACEHOLDER_NAME } from './interpolate';
import { PHASES, type PhaseName, type StepType } from './types';

interface RawStep {
  readonly path: string;
  readonly phase: PhaseName;
  readonly fields: Record<string, unknown>;
}

/** What a `fromStep` of each referring type must point at. */
const REFERENCES: Readonly<Partial<Record<StepType, StepType>>> = {
  restore: 'backup',
  apt: 'apt',
  'binary.replace': 'artifact',
  'binary.restore': 'binary.replace',
  // restorePrevious reinstalls what a dnf downloadOnly step kept.
  dnf: 'dnf',
};

export function crossCheckRecipe(raw: Record<string, unknown>, problems: Problem[]): void {
  const steps = rawSteps(raw.phases);
  checkIds(steps, problems);
  checkReferences(steps, problems);
  checkSecrets(steps, stringsOf(raw.secrets), problems);
  const vars = isMapping(raw.vars) ? raw.vars : {};
  const declared = new Set(Object.keys(vars));
  for (const step of steps) checkPlaceholders(step.fields, step.path, declared, problems, false);
  const versions = isMapping(raw.versions) ? raw.versions : {};
  for (const probe of ['installed', 'available']) {
    const p = versions[probe];
    if (isMapping(p)) checkPlaceholders(p.argv, at(at('versions', probe), 'argv'), declared, problems, false);
  }
  for (const [k, v] of Object.entries(vars)) {
    if (typeof v === 'string' && v.includes('{{')) {
      problems.push({
        path: at('vars', k),
        message: 'vars are not substituted themselves: {{...}} is not allowed here',
      });
    }
  }
}

/** Every mapping in a phase list, in phase order (finalize's steps under `phases.finalize.steps`). */
function rawSteps(phases: unknown): RawStep[] {
  if (!isMapping(phases)) return [];
  const out: RawStep[] = [];
  for (const phase of PHASES) {
    const holder = phases[phase];
    const list = phase === 'finalize' ? (isMapping(holder) ? holder.steps : undefined) : holder;
    const base = phase === 'finalize' ? 'phases.finalize.steps' : `phases.${phase}`;
    if (!Array.isArray(list)) continue;
    list.forEach((fields: unknown, i) => {
      if (isMapping(fields)) out.push({ path: `${base}[${i}]`, phase, fields });
    });
  }
  return out;
}

function checkIds(steps: readonly RawStep[], problems: Problem[]): void {
  const first = new Map<string, string>();
  for (const { fields, path } of steps) {
    const id = fields.id;
    if (typeof id !== 'string') continue;
    const earlier = first.get(id);
    if (earlier === undefined) first.set(id, at(path, 'id'));
    else
      problems.push({
        path: at(path, 'id'),
        message: `duplicate id ${JSON.stringify(id)} (first at ${earlier})`,
      });
  }
}

/** `fromStep` names an earlier step (an earlier phase, or earlier in the same phase) of the right type. */
function checkReferences(steps: readonly RawStep[], problems: Problem[]): void {
  steps.forEach((step, index) => {
    const wanted =
      typeof step.fields.type === 'string' ? REFERENCES[step.fields.type as StepType] : undefined;
    const ref = step.fields.fromStep;
    if (wanted === undefined || typeof ref !== 'string') return;
    const path = at(step.path, 'fromStep');
    const targetIndex = steps.findIndex((s) => s.fields.id === ref);
    const target = steps[targetIndex];
    if (target === undefined) {
      return void problems.push({
        path,
        message: `no step has id ${JSON.stringify(ref)} (expected ${a(wanted)} step)`,
      });
    }
    if (target.fields.type !== wanted) {
      const actual = typeof target.fields.type === 'string' ? a(target.fields.type) : 'not a typed';
      problems.push({
        path,
        message: `step ${JSON.stringify(ref)} is ${actual} step, not ${a(wanted)} step`,
      });
    } else if (wanted === 'apt' && target.fields.action !== 'downloadOnly') {
      // Only a download keeps the previous packages (apt restorePrevious).
      problems.push({ path, message: `step ${JSON.stringify(ref)} is not an apt downloadOnly step` });
    } else if (targetIndex > index) {
      // Phases run in PHASES order and steps in list order: a later step's result does not exist yet.
      problems.push({
        path,
        message: `step ${JSON.stringify(ref)} runs later (at ${target.path}); it must come before`,
      });
    }
  });
}

function checkSecrets(steps: readonly RawStep[], declared: readonly string[], problems: Problem[]): void {
  const check = (name: unknown, path: string): void => {
    // The name is not echoed: a secret's value pasted here by mistake must not reach a log.
    if (typeof name === 'string' && !declared.includes(name))
      problems.push({ path, message: 'names no secret declared in secrets' });
  };
  for (const { fields, path } of steps) {
    check(fields.stdinSecret, at(path, 'stdinSecret'));
    if (isMapping(fields.basicAuth))
      check(fields.basicAuth.passwordSecret, at(at(path, 'basicAuth'), 'passwordSecret'));
  }
}

/** Walks every substitutable string below `value` (lists and mappings included, literal fields skipped). */
function checkPlaceholders(
  value: unknown,
  path: string,
  vars: ReadonlySet<string>,
  problems: Problem[],
  literal: boolean,
): void {
  if (literal) return;
  if (typeof value === 'string')
    return placeholderProblems(value, vars).forEach((message) => problems.push({ path, message }));
  if (Array.isArray(value))
    return value.forEach((v: unknown, i) => checkPlaceholders(v, `${path}[${i}]`, vars, problems, false));
  if (!isMapping(value)) return;
  for (const [k, v] of Object.entries(value))
    checkPlaceholders(v, at(path, k), vars, problems, LITERAL_FIELDS.has(k));
}

/** Why the placeholders of `text` are wrong (empty when they are fine). */
export function placeholderProblems(text: string, vars: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = PLACEHOLDER_NAME.exec(m[1] ?? '');
    if (name === null)
      out.push(`unknown placeholder ${m[0]} (allowed: {{target}}, {{installed}}, {{var.NAME}})`);
    else if (name[1] !== undefined && !vars.has(name[1]))
      out.push(`placeholder ${m[0]}: ${JSON.stringify(name[1])} is not declared in vars`);
  }
  const rest = text.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) out.push('has an unbalanced {{ or }}');
  return out;
}

const a = (word: string): string => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
