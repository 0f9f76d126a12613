/**
 * The two recipes the downtime benchmark compares, both written from recipes/bluemind.yaml:
 *
 *   staged     download: stage-refresh, stage-packages       (before the window, no downtime)
 *              upgrade:  maintenance-on, backup-config, apply-packages, maintenance-off
 *   unstaged   download: (nothing)
 *              upgrade:  maintenance-on, stage-refresh, stage-packages, backup-config,
 *                        apply-packages, maintenance-off
 *
 * The same steps, the download moved into the window. Both switch the fake BlueMind into
 * maintenance (PUT/DELETE its /maintenance) at the start and the end of the upgrade phase: with
 * only bm-core's preinst/postinst doing it, an upgrade that downloads first would download
 * before preinst and the download would never count as downtime. The service's maintenance span
 * is therefore the whole upgrade phase in both.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { aptArgv } from '../../agent/steps/apt';
import { compileRecipe } from '../../shared/recipe/compile';
import type { Recipe, Step } from '../../shared/recipe/types';
import { ROOT } from './paths';

export type Variant = 'staged' | 'unstaged';

interface RawRecipe {
  name: string;
  vars: Record<string, string>;
  phases: Record<'download' | 'upgrade' | 'rollback', Record<string, unknown>[]>;
}

function maintenanceStep(id: string, action: 'on' | 'off'): Record<string, unknown> {
  return {
    id,
    type: 'maintenance',
    action,
    url: '{{var.maintenanceUrl}}',
    source: 'benchmark: the maintenance window of the upgrade phase, the same in both variants',
  };
}

/** The recipe YAML of one variant. */
export function benchRecipeYaml(variant: Variant): string {
  const text = readFileSync(path.join(ROOT, 'recipes/bluemind.yaml'), 'utf8');
  const r = YAML.parse(text) as RawRecipe;
  const download = r.phases.download;
  r.name = `bluemind-bench-${variant}`;
  r.vars = { ...r.vars, maintenanceUrl: 'http://127.0.0.1/maintenance' };
  r.phases.download = variant === 'staged' ? download : [];
  r.phases.upgrade = [
    maintenanceStep('maintenance-on', 'on'),
    ...(variant === 'unstaged' ? download : []),
    ...r.phases.upgrade,
    maintenanceStep('maintenance-off', 'off'),
  ];
  // A failed upgrade must not leave the service in maintenance.
  r.phases.rollback = [...r.phases.rollback, maintenanceStep('rollback-maintenance-off', 'off')];
  const yaml = YAML.stringify(r);
  compileRecipe(yaml, `${r.name}.yaml`); // fails here, with every problem, rather than at plan time
  return yaml;
}

/** The argv the agent runs for one apt step of the staged recipe (`apply-packages`, `stage-packages`). */
export function aptArgvOf(stepId: string): string[] {
  const recipe: Recipe = compileRecipe(benchRecipeYaml('staged'), 'bluemind-bench-staged.yaml');
  const steps: Step[] = [...recipe.phases.download, ...recipe.phases.upgrade];
  const step = steps.find((s) => s.id === stepId);
  if (step?.type !== 'apt') throw new Error(`bluemind-bench-staged has no apt step ${stepId}`);
  return aptArgv(step);
}
