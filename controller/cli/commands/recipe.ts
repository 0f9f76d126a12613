/**
 * `convoy recipe validate FILE...` and `convoy recipe show NAME|FILE`: recipes checked and shown
 * locally, with no controller. Built-in recipes live in the repository's `recipes/NAME.yaml`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import { formatProblem, type Problem } from '../../../shared/schema';
import { compileRecipe, countSteps, RECIPE_NAME, RecipeError } from '../../../shared/recipe/compile';
import { PHASES, type Recipe, type Step } from '../../../shared/recipe/types';
import { EXIT_FAILURE, printJson, printTable, reportFailure } from '../output';

interface JsonFlag {
  json?: boolean;
}

export function registerRecipe(program: Command): void {
  const recipe = program.command('recipe').description('check and show recipes (no controller needed)');
  recipe
    .command('validate')
    .description('compile recipe files and list every problem; exit 1 if any is invalid')
    .argument('<files...>', 'recipe YAML files')
    .option('--json', 'print JSON for scripts')
    .action((files: string[], flags: JsonFlag) => validateFiles(files, flags.json === true));
  recipe
    .command('show')
    .description('show the phases, steps and cautions of a recipe')
    .argument('<recipe>', `a built-in recipe name (from recipes/, or $CONVOY_RECIPES_DIR) or a file path`)
    .option('--json', 'print the compiled recipe as JSON')
    .action((what: string, flags: JsonFlag) => {
      try {
        const recipe = loadRecipeFile(resolveRecipe(what));
        if (flags.json === true) printJson(recipe);
        else printRecipe(recipe);
      } catch (err) {
        reportFailure(err, flags.json === true);
      }
    });
}

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
  if (outcomes.some((o) => !o.ok)) process.exitCode = EXIT_FAILURE;
}

function printRecipe(r: Recipe): void {
  const out = (line = ''): void => void process.stdout.write(line + '\n');
  out(r.description === '' ? r.name : `${r.name}: ${r.description}`);
  out(`installed version: ${r.versions.installed.argv.join(' ')}  /${r.versions.installed.pattern}/`);
  if (r.versions.available)
    out(`available versions: ${r.versions.available.argv.join(' ')}  /${r.versions.available.pattern}/`);
  out(`policy: ${policyText(r)}`);
  if (r.secrets.length > 0) out(`secrets: ${r.secrets.join(', ')}`);
  for (const [k, v] of Object.entries(r.vars)) out(`var ${k} = ${v}`);
  for (const phase of PHASES) {
    const steps = phase === 'finalize' ? (r.phases.finalize?.steps ?? []) : r.phases[phase];
    const once =
      phase === 'finalize' && r.phases.finalize
        ? `, once, on the host with role ${r.phases.finalize.role}`
        : '';
    out();
    out(`${phase} (${steps.length} step${steps.length === 1 ? '' : 's'}${once})`);
    if (steps.length > 0)
      printTable(['ID', 'TYPE', 'TIMEOUT', 'RETRIES', 'WHEN', 'SOURCE'], steps.map(stepRow));
  }
  out();
  out(r.cautions.length === 0 ? 'no cautions' : 'cautions:');
  for (const c of r.cautions) out(`  ${c.from} -> ${c.to}: ${c.message}`);
}

function policyText(r: Recipe): string {
  const p = r.policy;
  return [
    p.majorNeedsApproval ? 'major upgrades need --approve' : 'major upgrades proceed unattended',
    p.allowDowngrade ? 'downgrades need --approve' : 'downgrades refused',
    ...(p.allowedRange !== undefined ? [`target within ${p.allowedRange}`] : []),
    ...(p.pinnedVersion !== undefined ? [`pinned to ${p.pinnedVersion}`] : []),
  ].join('; ');
}

function stepRow(s: Step): string[] {
  const when = [
    ...(s.when?.role ? [`role ${s.when.role.join('|')}`] : []),
    ...(s.when?.notRole ? [`not role ${s.when.notRole.join('|')}`] : []),
  ];
  return [s.id, s.type, durationText(s.timeoutMs), String(s.retries), when.join(', ') || '-', s.source];
}

/** The form a recipe would use: `10m`, `1h30m`, `1s500ms`. */
export function durationText(ms: number): string {
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ];
  let rest = ms;
  let text = '';
  for (const [unit, size] of units) {
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text === '' ? '0s' : text;
}
