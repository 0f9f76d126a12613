/**
 * Version cautions: what the vendor warns about when crossing from one version range to another
 * (BlueMind 4.0 -> 4.1 deletes virtual inbox folders). A plan shows every caution that matches.
 */
import semver from 'semver';
import { parseVersion } from '../semver-policy';
import type { Caution, Recipe } from './types';

/**
 * The cautions whose `from` range holds `installed` and whose `to` range holds `target`, in
 * recipe order. Versions are read as the policy reads them (a leading `v`, packaging revisions),
 * and prereleases count (4.1.0-rc.1 is inside `>=4.1`: a caution must not vanish for an rc). A
 * version that does not parse matches nothing; the policy refuses such a plan anyway.
 */
export function matchCautions(recipe: Recipe, installed: string, target: string): readonly Caution[] {
  const from = parseVersion(installed);
  const to = parseVersion(target);
  if (from === null || to === null) return [];
  const options = { includePrerelease: true };
  return recipe.cautions.filter(
    (c) => semver.satisfies(from, c.from, options) && semver.satisfies(to, c.to, options),
  );
}
