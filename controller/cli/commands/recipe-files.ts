/**
 * Where recipes come from, for `recipe validate|show`, `phase run` and `apply`: a file path, or a
 * built-in name in the repository's `recipes/NAME.yaml` (or $CONVOY_RECIPES_DIR).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConvoyError } from '../../../shared/errors';
import { compileRecipe, RECIPE_NAME, RecipeError } from '../../../shared/recipe/compile';
import type { Recipe } from '../../../shared/recipe/types';

/** The directory of built-in recipes: $CONVOY_RECIPES_DIR, else `recipes/` at the package root. */
export function recipesDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.CONVOY_RECIPES_DIR;
  if (override !== undefined && override !== '') return path.resolve(override);
  // From source this file is controller/cli/commands/; from the build, dist/controller/cli/commands/.
  const candidates = [
    path.resolve(__dirname, '../../..', 'recipes'),
    // The one-file CLI (dist/bundle/convoy.js).
    path.resolve(__dirname, '../..', 'recipes'),
    path.resolve(__dirname, '../../../..', 'recipes'),
  ];
  return candidates.find((dir) => existsSync(dir)) ?? candidates[0] ?? 'recipes';
}

/** A path (anything with a `/` or a .yaml/.yml suffix) as is; a bare name in recipesDir(). */
export function resolveRecipe(what: string): string {
  if (what.includes('/') || what.includes(path.sep) || /\.ya?ml$/.test(what)) return what;
  const dir = recipesDir();
  const file = path.join(dir, `${what}.yaml`);
  if (RECIPE_NAME.test(what) && existsSync(file)) return file;
  let known: string[] = [];
  try {
    known = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -'.yaml'.length));
  } catch {
    // No recipes directory: the message below says where it looked.
  }
  const available = known.length > 0 ? known.sort().join(', ') : 'none';
  throw new ConvoyError(
    'INVALID_ARGUMENT',
    `no built-in recipe ${JSON.stringify(what)} in ${dir} (available: ${available}); give a path for a file`,
  );
}

/** Reads and compiles a recipe file; an unreadable file is a RecipeError like any other problem. */
export function loadRecipeFile(file: string): Recipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RecipeError(file, [
      { path: '', message: `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})` },
    ]);
  }
  return compileRecipe(text, file);
}
