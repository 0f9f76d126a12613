/**
 * Whether a step's `when` holds on a host: by its roles, and by the versions the phase was sent
 * with. `{{installed}}` is the version the controller sends: the one the rollout was planned from
 * until the host's own verify passed, then the target (docs/recipes.md "Placeholders"). So
 * `installed: '>=4.1.0'` asks "is the update made from 4.1 or later" (BlueMind's 4.1+ prepare
 * step), and `onTarget` tells the rollout's final verify (after finalize: true) from the verify
 * right after a host's own upgrade (false).
 */
import semver from 'semver';
import { parseVersion } from '../semver-policy';
import type { StepCondition } from './types';

export interface ConditionFacts {
  readonly roles: readonly string[];
  /** `installed` and `target` as sent with the phase; either may be missing. */
  readonly installed?: string;
  readonly target?: string;
}

/**
 * True when every part of `when` holds (no `when`: true). A version part whose version is
 * missing or does not parse does not hold: a step guarded by a version runs only when the
 * version is known.
 */
export function conditionHolds(when: StepCondition | undefined, facts: ConditionFacts): boolean {
  if (when === undefined) return true;
  if (when.role !== undefined && !when.role.some((r) => facts.roles.includes(r))) return false;
  if (when.notRole !== undefined && when.notRole.some((r) => facts.roles.includes(r))) return false;
  if (when.installed !== undefined && !installedSatisfies(facts.installed, when.installed)) return false;
  if (when.onTarget !== undefined && onTarget(facts) !== when.onTarget) return false;
  return true;
}

function installedSatisfies(installed: string | undefined, range: string): boolean {
  const parsed = installed === undefined ? null : parseVersion(installed);
  return parsed !== null && semver.satisfies(parsed, range, { includePrerelease: true });
}

/** The host is recorded on the target: both versions known and equal as versions. */
function onTarget(facts: ConditionFacts): boolean {
  const installed = facts.installed === undefined ? null : parseVersion(facts.installed);
  const target = facts.target === undefined ? null : parseVersion(facts.target);
  return installed !== null && target !== null && semver.eq(installed, target);
}
