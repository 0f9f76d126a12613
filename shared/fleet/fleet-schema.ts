/**
 * The schema of `fleet.yaml` (docs/fleet.md), written with the project's kit (../schema.ts): each
 * spec checks one field and converts it (durations to ms, `25%` to a percent amount). Checks that
 * need the whole file (unique names, window references) are in ./cross-checks.ts.
 */
import path from 'node:path';
import semver from 'semver';
import { labelProblem, type Labels } from '../labels';
import { RECIPE_NAME } from '../recipe/compile';
import {
  arrayOf,
  at,
  bool,
  duration,
  enumOf,
  from,
  int,
  matching,
  nonEmptyStr,
  object,
  recordOf,
  refine,
  spec,
  str,
  withDefault,
  type Spec,
} from '../schema';
import { parseDuration } from '../duration';
import { cronProblem, timeZoneProblem } from '../schedule';
import { parseVersion, type UpgradePolicy } from '../semver-policy';
import type {
  Amount,
  BatchPause,
  BatchSpec,
  DeploymentSpec,
  FleetSpec,
  HostEntry,
  StagingSpec,
  WindowSpec,
} from './types';

/** Deployment and window names: `mail-prod`, `sunday-night`. */
export const FLEET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_WHAT = 'letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit)';
const VAR_NAME = {
  re: /^[A-Za-z_][A-Za-z0-9_]*$/,
  what: 'a name of letters, digits and "_" (usable as {{var.NAME}})',
};
const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Staging when a deployment says nothing: all hosts at once (10 at a time), in UTC, no jitter. */
export const DEFAULT_STAGING: StagingSpec = Object.freeze({
  cron: null,
  timezone: 'UTC',
  jitterMs: 0,
  concurrency: 10,
});
/** Batches when a deployment says nothing: one canary, then one host at a time, halt at the first failure. */
export const DEFAULT_BATCHES: BatchSpec = Object.freeze({
  canary: 1,
  concurrency: Object.freeze({ kind: 'count', value: 1 } as const),
  errorThreshold: Object.freeze({ kind: 'count', value: 0 } as const),
  pause: Object.freeze({ kind: 'none' } as const),
});

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

const cron = (): Spec<string> => refine(str(), cronProblem);
const timezone = (): Spec<string> => withDefault(refine(str(), timeZoneProblem), 'UTC');
const vars = (): Spec<Record<string, string>> =>
  withDefault(recordOf(str(), VAR_NAME), Object.create(null) as Record<string, string>);

/** A count (at least `min`) or a whole percentage from 1% to 100% (`25%`). */
function amount(min: number, what: string): Spec<Amount> {
  return spec<Amount>((v) => {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min)
      return { ok: { kind: 'count', value: v } };
    const m = typeof v === 'string' ? /^\s*(\d+)\s*%\s*$/.exec(v) : null;
    if (m === null) return `must be ${what} (got ${show(v)})`;
    const value = Number(m[1]);
    if (value < 1 || value > 100) return `must be a percentage from 1% to 100% (got ${show(v)})`;
    return { ok: { kind: 'percent', value } };
  });
}

const PAUSE: Spec<BatchPause> = spec<BatchPause>((v) => {
  if (v === 'none' || v === 'manual') return { ok: { kind: v } };
  const ms = typeof v === 'string' ? parseDuration(v) : null;
  if (ms !== null) return { ok: { kind: 'timed', ms } };
  return `must be none, manual or a duration such as 10m (got ${show(v)})`;
});

const WINDOW = object(
  {
    cron: cron(),
    durationMs: from('duration', duration()),
    timezone: timezone(),
    cutoffMs: from('cutoff', withDefault(duration(), 0)),
  },
  {
    check({ durationMs, cutoffMs }, where, problems) {
      if (durationMs !== undefined && cutoffMs !== undefined && cutoffMs >= durationMs)
        problems.push({
          path: at(where, 'cutoff'),
          message: 'must be shorter than the duration, or no host could ever start',
        });
    },
  },
);

/** The `windows` mapping: each window takes its key as its name. */
function windows(): Spec<Record<string, WindowSpec>> {
  const inner = recordOf(WINDOW, { re: FLEET_NAME, what: NAME_WHAT });
  return {
    parse(value, where, problems) {
      const parsed = inner.parse(value, where, problems);
      if (parsed === undefined) return undefined;
      const out = Object.create(null) as Record<string, WindowSpec>;
      for (const [name, w] of Object.entries(parsed)) out[name] = { name, ...w };
      return out;
    },
  };
}

const STAGING: Spec<StagingSpec> = object({
  cron: withDefault<string | null>(cron(), null),
  timezone: timezone(),
  jitterMs: from('jitter', withDefault(duration(), DEFAULT_STAGING.jitterMs)),
  concurrency: withDefault(int({ min: 1 }), DEFAULT_STAGING.concurrency),
});

const BATCHES: Spec<BatchSpec> = object({
  canary: withDefault(int({ min: 0 }), DEFAULT_BATCHES.canary),
  concurrency: withDefault(
    amount(1, 'a positive integer or a percentage like "25%"'),
    DEFAULT_BATCHES.concurrency,
  ),
  errorThreshold: withDefault(
    amount(0, 'an integer >= 0 or a percentage like "10%"'),
    DEFAULT_BATCHES.errorThreshold,
  ),
  pause: withDefault(PAUSE, DEFAULT_BATCHES.pause),
});

const POLICY: Spec<UpgradePolicy> = object(
  {
    autoApprove: arrayOf(enumOf(['patch', 'minor', 'major']), { unique: true }),
    allowDowngrade: bool(),
    // A blank range means "anything" to semver; in a fleet file it is far more likely a slip.
    allowedRange: refine(str(), (v) =>
      v.trim() !== '' && semver.validRange(v) !== null
        ? null
        : `must be a semver range such as ">=4.1.0 <5" (got ${JSON.stringify(v)})`,
    ),
    pinnedVersion: refine(str(), (v) =>
      parseVersion(v) !== null ? null : `must be a version such as 4.1.2 (got ${JSON.stringify(v)})`,
    ),
    allowPrerelease: bool(),
  },
  { optional: ['autoApprove', 'allowDowngrade', 'allowedRange', 'pinnedVersion', 'allowPrerelease'] },
);

/** A label selector: at least one valid label, as an empty one would match every host. */
const SELECTOR: Spec<Labels> = {
  parse(value, where, problems) {
    const labels = recordOf(str()).parse(value, where, problems);
    if (labels === undefined) return undefined;
    const before = problems.length;
    for (const [k, v] of Object.entries(labels)) {
      const problem = labelProblem(k, v);
      if (problem !== null) problems.push({ path: at(where, k), message: problem });
    }
    if (Object.keys(labels).length === 0)
      problems.push({
        path: where,
        message: 'must name at least one label (an empty selector matches every host)',
      });
    return problems.length === before ? labels : undefined;
  },
};

const HOST_FIELDS = object(
  {
    id: matching(HOST_ID, 'a host id (letters, digits, ".", "_", ":" or "-")'),
    select: SELECTOR,
    role: refine(nonEmptyStr(), (v) => labelProblem('role', v)),
    vars: vars(),
  },
  { optional: ['id', 'select', 'role'] },
);

/** One host by id or hosts by selector: exactly one of the two. */
const HOST: Spec<HostEntry> = {
  parse(value, where, problems) {
    const before = problems.length;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const has = (k: string): boolean => {
        const v = (value as Record<string, unknown>)[k];
        return Object.prototype.hasOwnProperty.call(value, k) && v !== undefined && v !== null;
      };
      if (has('id') && has('select'))
        problems.push({ path: where, message: 'must have either id or select, not both' });
      else if (!has('id') && !has('select'))
        problems.push({ path: where, message: 'must have id (one host) or select (hosts by labels)' });
    }
    const host = HOST_FIELDS.parse(value, where, problems);
    return problems.length === before ? host : undefined;
  },
};

/** A built-in recipe name, or a path (with a `/` or a .yaml/.yml suffix) joined to `baseDir`. */
function recipe(baseDir: string): Spec<string> {
  return spec((v) => {
    if (typeof v !== 'string' || v.trim() === '')
      return 'must be a built-in recipe name or a path to a recipe file';
    if (v.includes('\0')) return 'must not contain NUL';
    if (v.includes('/') || v.includes(path.sep) || /\.ya?ml$/.test(v))
      return { ok: path.isAbsolute(v) ? path.normalize(v) : path.join(baseDir, v) };
    if (RECIPE_NAME.test(v)) return { ok: v };
    return `must be a built-in recipe name (${NAME_WHAT}) or a path to a .yaml file (got ${JSON.stringify(v)})`;
  });
}

const TARGET: Spec<string> = refine(str(), (v) =>
  v === 'latest' || parseVersion(v) !== null
    ? null
    : `must be "latest" or a version such as 4.1.2 (got ${JSON.stringify(v)})`,
);

function deployment(baseDir: string): Spec<DeploymentSpec> {
  return object({
    name: matching(FLEET_NAME, NAME_WHAT),
    recipe: recipe(baseDir),
    target: withDefault(TARGET, 'latest'),
    vars: vars(),
    hosts: arrayOf(HOST, { min: 1 }),
    policy: withDefault(POLICY, {}),
    window: nonEmptyStr(),
    staging: withDefault(STAGING, DEFAULT_STAGING),
    batches: withDefault(BATCHES, DEFAULT_BATCHES),
  });
}

/** The whole file; recipe paths resolve against `baseDir`, the fleet file's (absolute) directory. */
export function fleetSchema(baseDir: string): Spec<FleetSpec> {
  return object({
    windows: withDefault(windows(), Object.create(null) as Record<string, WindowSpec>),
    deployments: arrayOf(deployment(baseDir), { min: 1 }),
  });
}
