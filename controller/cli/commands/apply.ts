/**
 * `convoy apply FLEET.yaml`: the fleet file validated here (every problem with its path), its
 * recipes read beside it, the difference shown, and the deployments stored unless `--dry-run`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import { loadFleetFile } from '../../fleet-file';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson } from '../output';
import { resolveRecipe } from './recipe-files';

export function registerApply(program: Command): void {
  withConnectionOptions(program.command('apply'))
    .description('validate a fleet file, show what changes, and store its deployments')
    .argument('<fleet.yaml>', 'the fleet definition')
    .option('--dry-run', 'show the difference only')
    .action((file: string, flags: CommonFlags & { dryRun?: boolean }) =>
      withClient(
        flags,
        async (client, deployments) => {
          const res = await client.call<{ changes: { name: string; action: string; diff: string[] }[] }>(
            'ApplyFleet',
            {
              deploymentsJson: JSON.stringify(deployments),
              dryRun: flags.dryRun === true,
              source: path.resolve(file),
            },
          );
          if (flags.json === true) return printJson({ dryRun: flags.dryRun === true, ...res });
          for (const c of res.changes) {
            process.stdout.write(`${c.action.padEnd(9)} ${c.name}\n`);
            for (const d of c.diff) process.stdout.write(`          ${d}\n`);
          }
          if (flags.dryRun === true) process.stdout.write('(dry run: nothing stored)\n');
        },
        () => compileFleet(file),
      ),
    );
}

/** Loads and validates the fleet file here (every problem with its path), with its recipes' text. */
function compileFleet(file: string): unknown[] {
  const fleet = loadFleetFile(file);
  return fleet.deployments.map((d) => {
    const recipeFile = path.isAbsolute(d.recipe) ? d.recipe : resolveRecipe(d.recipe);
    let recipeYaml: string;
    try {
      recipeYaml = readFileSync(recipeFile, 'utf8');
    } catch (err) {
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `${file}: deployment ${d.name}: recipe ${recipeFile}: ${(err as Error).message}`,
        { file },
      );
    }
    return { spec: d, windows: fleet.windows, recipeYaml, recipeLabel: recipeFile };
  });
}
