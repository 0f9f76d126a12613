/**
 * Fake application hosts for running the built-in recipes for real, phase by phase: the recipe
 * compiled from `recipes/NAME.yaml`, the real step registry, a real PhaseJournal in a temp state
 * directory, and one run id for the whole rollout of a host, so that later phases see the results
 * of earlier ones (`binary.replace` finds what `artifact` staged, `restore` finds the backup), as
 * the journal keeps them for a run id. Also: the recipe's own version probe, run on the fake host,
 * and small real programs (scripts) standing in for vendor tools.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PhaseJournal } from '../../agent/phase/journal';
import { runPhase, type PhaseOutcome, type StepRecord } from '../../agent/phase/runner';
import { execOnHost } from '../../agent/host/exec';
import { STEP_REGISTRY } from '../../agent/steps';
import { silentLogger } from '../../shared/logger';
import { compileRecipe } from '../../shared/recipe/compile';
import { interpolate, placeholderValues } from '../../shared/recipe/interpolate';
import type { PhaseName, Recipe } from '../../shared/recipe/types';
import { ROOT, tempDir } from './processes';
import { runnerContext } from './step-context';

/** A built-in recipe, compiled from its file exactly as shipped. */
export function builtInRecipe(name: string): Recipe {
  const file = path.join(ROOT, 'recipes', `${name}.yaml`);
  return compileRecipe(readFileSync(file, 'utf8'), file);
}

/**
 * Runs the recipe's `versions.installed` probe on this machine (argv with placeholders filled,
 * no shell) and returns the first group of the first match, or throws saying what it saw.
 */
export async function probeInstalled(
  recipe: Recipe,
  overrides: Readonly<Record<string, string>>,
): Promise<string> {
  const values = placeholderValues(recipe, {}, overrides);
  const argv = recipe.versions.installed.argv.map((a) => interpolate(a, values));
  const res = await execOnHost({ argv, timeoutMs: 10_000 });
  const match = new RegExp(recipe.versions.installed.pattern).exec(res.stdout);
  if (res.code !== 0 || match?.[1] === undefined) {
    throw new Error(
      `version probe ${argv.join(' ')} exited ${res.code} with ${JSON.stringify(res.stdout + res.stderr)}`,
    );
  }
  return match[1];
}

export interface FakeHostOptions {
  readonly recipe: Recipe;
  readonly target: string;
  readonly installed: string;
  /** Recipe var overrides by plain name (`appDir`, not `var.appDir`). */
  readonly vars: Readonly<Record<string, string>>;
  /** Ed25519 public keys the agent pins for release artifacts and downgrade permits. */
  readonly releaseKeys?: readonly Uint8Array[];
}

/** One host's agent side: its state directory, journal and rollout run id. */
export class FakeHost {
  readonly stateDir = tempDir('app-state');
  readonly runId = randomUUID();
  readonly vars: Readonly<Record<string, string>>;
  private readonly journal = PhaseJournal.open(this.stateDir);

  constructor(private readonly options: FakeHostOptions) {
    this.vars = placeholderValues(
      options.recipe,
      { target: options.target, installed: options.installed },
      options.vars,
    );
  }

  get stagingDir(): string {
    return path.join(this.stateDir, 'staging');
  }

  run(phase: PhaseName): Promise<PhaseOutcome> {
    return runPhase(
      { recipe: this.options.recipe, phase, roles: [], vars: this.vars, runId: this.runId },
      {
        registry: STEP_REGISTRY,
        journal: this.journal,
        context: {
          ...runnerContext({ stateDir: this.stateDir }),
          releaseKeys: this.options.releaseKeys ?? [],
        },
        log: silentLogger,
      },
    );
  }

  cleanup(): void {
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** `[id, status, ok, error code]` per step, for one readable assertion on a whole phase. */
export function stepSummary(outcome: PhaseOutcome): [string, StepRecord['status'], boolean?, string?][] {
  return outcome.steps.map((s) => {
    const row: [string, StepRecord['status'], boolean?, string?] = [s.step.id, s.status];
    if (s.result !== undefined) row.push(s.result.ok);
    if (s.result?.error !== undefined) row.push(s.result.error.code);
    return row;
  });
}

/** Writes an executable script (mode 0755), making its directory. */
export function writeScript(file: string, body: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, body);
  chmodSync(file, 0o755);
  return file;
}

/** Single-quotes a value for a POSIX shell script the test writes (paths of temp dirs). */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Lines of a log file, or none when it does not exist yet. */
export function logLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
  } catch {
    return [];
  }
}

export interface FakeOcc {
  /** The `occ` script. */
  readonly occ: string;
  /** The config directory (the recipe's `dataDir`, which the checkpoint backs up). */
  readonly configDir: string;
  readonly configFile: string;
  /** Exists while maintenance mode is on. */
  readonly maintenanceFlag: string;
  /** One line per occ call: its arguments and whether maintenance was on. */
  readonly log: string;
  /** The version of the code the package manager deployed: what `occ upgrade` migrates to. */
  deployCode(version: string): void;
  /** Knob: the next `occ upgrade` writes the new version into config.php, then fails. */
  failUpgrade(fail: boolean): void;
  readonly appsUpgraded: string;
}

/**
 * A fake ownCloud `occ` (a POSIX shell script) keeping its state in `dir`: the version lives in
 * `config/config.php` as in ownCloud, maintenance mode is a flag file, `upgrade` moves the config
 * to the deployed code's version (failing half-way when the knob is set), `market:upgrade --major`
 * records that the apps were upgraded.
 */
export function createFakeOcc(dir: string, installedVersion: string): FakeOcc {
  const configDir = path.join(dir, 'config');
  const configFile = path.join(configDir, 'config.php');
  const state = path.join(dir, 'state');
  mkdirSync(configDir, { recursive: true });
  mkdirSync(state, { recursive: true });
  writeFileSync(
    configFile,
    `<?php\n$CONFIG = array (\n  'instanceid' => 'oc0123456789',\n  'version' => '${installedVersion}',\n  'installed' => true,\n);\n`,
  );
  const flag = path.join(state, 'maintenance.flag');
  const log = path.join(state, 'occ.log');
  const code = path.join(state, 'code-version');
  const fail = path.join(state, 'fail-upgrade');
  const apps = path.join(state, 'apps-upgraded');
  writeFileSync(code, `${installedVersion}\n`);
  const occ = writeScript(
    path.join(dir, 'occ'),
    `#!/bin/sh
# Fake ownCloud occ (test/helpers/fake-apps.ts).
config=${shq(configFile)}
flag=${shq(flag)}
m=off; [ -f "$flag" ] && m=on
echo "$* [maintenance $m]" >> ${shq(log)}
version=$(sed -n "s/^  'version' => '\\([0-9.]*\\)',$/\\1/p" "$config")
case "$1" in
  status)
    vs=$(echo "$version" | cut -d. -f1-3)
    mj=false; [ -f "$flag" ] && mj=true
    if [ "$2" = --output=json ]; then
      printf '{"installed":true,"version":"%s","versionstring":"%s","edition":"Community","maintenance":%s}\\n' "$version" "$vs" "$mj"
    else
      printf '  - installed: true\\n  - version: %s\\n  - versionstring: %s\\n  - maintenance: %s\\n' "$version" "$vs" "$mj"
    fi
    ;;
  maintenance:mode)
    case "$2" in
      --on) touch "$flag"; echo "Maintenance mode enabled" ;;
      --off) rm -f "$flag"; echo "Maintenance mode disabled" ;;
      *) echo "maintenance:mode needs --on or --off" >&2; exit 1 ;;
    esac
    ;;
  upgrade)
    new=$(cat ${shq(code)})
    sed -i "s/^  'version' => '[0-9.]*',$/  'version' => '$new',/" "$config"
    if [ -f ${shq(fail)} ]; then echo "Exception: Database error when running migration $new" >&2; exit 1; fi
    echo "Update successful: $version -> $new"
    ;;
  market:upgrade)
    [ "$2" = --major ] || { echo "market:upgrade: expected --major" >&2; exit 1; }
    echo "$version" > ${shq(apps)}
    echo "All apps are up to date"
    ;;
  *)
    echo "occ: unknown command $1" >&2; exit 1 ;;
esac
`,
  );
  return {
    occ,
    configDir,
    configFile,
    maintenanceFlag: flag,
    log,
    appsUpgraded: apps,
    deployCode: (version) => writeFileSync(code, `${version}\n`),
    failUpgrade: (on) => (on ? writeFileSync(fail, '') : rmSync(fail, { force: true })),
  };
}
