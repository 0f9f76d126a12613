/** `convoy recipe validate FILE...`: compile recipe files locally and list every problem. */
import type { Command } from 'commander';
import { countSteps, RecipeError } from '../../../shared/recipe/compile';
import { formatProblem, type Problem } from '../../../shared/schema';
import { EXIT_FAILURE, printJson } from '../output';
import { loadRecipeFile } from './recipe-files';

export function registerRecipeValidate(recipe: Command): void {
  recipe
    .command('validate')
    .description('compile recipe files and list every problem; exit 1 if any is invalid')
    .argument('<files...>', 'recipe YAML files')
    .option('--json', 'print JSON for scripts')
    .action((files: string[], flags: { json?: boolean }) => validateFiles(files, flags.json === true));
}

type Outcome =
  | { file: string; ok: true; name: string; steps: number }
  | { file: string; ok: false; problems: readonly Problem[] };

function validateFiles(files: readonly string[], json: boolean): void {
  const outcomes = files.map((file): Outcome => {
    try {
      const recipe = loadRecipeFile(file);
      return { file, ok: true, name: recipe.name, steps: countSteps(recipe) };
    } catch (err) {
      if (err instanceof RecipeError) return { file, ok: false, problems: err.problems };
      throw err;
    }
  });
  if (json) printJson({ files: outcomes });
  else {
    const lines = outcomes.flatMap((o) =>
      o.ok
        ? [`ok ${o.file} (${o.name}, ${o.steps} step${o.steps === 1 ? '' : 's'})`]
        : o.problems.map((p) => `${o.file}: ${formatProblem(p)}`),
    );
    process.stdout.write(lines.join('\n') + '\n');
  }
  const invalid = outcomes.filter((o) => !o.ok).length;
  if (invalid === 0) return;
  // The list above is the command's output; the failure itself is said once on stderr, as every
  // command that exits non-zero does (a script reading stderr sees why, not an empty line).
  const where = json ? 'in the JSON' : 'listed above';
  process.stderr.write(
    `convoy: RECIPE_INVALID: ${invalid} of ${outcomes.length} recipe file${outcomes.length === 1 ? '' : 's'} invalid (${where})\n`,
  );
  process.exitCode = EXIT_FAILURE;
}
