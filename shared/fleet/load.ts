/**
 * `fleet.yaml` text -> the frozen FleetSpec of ./types.ts, or a FleetError listing every problem
 * with its path (`fleet.yaml: deployments[0].batches.concurrency: must be ...`). The format is in
 * docs/fleet.md; the schema is ./fleet-schema.ts and the checks across fields ./cross-checks.ts.
 * Pure, as shared/ is: reading the file is controller/fleet-file.ts.
 *
 * The YAML is read as recipes are (../recipe/yaml-source.ts): size-limited, aliases refused (no
 * billion laughs), duplicate keys reported, and objects built from known keys only, so a
 * `__proto__` key is reported, never assigned.
 */
import path from 'node:path';
import { ConvoyError } from '../errors';
import { formatProblem, isMapping, validate, type Problem } from '../schema';
import { MAX_RECIPE_BYTES, readRecipeYaml } from '../recipe/yaml-source';
import { crossCheckFleet } from './cross-checks';
import { fleetSchema } from './fleet-schema';
import type { FleetSpec } from './types';

/** A fleet file is at most this large, as a recipe is. */
export const MAX_FLEET_BYTES = MAX_RECIPE_BYTES;

/** A fleet file that did not load: the message lists every problem; `problems` has them one by one. */
export class FleetError extends ConvoyError {
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
  ) {
    super('INVALID_ARGUMENT', `${file}: ${problems.map(formatProblem).join('; ')}`, {
      file,
      field: problems[0]?.path ?? '',
    });
  }
}

/**
 * Loads fleet YAML; `file` names it in messages. Relative recipe paths resolve against `baseDir`,
 * by default the file's directory: absolute when `file` is (the caller resolves a relative one,
 * as nothing here reads the working directory).
 */
export function loadFleetText(text: string, file: string, baseDir: string = path.dirname(file)): FleetSpec {
  const source = readRecipeYaml(text);
  if (source.data === undefined) throw new FleetError(file, source.problems);
  const data: unknown = source.data;
  if (!isMapping(data))
    throw new FleetError(file, [
      ...source.problems,
      { path: '', message: 'must be a mapping of fields (windows, deployments)' },
    ]);
  const { value, problems } = validate(fleetSchema(baseDir), data);
  crossCheckFleet(data, problems);
  const all = [...source.problems, ...problems];
  if (all.length > 0 || value === undefined) throw new FleetError(file, all);
  return deepFreeze(value);
}

// Recurses into frozen objects too: shared defaults are frozen only at their top by withDefault.
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
