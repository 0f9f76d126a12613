/**
 * Recipe YAML -> the frozen `Recipe` of ./types.ts, or a RecipeError listing every problem with
 * its path. The format is described in docs/recipes.md; the step table is in ./step-schema.ts and
 * the checks across steps in ./cross-checks.ts.
 */
import semver from 'semver';
import { ConvoyError } from '../errors';
import {
  arrayOf,
  bool,
  formatProblem,
  isMapping,
  matching,
  nonEmptyStr,
  object,
  recordOf,
  refine,
  str,
  validate,
  withDefault,
  type Problem,
  type Spec,
} from '../schema';
import { crossCheckRecipe } from './cross-checks';
import { secretName, STEP } from './step-schema';
import type { Recipe, Step, VersionProbe } from './types';
import { readRecipeYaml } from './yaml-source';

/** A recipe that did not compile: the message lists every problem; `problems` has them one by one. */
export class RecipeError extends ConvoyError {
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
  ) {
    super('RECIPE_INVALID', `${file}: ${problems.map(formatProblem).join('; ')}`, {
      file,
      field: problems[0]?.path ?? '',
    });
  }
}

export const RECIPE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const VAR_NAME = {
  re: /^[A-Za-z_][A-Za-z0-9_]*$/,
  what: 'a name of letters, digits and "_" (usable as {{var.NAME}})',
};

// A blank range means "anything" to semver; in a recipe it is far more likely a slip.
const range = (): Spec<string> =>
  refine(str(), (v) =>
    v.trim() !== '' && semver.validRange(v) !== null
      ? null
      : `must be a semver range such as ">=4.1.0 <5" (got ${JSON.stringify(v)})`,
  );

const version = (): Spec<string> =>
  refine(str(), (v) =>
    semver.valid(v) !== null ? null : `must be a semver version such as 4.1.2 (got ${JSON.stringify(v)})`,
  );

/** A regular expression with at least one group: the first group is the version. */
const versionPattern = (): Spec<string> =>
  refine(nonEmptyStr(), (v) => {
    let groups: number;
    try {
      // Matching the empty alternative always succeeds, and its length counts the groups.
      groups = (new RegExp(`${v}|`).exec('')?.length ?? 1) - 1;
    } catch (err) {
      return `must be a valid regular expression (${(err as Error).message})`;
    }
    return groups >= 1 ? null : 'must have a group, (...), capturing the version';
  });

const probe: Spec<VersionProbe> = object({
  argv: arrayOf(nonEmptyStr(), { min: 1 }),
  pattern: versionPattern(),
});

const steps = (): Spec<Step[]> => withDefault(arrayOf(STEP), []);

const RECIPE: Spec<Recipe> = object(
  {
    name: matching(
      RECIPE_NAME,
      'letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit)',
    ),
    description: withDefault(str(), ''),
    versions: object({ installed: probe, available: probe }, { optional: ['available'] }),
    policy: withDefault(
      object(
        {
          majorNeedsApproval: withDefault(bool(), true),
          allowDowngrade: withDefault(bool(), false),
          allowedRange: range(),
          pinnedVersion: version(),
        },
        { optional: ['allowedRange', 'pinnedVersion'] },
      ),
      { majorNeedsApproval: true, allowDowngrade: false },
    ),
    cautions: withDefault(arrayOf(object({ from: range(), to: range(), message: nonEmptyStr() })), []),
    secrets: withDefault(arrayOf(secretName(), { unique: true }), []),
    manualRecovery: nonEmptyStr(),
    vars: withDefault(recordOf(str(), VAR_NAME), {}),
    phases: object(
      {
        check: steps(),
        download: steps(),
        upgrade: steps(),
        finalize: object({ role: nonEmptyStr(), steps: arrayOf(STEP, { min: 1 }) }),
        verify: steps(),
        rollback: steps(),
      },
      { optional: ['finalize'] },
    ),
  },
  { optional: ['manualRecovery'], check: checkPointOfNoReturn },
);

/**
 * A point of no return is a step of upgrade or finalize (the phases a rollback undoes), and an
 * operator held there needs the procedure: `manualRecovery` is required with it.
 */
function checkPointOfNoReturn(
  r: { readonly phases?: Recipe['phases'] | undefined; readonly manualRecovery?: string | undefined },
  path: string,
  problems: Problem[],
): void {
  if (r.phases === undefined) return;
  const { finalize, ...rest } = r.phases;
  const lists: [string, readonly Step[]][] = [
    ...Object.entries(rest),
    ['finalize.steps', finalize?.steps ?? []],
  ];
  for (const [phase, steps] of lists) {
    steps.forEach((s, i) => {
      if (!s.pointOfNoReturn) return;
      const at = `${path === '' ? '' : `${path}.`}phases.${phase}[${i}].pointOfNoReturn`;
      if (phase !== 'upgrade' && phase !== 'finalize.steps')
        problems.push({
          path: at,
          message: 'only a step of upgrade or finalize can be a point of no return',
        });
      if (r.manualRecovery === undefined)
        problems.push({
          path: at,
          message: 'needs the recipe-level manualRecovery: the procedure an operator follows past it',
        });
    });
  }
}

/** Compiles recipe YAML; throws RecipeError (RECIPE_INVALID) naming the file and every problem. */
export function compileRecipe(text: string, file: string): Recipe {
  const source = readRecipeYaml(text);
  if (source.data === undefined) throw new RecipeError(file, source.problems);
  return compileRecipeData(source.data, file, source.problems);
}

/**
 * Compiles recipe data already parsed (JSON from the wire, say: YAML's data model is JSON's),
 * adding any problems found while parsing it.
 */
export function compileRecipeData(data: unknown, file: string, earlier: readonly Problem[] = []): Recipe {
  if (!isMapping(data))
    throw new RecipeError(file, [
      ...earlier,
      { path: '', message: 'must be a mapping of fields (name, versions, phases, ...)' },
    ]);
  const { value, problems } = validate(RECIPE, data);
  crossCheckRecipe(data, problems);
  const all = [...earlier, ...problems];
  if (all.length > 0 || value === undefined) throw new RecipeError(file, all);
  return deepFreeze(value);
}

/** Counts every step of every phase (finalize included). */
export function countSteps(recipe: Recipe): number {
  const { check, download, upgrade, finalize, verify, rollback } = recipe.phases;
  return [check, download, upgrade, finalize?.steps ?? [], verify, rollback].reduce(
    (n, s) => n + s.length,
    0,
  );
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
