/**
 * `fleet.yaml` -> the frozen FleetSpec of ./types.ts, or a FleetError listing every problem with
 * its path (`fleet.yaml: deployments[0].batches.concurrency: must be ...`). The format is in
 * docs/fleet.md; the schema is ./fleet-schema.ts and the checks across fields ./cross-checks.ts.
 *
 * The YAML is read as recipes are (../recipe/yaml-source.ts): size-limited, aliases refused (no
 * billion laughs), duplicate keys reported, and objects built from known keys only, so a
 * `__proto__` key is reported, never assigned.
 */
import { readFileSync, statSync } from 'node:fs';
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
 * Loads fleet YAML; `file` names it in messages and its directory anchors relative recipe paths
 * (made absolute against the working directory when `file` is relative).
 */
export function loadFleetText(text: string, file: string): FleetSpec {
  const source = readRecipeYaml(text);
  if (source.data === undefined) throw new FleetError(file, source.problems);
  const data: unknown = source.data;
  if (!isMapping(data))
    throw new FleetError(file, [
      ...source.problems,
      { path: '', message: 'must be a mapping of fields (windows, deployments)' },
    ]);
  const { value, problems } = validate(fleetSchema(path.dirname(path.resolve(file))), data);
  crossCheckFleet(data, problems);
  const all = [...source.problems, ...problems];
  if (all.length > 0 || value === undefined) throw new FleetError(file, all);
  return deepFreeze(value);
}

/** Reads and loads a fleet file; an unreadable or oversized file is a FleetError like any other. */
export function loadFleetFile(file: string): FleetSpec {
  let text: string;
  try {
    // Checked before reading, so a huge file is never loaded into memory.
    const stat = statSync(file);
    if (!stat.isFile()) throw new FleetError(file, [{ path: '', message: 'is not a regular file' }]);
    if (stat.size > MAX_FLEET_BYTES)
      throw new FleetError(file, [{ path: '', message: `larger than ${MAX_FLEET_BYTES} bytes` }]);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof FleetError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new FleetError(file, [{ path: '', message: `cannot read (${code})` }]);
  }
  return loadFleetText(text, file);
}

// Recurses into frozen objects too: shared defaults are frozen only at their top by withDefault.
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
