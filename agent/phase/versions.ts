/**
 * Reads versions on the host with the recipe's probes: the installed version (first match of
 * `versions.installed.pattern` in the probe's output) and, for a check, every available version.
 * A probe that fails or matches nothing yields no version rather than failing the phase: the
 * check phase itself says whether the host is healthy.
 */
import { interpolate, type PlaceholderValues } from '../../shared/recipe/interpolate';
import type { Recipe, VersionProbe } from '../../shared/recipe/types';
import type { Exec } from '../host/exec';

const PROBE_TIMEOUT_MS = 30_000;

export interface VersionsSeen {
  readonly installed?: string;
  readonly available?: readonly string[];
}

export async function probeVersions(
  recipe: Recipe,
  vars: PlaceholderValues,
  exec: Exec,
  env: Readonly<Record<string, string>>,
  wantAvailable: boolean,
): Promise<VersionsSeen> {
  const installedOut = await runProbe(recipe.versions.installed, vars, exec, env);
  const installed =
    installedOut === undefined ? undefined : matches(recipe.versions.installed.pattern, installedOut)[0];
  if (!wantAvailable || recipe.versions.available === undefined)
    return installed === undefined ? {} : { installed };
  const availableOut = await runProbe(recipe.versions.available, vars, exec, env);
  const available =
    availableOut === undefined ? [] : [...new Set(matches(recipe.versions.available.pattern, availableOut))];
  return { ...(installed === undefined ? {} : { installed }), available };
}

async function runProbe(
  probe: VersionProbe,
  vars: PlaceholderValues,
  exec: Exec,
  env: Readonly<Record<string, string>>,
): Promise<string | undefined> {
  try {
    const argv = probe.argv.map((a) => interpolate(a, vars));
    const r = await exec({ argv, env, timeoutMs: PROBE_TIMEOUT_MS, maxOutputBytes: 256 * 1024 });
    return r.code === 0 ? r.stdout : undefined;
  } catch {
    return undefined; // a probe naming a var with no value, or a program that is not there
  }
}

/** First capture group of every match, line by line (so `^`/`$` anchor lines). */
function matches(pattern: string, text: string): string[] {
  const re = new RegExp(pattern, 'gm');
  return [...text.matchAll(re)].map((m) => m[1]).filter((v): v is string => v !== undefined && v !== '');
}

/**
 * The variables a phase runs with: `installed` read by the probe when nobody supplied it, and for
 * a check the available versions too. Probes run only when their answer is needed.
 */
export async function withProbedVersions(
  recipe: Recipe,
  vars: PlaceholderValues,
  wantAvailable: boolean,
  exec: Exec,
  env: Readonly<Record<string, string>>,
): Promise<{ vars: PlaceholderValues; seen: VersionsSeen }> {
  const known = vars['installed'];
  if (known !== undefined && !wantAvailable) return { vars, seen: {} };
  const seen = await probeVersions(recipe, vars, exec, env, wantAvailable);
  const filled =
    known === undefined && seen.installed !== undefined ? { ...vars, installed: seen.installed } : vars;
  return { vars: filled, seen };
}
