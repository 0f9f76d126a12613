/** `convoy recipe show NAME|FILE`: the phases, steps and cautions of a recipe, with no controller. */
import type { Command } from 'commander';
import { PHASES, type Recipe, type Step } from '../../../shared/recipe/types';
import { printJson, printTable, reportFailure } from '../output';
import { loadRecipeFile, resolveRecipe } from './recipe-files';

export function registerRecipeShow(recipe: Command): void {
  recipe
    .command('show')
    .description('show the phases, steps and cautions of a recipe')
    .argument('<recipe>', `a built-in recipe name (from recipes/, or $CONVOY_RECIPES_DIR) or a file path`)
    .option('--json', 'print the compiled recipe as JSON')
    .action((what: string, flags: { json?: boolean }) => {
      try {
        const recipe = loadRecipeFile(resolveRecipe(what));
        if (flags.json === true) printJson(recipe);
        else printRecipe(recipe);
      } catch (err) {
        reportFailure(err, flags.json === true);
      }
    });
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
    ...(s.when?.installed ? [`installed ${s.when.installed}`] : []),
    ...(s.when?.onTarget === undefined ? [] : [s.when.onTarget ? 'on target' : 'not yet on target']),
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
