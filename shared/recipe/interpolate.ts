/**
 * `{{target}}`, `{{installed}}` and `{{var.NAME}}` in step parameters, substituted as data: the
 * result goes into an argv element or a URL as one value, never through a shell. The compiler
 * (cross-checks.ts) checks every placeholder against the same grammar, so a compiled recipe only
 * fails here when a value is missing at run time (say, `{{installed}}` before anything is known).
 */
import { ConvoyError } from '../errors';
import type { Recipe, Step } from './types';

/** One placeholder; inner spaces are tolerated (`{{ target }}`). */
export const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
/** What a placeholder may name: `target`, `installed` or `var.NAME`. */
export const PLACEHOLDER_NAME = /^(?:target|installed|var\.([A-Za-z_][A-Za-z0-9_]*))$/;

/**
 * Step fields that are never substituted: they name things the compiler checks as written (ids,
 * secrets, roles) or only document the step. Keys of records (`env`) are never substituted either.
 */
export const LITERAL_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'type',
  'source',
  'when',
  'fromStep',
  'stdinSecret',
  'passwordSecret',
]);

/** Values for substitution, keyed as written: `target`, `installed`, `var.NAME`. */
export type PlaceholderValues = Readonly<Record<string, string>>;

/** The recipe's `vars` defaults under their `var.` names, then overrides, then the versions. */
export function placeholderValues(
  recipe: Recipe,
  versions: { target?: string; installed?: string },
  overrides: Readonly<Record<string, string>> = {},
): PlaceholderValues {
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries({ ...recipe.vars, ...overrides })) out[`var.${k}`] = v;
  if (versions.target !== undefined) out['target'] = versions.target;
  if (versions.installed !== undefined) out['installed'] = versions.installed;
  return Object.freeze(out);
}

/** Substitutes every placeholder of `text`; an unknown or unset one throws RECIPE_INVALID naming it. */
export function interpolate(text: string, values: PlaceholderValues): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => {
    if (!PLACEHOLDER_NAME.test(name)) {
      throw new ConvoyError(
        'RECIPE_INVALID',
        `unknown placeholder ${whole} (allowed: {{target}}, {{installed}}, {{var.NAME}})`,
      );
    }
    if (!Object.prototype.hasOwnProperty.call(values, name)) {
      throw new ConvoyError('RECIPE_INVALID', `placeholder ${whole} has no value here`);
    }
    return values[name] ?? '';
  });
}

/** A new, frozen step with every substitutable string substituted (nested objects and lists included). */
export function interpolateStep<S extends Step>(step: S, values: PlaceholderValues): S {
  return substitute(step, values, false) as S;
}

function substitute(value: unknown, values: PlaceholderValues, literal: boolean): unknown {
  if (typeof value === 'string') return literal ? value : interpolate(value, values);
  if (Array.isArray(value)) return Object.freeze(value.map((v: unknown) => substitute(v, values, literal)));
  if (typeof value !== 'object' || value === null) return value;
  // Keeps the prototype: records (`env`) are null-prototype objects and stay so.
  const out = Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(value)) {
    out[k] = substitute(v, values, literal || LITERAL_FIELDS.has(k));
  }
  return Object.freeze(out);
}
