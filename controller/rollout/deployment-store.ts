/**
 * Deployments as `convoy apply` stores them: the fleet file's deployment, every window of the
 * file, and the recipe text it names (so a rollout never depends on a file that changed since).
 */
import { createHash } from 'node:crypto';
import { ConvoyError } from '../../shared/errors';
import type { DeploymentSpec, WindowSpec } from '../../shared/fleet/types';
import type { Store } from '../store/store';
import { prepareRecipe } from '../phase/recipe';
import { appendEvent } from '../store/events';
import type { StoredDeployment } from './plan';

export interface DeploymentChange {
  readonly name: string;
  readonly action: 'created' | 'updated' | 'unchanged';
  readonly diff: readonly string[];
}

/** Checks what the controller can check (the recipe compiles, vars exist), then stores or not. */
export async function applyDeployments(
  store: Store,
  incoming: readonly StoredDeployment[],
  opts: { dryRun: boolean; source: string; actor: string; nowMs: number },
): Promise<DeploymentChange[]> {
  const names = new Set<string>();
  for (const d of incoming) {
    if (names.has(d.spec.name))
      throw new ConvoyError('INVALID_ARGUMENT', `deployment ${d.spec.name} appears twice`, {
        field: 'deployments',
      });
    names.add(d.spec.name);
    const { recipe } = prepareRecipe(d.recipeYaml, d.recipeLabel);
    const declared = (vars: Readonly<Record<string, string>>, where: string): void => {
      for (const key of Object.keys(vars)) {
        if (!Object.prototype.hasOwnProperty.call(recipe.vars, key))
          throw new ConvoyError(
            'INVALID_ARGUMENT',
            `deployment ${d.spec.name}: ${where}.${key}: recipe ${recipe.name} declares no var ${key} (it has ${Object.keys(recipe.vars).join(', ') || 'none'})`,
            { field: `${where}.${key}` },
          );
      }
    };
    declared(d.spec.vars, 'vars');
    d.spec.hosts.forEach((h, i) => declared(h.vars, `hosts[${i}].vars`));
    if (d.windows[d.spec.window] === undefined)
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `deployment ${d.spec.name}: window ${d.spec.window} is not defined`,
        {
          field: 'window',
        },
      );
  }
  const stored = await listDeployments(store);
  const before = new Map(stored.map((d) => [d.spec.name, d]));
  const changes: DeploymentChange[] = incoming.map((d) => {
    const old = before.get(d.spec.name);
    if (old === undefined) return { name: d.spec.name, action: 'created', diff: [] };
    const diff = diffValues(comparable(old), comparable(d), '');
    return { name: d.spec.name, action: diff.length === 0 ? 'unchanged' : 'updated', diff };
  });
  if (opts.dryRun) return changes;
  await store.db.write(async (tx) => {
    for (const d of incoming) {
      const change = changes.find((c) => c.name === d.spec.name);
      if (change?.action === 'unchanged') continue;
      const specJson = JSON.stringify({ spec: d.spec, windows: d.windows, recipeLabel: d.recipeLabel });
      await tx.run(
        `INSERT INTO deployments (name, spec_json, recipe_yaml, digest, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET spec_json = excluded.spec_json, recipe_yaml = excluded.recipe_yaml,
             digest = excluded.digest, updated_at = excluded.updated_at`,
        [d.spec.name, specJson, d.recipeYaml, sha256(specJson + d.recipeYaml), opts.nowMs],
      );
      await appendEvent(tx, {
        at: opts.nowMs,
        actor: opts.actor,
        kind: `deployment.${change?.action ?? 'updated'}`,
        data: { deployment: d.spec.name, source: opts.source, diff: change?.diff ?? [] },
      });
    }
  });
  return changes;
}

export async function listDeployments(store: Store): Promise<StoredDeployment[]> {
  const rows = await store.db.all<{ spec_json: string; recipe_yaml: string }>(
    'SELECT spec_json, recipe_yaml FROM deployments ORDER BY name',
  );
  return rows.map((r) => {
    const j = JSON.parse(r.spec_json) as {
      spec: DeploymentSpec;
      windows: Record<string, WindowSpec>;
      recipeLabel: string;
    };
    return { spec: j.spec, windows: j.windows, recipeYaml: r.recipe_yaml, recipeLabel: j.recipeLabel };
  });
}

export async function getDeployment(store: Store, name: string): Promise<StoredDeployment> {
  const found = (await listDeployments(store)).find((d) => d.spec.name === name);
  if (found === undefined)
    throw new ConvoyError(
      'DEPLOYMENT_UNKNOWN',
      `no deployment named ${JSON.stringify(name)}; convoy apply a fleet file first`,
    );
  return found;
}

function comparable(d: StoredDeployment): unknown {
  return { ...d.spec, window: d.windows[d.spec.window], recipeText: sha256(d.recipeYaml).slice(0, 12) };
}

/** `path: old -> new` for every leaf that differs. */
export function diffValues(a: unknown, b: unknown, path: string): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) =>
      diffValues(a[k], b[k], path === '' ? k : Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`),
    );
  }
  const sa = JSON.stringify(a);
  const sb = JSON.stringify(b);
  return sa === sb ? [] : [`${path}: ${sa ?? '(none)'} -> ${sb ?? '(none)'}`];
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
