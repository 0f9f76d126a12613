/**
 * A small declarative validation kit for YAML/JSON input (recipes now, maybe config later).
 *
 * Why our own: zod costs about 11 MB of resident memory and the agent, which re-validates every
 * recipe it receives, has a 60 MB budget. This covers what our files need and nothing more.
 *
 * A spec checks one value and either returns it (converted: durations become milliseconds) or
 * records problems with their paths (`phases.upgrade[2].timeout: must be a duration ...`) and
 * returns undefined. Every spec keeps going after a problem so that one run reports them all.
 * Objects are built from the keys the spec knows, never from the input's keys, so a `__proto__`
 * key can only ever be reported as unknown; records (free keys) are null-prototype objects.
 */
import { parseDuration } from './duration';

/** One thing wrong with the input: where (`phases.check[0].id`, '' for the whole input) and what. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

export interface Spec<T> {
  /** Checks a present value (never undefined or null); returns undefined after recording a problem. */
  readonly parse: (value: unknown, path: string, problems: Problem[]) => T | undefined;
  /** Used when an object field is absent (missing, or YAML's empty `key:`). */
  readonly fallback?: { readonly value: T };
  /** The input field name when it differs from the output one (`timeout` -> `timeoutMs`). */
  readonly inputKey?: string;
}

export type Infer<S> = S extends Spec<infer T> ? T : never;
type Shape = Record<string, Spec<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] };
export type ObjectOf<S extends Shape, O extends keyof S> = Simplify<
  { [K in Exclude<keyof S, O>]: Infer<S[K]> } & { [K in O]?: Infer<S[K]> }
>;

/** `a.b`, `a[2]`, `env["MY VAR"]`: the path of a field below `path`. */
export function at(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function formatProblem(p: Problem): string {
  return p.path === '' ? p.message : `${p.path}: ${p.message}`;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A spec from a check that returns a message (a problem) or the accepted value. */
export function spec<T>(check: (value: unknown) => { ok: T } | string): Spec<T> {
  return {
    parse(value, path, problems) {
      const r = check(value);
      if (typeof r === 'string') return void problems.push({ path, message: r });
      return r.ok;
    },
  };
}

// Only values that are short and plainly not secret-bearing are echoed back in messages.
const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** Any string; NUL is refused everywhere because no program argument or path can hold it. */
export const str = (): Spec<string> =>
  spec((v) =>
    typeof v !== 'string' ? 'must be a string' : v.includes('\0') ? 'must not contain NUL' : { ok: v },
  );

export const nonEmptyStr = (): Spec<string> => matching(/\S/, 'a non-empty string');

/** A string matching `re`; the message says `must be ${what}` and never echoes the value. */
export function matching(re: RegExp, what: string): Spec<string> {
  return refine(str(), (v) => (re.test(v) ? null : `must be ${what}`));
}

export function int(range: { min?: number; max?: number } = {}): Spec<number> {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
  const what =
    range.max !== undefined
      ? `an integer from ${min} to ${max}`
      : range.min !== undefined
        ? `an integer >= ${min}`
        : 'an integer';
  return spec((v) =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max
      ? { ok: v as number }
      : `must be ${what}`,
  );
}

export const bool = (): Spec<boolean> =>
  spec((v) => (typeof v === 'boolean' ? { ok: v } : 'must be true or false'));

/** A duration string (`30s`, `10m`, `1h30m`) converted to milliseconds; bare numbers are refused (unit unclear). */
export function duration(range: { maxMs?: number } = {}): Spec<number> {
  return spec((v) => {
    const ms = typeof v === 'string' ? parseDuration(v) : null;
    if (ms === null) return `must be a positive duration such as 30s, 10m or 1h (got ${show(v)})`;
    if (range.maxMs !== undefined && ms > range.maxMs) return `must be at most ${range.maxMs / 1000}s`;
    return { ok: ms };
  });
}

export function enumOf<const T extends string>(values: readonly T[]): Spec<T> {
  return spec((v) =>
    typeof v === 'string' && (values as readonly string[]).includes(v)
      ? { ok: v as T }
      : `must be one of ${values.join(', ')} (got ${show(v)})`,
  );
}

export const literal = <const T extends string>(value: T): Spec<T> => enumOf([value]);

/** Adds a check on an accepted value: `check` returns a message, or null when the value is fine. */
export function refine<T>(inner: Spec<T>, check: (value: T) => string | null): Spec<T> {
  return {
    ...inner,
    parse(value, path, problems) {
      const v = inner.parse(value, path, problems);
      if (v === undefined) return undefined;
      const message = check(v);
      if (message !== null) return void problems.push({ path, message });
      return v;
    },
  };
}

/** The fallback is frozen: one instance is shared by every output that takes it. */
export const withDefault = <T>(inner: Spec<T>, value: T): Spec<T> => ({
  ...inner,
  fallback: { value: typeof value === 'object' && value !== null ? Object.freeze(value) : value },
});

/** A field that may be null (or absent): null is then the value, never a problem. */
export const nullable = <T>(inner: Spec<T>): Spec<T | null> => ({ ...inner, fallback: { value: null } });

/** Reads the field from another input key: `timeoutMs: from('timeout', duration())`. */
export const from = <T>(inputKey: string, inner: Spec<T>): Spec<T> => ({ ...inner, inputKey });

export function arrayOf<T>(item: Spec<T>, opts: { min?: number; unique?: boolean } = {}): Spec<T[]> {
  return {
    parse(value, path, problems) {
      if (!Array.isArray(value)) return void problems.push({ path, message: 'must be a list' });
      const before = problems.length;
      const out = value.map((v: unknown, i) => item.parse(v, `${path}[${i}]`, problems));
      const min = opts.min ?? 0;
      if (value.length < min)
        problems.push({ path, message: `must have at least ${min} item${min === 1 ? '' : 's'}` });
      if (opts.unique === true) {
        out.forEach((v, i) => {
          if (v !== undefined && out.indexOf(v) < i)
            problems.push({ path: `${path}[${i}]`, message: 'is listed twice' });
        });
      }
      return problems.length === before ? (out as T[]) : undefined;
    },
  };
}

/** A list, or one item standing for a list of one (`role: core`). */
export function oneOrMany<T>(item: Spec<T>, opts: { min?: number; unique?: boolean } = {}): Spec<T[]> {
  const list = arrayOf(item, opts);
  return {
    parse(value, path, problems) {
      if (Array.isArray(value)) return list.parse(value, path, problems);
      const v = item.parse(value, path, problems);
      return v === undefined ? undefined : [v];
    },
  };
}

/** A mapping with free keys (environment, vars): a null-prototype object; `__proto__` is refused. */
export function recordOf<T>(value: Spec<T>, keys?: { re: RegExp; what: string }): Spec<Record<string, T>> {
  return {
    parse(input, path, problems) {
      if (!isMapping(input)) return void problems.push({ path, message: 'must be a mapping' });
      const before = problems.length;
      const out = Object.create(null) as Record<string, T>;
      for (const [key, raw] of Object.entries(input)) {
        const keyPath = at(path, key);
        if (key === '__proto__') problems.push({ path: keyPath, message: 'is not allowed as a key' });
        else if (keys !== undefined && !keys.re.test(key))
          problems.push({ path: keyPath, message: `key must be ${keys.what}` });
        const v = value.parse(raw, keyPath, problems);
        if (v !== undefined) out[key] = v;
      }
      return problems.length === before ? out : undefined;
    },
  };
}

export interface ObjectOptions<S extends Shape, O extends keyof S> {
  /** Fields that may be absent (and then are absent from the output). */
  readonly optional?: readonly O[];
  /**
   * What an input field the shape does not know is: a problem (`refuse`, the default: a typo in a
   * file), or dropped from the output (`ignore`: a message from a newer sender may say more).
   */
  readonly unknownFields?: 'refuse' | 'ignore';
  /** Checks across fields, given whichever fields were accepted (always runs, for a complete report). */
  readonly check?: (fields: Partial<ObjectOf<S, O>>, path: string, problems: Problem[]) => void;
}

/** A mapping with known fields: unknown ones are problems; absent ones take their fallback or are required. */
export function object<S extends Shape, O extends keyof S & string = never>(
  shape: S,
  opts: ObjectOptions<S, O> = {},
): Spec<ObjectOf<S, NoInfer<O>>> {
  const optional = new Set<string>(opts.optional ?? []);
  const entries = Object.entries(shape).map(([key, s]) => [key, s.inputKey ?? key, s] as const);
  const known = new Set(entries.map(([, inputKey]) => inputKey));
  const listed = [...known].join(', ');
  return {
    parse(value, path, problems) {
      if (!isMapping(value)) return void problems.push({ path, message: 'must be a mapping of fields' });
      const before = problems.length;
      for (const key of opts.unknownFields === 'ignore' ? [] : Object.keys(value)) {
        if (!known.has(key))
          problems.push({ path: at(path, key), message: `unknown field (known: ${listed})` });
      }
      const out: Record<string, unknown> = {};
      for (const [key, inputKey, s] of entries) {
        const raw = Object.prototype.hasOwnProperty.call(value, inputKey) ? value[inputKey] : undefined;
        if (raw === undefined || raw === null) {
          if (s.fallback !== undefined) out[key] = s.fallback.value;
          else if (!optional.has(key)) problems.push({ path: at(path, inputKey), message: 'is required' });
          continue;
        }
        const v = s.parse(raw, at(path, inputKey), problems);
        if (v !== undefined) out[key] = v;
      }
      opts.check?.(out as Partial<ObjectOf<S, O>>, path, problems);
      return problems.length === before ? (out as ObjectOf<S, O>) : undefined;
    },
  };
}

/**
 * A discriminated union: `field` picks the variant (each variant checks `field` itself too). An
 * absent or unknown discriminator is one problem listing the allowed values; the rest of the
 * mapping is then not checked, as nobody knows which fields it should have.
 */
export function oneOfByField<V extends Readonly<Record<string, Spec<unknown>>>>(
  field: string,
  variants: V,
): Spec<Infer<V[keyof V]>> {
  const names = Object.keys(variants);
  return {
    parse(value, path, problems) {
      if (!isMapping(value)) return void problems.push({ path, message: 'must be a mapping of fields' });
      const tag = value[field];
      const variant =
        typeof tag === 'string' && Object.prototype.hasOwnProperty.call(variants, tag)
          ? variants[tag]
          : undefined;
      if (variant !== undefined) return variant.parse(value, path, problems) as Infer<V[keyof V]> | undefined;
      const message =
        tag === undefined || tag === null
          ? `is required (one of ${names.join(', ')})`
          : `unknown ${field} ${show(tag)} (one of ${names.join(', ')})`;
      return void problems.push({ path: at(path, field), message });
    },
  };
}

/** Runs a spec on a whole input and returns the value with every problem found. */
export function validate<T>(
  s: Spec<T>,
  value: unknown,
  path = '',
): { value: T | undefined; problems: Problem[] } {
  const problems: Problem[] = [];
  if (value === undefined || value === null) {
    if (s.fallback !== undefined) return { value: s.fallback.value, problems };
    problems.push({ path, message: 'is required' });
    return { value: undefined, problems };
  }
  const v = s.parse(value, path, problems);
  return { value: problems.length === 0 ? v : undefined, problems };
}
