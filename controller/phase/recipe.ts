/**
 * A recipe as the controller sends it: compiled once, with the digest the agent checks the
 * recipe it receives against.
 */
import { sha256Hex } from '../../shared/envelope';
import { compileRecipeData, RecipeError } from '../../shared/recipe/compile';
import type { Recipe } from '../../shared/recipe/types';
import { readRecipeYaml } from '../../shared/recipe/yaml-source';

export interface PreparedRecipe {
  readonly recipe: Recipe;
  readonly data: unknown;
  readonly digest: string;
}

export function prepareRecipe(yaml: string, label: string): PreparedRecipe {
  const source = readRecipeYaml(yaml);
  if (source.data === undefined) throw new RecipeError(label, source.problems);
  const recipe = compileRecipeData(source.data, label, source.problems);
  return { recipe, data: source.data, digest: sha256Hex(Buffer.from(JSON.stringify(source.data))) };
}
