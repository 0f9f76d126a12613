/**
 * Fake application hosts for running the built-in recipes for real, phase by phase: the recipe
 * compiled from `recipes/NAME.yaml`, the real step registry, a real PhaseJournal in a temp state
 * directory, and one run id for the whole rollout of a host, so that later phases see the results
 * of earlier ones (`binary.replace` finds what `artifact` staged, `restore` finds the backup), as
 * the journal keeps them for a run id. Also: the recipe's own version probes, run on the fake host,
 * small real programs (scripts) standing in for vendor tools, and a fake ownCloud whose occ, like
 * the real one, runs only as the owner of config.php (the fake Cells is in fake-cells.ts).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PhaseJournal } from '../../agent/phase/journal';
import { runPhase, type PhaseOutcome, type StepRecord } from '../../agent/phase/runner';
import { execOnHost } from '../../agent/host/exec';
import { assertTools } from '../../scripts/fixtures/tools';
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
  /** The agent's environment for its children (APT_CONFIG of an isolated root). */
  readonly env?: Readonly<Record<string, string>>;
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

  /** Runs PHASE; `failStep` makes that step report failure after doing its work (`fail:STEP`). */
  run(phase: PhaseName, failStep?: string): Promise<PhaseOutcome> {
    return runPhase(
      { recipe: this.options.recipe, phase, roles: [], vars: this.vars, runId: this.runId },
      {
        registry: STEP_REGISTRY,
        journal: this.journal,
        context: {
          ...runnerContext({ stateDir: this.stateDir, env: this.options.env ?? {} }),
          releaseKeys: this.options.releaseKeys ?? [],
        },
        log: silentLogger,
        failpoint: (boundary, stepId) => boundary === 'fail' && stepId === failStep,
      },
    );
  }

  cleanup(): void {
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** Runs the recipe's `versions.available` probe on this machine: every version it lists. */
export async function probeAvailable(
  recipe: Recipe,
  overrides: Readonly<Record<string, string>>,
): Promise<string[]> {
  const probe = recipe.versions.available;
  if (probe === undefined) throw new Error(`${recipe.name} has no versions.available probe`);
  const values = placeholderValues(recipe, {}, overrides);
  const argv = probe.argv.map((a) => interpolate(a, values));
  const res = await execOnHost({ argv, timeoutMs: 10_000 });
  if (res.code !== 0) throw new Error(`${argv.join(' ')} exited ${res.code}: ${res.stderr}`);
  // Each version once, as the agent's probe keeps them (agent/phase/versions.ts).
  return [
    ...new Set(
      [...res.stdout.matchAll(new RegExp(probe.pattern, 'gm'))].flatMap((m) =>
        m[1] === undefined ? [] : [m[1]],
      ),
    ),
  ];
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

/** The account a fake ownCloud runs as: the owner of its config.php (Debian's web server user). */
export const WEB_USER = { name: 'www-data', uid: 33, gid: 33 } as const;

/**
 * Lets the web user reach DIR: DIR becomes 0755, and each parent below / gains search permission
 * for others (o+x, nothing else: mkdtemp makes them 0700, the test runner's per-file temp
 * directories included).
 */
export function openPath(dir: string): void {
  chmodSync(dir, 0o755);
  for (let d = path.dirname(path.resolve(dir)); d !== path.dirname(d); d = path.dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
  }
}

/** chown -R to the web user. */
export function giveToWebUser(dir: string): void {
  execFileSync('chown', ['-R', `${WEB_USER.uid}:${WEB_USER.gid}`, dir]);
}

export interface FakeOwncloud {
  /** The code directory (the recipe's `ocDir`): occ, version.php, config/, core/. */
  readonly ocDir: string;
  readonly configFile: string;
  /** The fake database (what mysqldump dumps and mysql loads): `schema VERSION` and the users. */
  readonly dbFile: string;
  /** One line per occ call: its arguments, its uid and whether maintenance was on. */
  readonly log: string;
  /** The version whose apps `market:upgrade` last upgraded. */
  readonly appsUpgraded: string;
  /** The fake MySQL tools, for the recipe vars. */
  readonly mysqldump: string;
  readonly mysql: string;
  /** Knob: the next `occ upgrade` migrates the database and config.php, then fails. */
  failUpgrade(fail: boolean): void;
  /** What the instance looks like from outside: config, code and database versions, maintenance. */
  state(): OwncloudState;
}

export interface OwncloudState {
  /** config.php's version (four parts), what the instance runs. */
  readonly config: string;
  /** version.php's version (four parts), the code on disk. */
  readonly code: string;
  /** The database schema version (four parts). */
  readonly schema: string;
  readonly maintenance: boolean;
  /** The users in the database: the data that must survive an upgrade and its rollback. */
  readonly users: string;
}

/** `10.9.1.2` -> `10,9,1,2` as version.php writes it. */
const versionPhp = (v: string): string =>
  `<?php\n$OC_Version = array(${v.split('.').join(',')});\n$OC_VersionString = '${v.split('.').slice(0, 3).join('.')}';\n`;

/**
 * occ (a POSIX shell script, run as `php occ` with php=/bin/sh). Like ownCloud's console.php it
 * refuses any user but the owner of config.php ("Console has to be executed with the user that
 * owns the file config/config.php"). The version the instance runs and maintenance mode live in
 * config.php, the code's version in version.php, the schema in the database file; `upgrade`
 * migrates the database and config.php to the code's version (failing after it when the knob is
 * set); `status` prints what ownCloud's does.
 */
function occScript(): string {
  return `#!/bin/sh
# Fake ownCloud occ (test/helpers/fake-apps.ts): the same in every release; its state and the
# database are found beside the code directory.
oc=$(cd "$(dirname "$0")" && pwd)
state="$oc/../state"
db="$oc/../db/owncloud.db"
config="$oc/config/config.php"
owner=$(stat -c %u "$config")
m=$(grep -q "'maintenance' => true" "$config" && echo on || echo off)
echo "$* [uid $(id -u)] [maintenance $m]" >> "$state/occ.log"
if [ "$(id -u)" != "$owner" ]; then
  echo "Console has to be executed with the user that owns the file config/config.php" >&2
  echo "Current user id: $(id -u)" >&2
  echo "Owner id of config.php: $owner" >&2
  exit 1
fi
version=$(sed -n "s/^  'version' => '\\([0-9.]*\\)',$/\\1/p" "$config")
code=$(sed -n 's/^\\$OC_Version = array(\\([0-9,]*\\));$/\\1/p' "$oc/version.php" | tr , .)
case "$1" in
  status)
    vs=$(echo "$version" | cut -d. -f1-3)
    mj=false; [ "$m" = on ] && mj=true
    printf '  - installed: true\\n  - version: %s\\n  - versionstring: %s\\n  - edition: Community\\n  - maintenance: %s\\n' "$version" "$vs" "$mj"
    ;;
  maintenance:mode)
    case "$2" in
      --on) sed -i "s/^  'maintenance' => false,$/  'maintenance' => true,/" "$config"; echo "Maintenance mode enabled" ;;
      --off) sed -i "s/^  'maintenance' => true,$/  'maintenance' => false,/" "$config"; echo "Maintenance mode disabled" ;;
      *) echo "maintenance:mode needs --on or --off" >&2; exit 1 ;;
    esac
    ;;
  upgrade)
    if [ "$code" = "$version" ]; then echo "ownCloud is already latest version"; exit 0; fi
    older=$(printf '%s\\n%s\\n' "$code" "$version" | sort -V | head -n 1)
    if [ "$older" = "$code" ]; then echo "Updates between multiple major versions and downgrades are unsupported." >&2; exit 1; fi
    sed -i "s/^schema .*/schema $code/" "$db"
    sed -i "s/^  'version' => '[0-9.]*',$/  'version' => '$code',/" "$config"
    if [ -f "$state/fail-upgrade" ]; then echo "Exception: Database error when running migration $code" >&2; exit 1; fi
    echo "Update successful: $version -> $code"
    ;;
  market:upgrade)
    [ "$2" = --major ] || { echo "market:upgrade: expected --major" >&2; exit 1; }
    echo "$version" > "$state/apps-upgraded"
    echo "All apps are up to date"
    ;;
  *)
    echo "occ: unknown command $1" >&2; exit 1 ;;
esac
`;
}

/**
 * A fake ownCloud at INSTALLED (four parts, `10.8.0.4`) in DIR: code in `DIR/owncloud` owned by
 * the web user, a database file and the fake MySQL tools that dump and load it.
 */
export function createFakeOwncloud(dir: string, installed: string): FakeOwncloud {
  assertTools('curl', 'bzip2', 'tar');
  const ocDir = path.join(dir, 'owncloud');
  const state = path.join(dir, 'state');
  const db = path.join(dir, 'db', 'owncloud.db');
  const configFile = path.join(ocDir, 'config/config.php');
  mkdirSync(path.dirname(configFile), { recursive: true });
  mkdirSync(state, { recursive: true });
  mkdirSync(path.dirname(db), { recursive: true });
  writeFileSync(
    configFile,
    `<?php\n$CONFIG = array (\n  'instanceid' => 'oc0123456789',\n  'version' => '${installed}',\n  'installed' => true,\n  'maintenance' => false,\n  'dbname' => 'owncloud',\n);\n`,
  );
  chmodSync(configFile, 0o640);
  writeFileSync(path.join(ocDir, 'version.php'), versionPhp(installed));
  writeScript(path.join(ocDir, 'occ'), occScript());
  writeFileSync(db, `schema ${installed}\nusers alice,bob\n`);
  const mysqldump = writeScript(
    path.join(dir, 'bin/mysqldump'),
    `#!/bin/sh\n[ "$1" = --single-transaction ] && [ "$2" = owncloud ] || { echo "mysqldump: unexpected $*" >&2; exit 2; }\ncat ${shq(db)}\n`,
  );
  const mysql = writeScript(
    path.join(dir, 'bin/mysql'),
    `#!/bin/sh\n[ "$1" = owncloud ] || { echo "mysql: unexpected $*" >&2; exit 2; }\ncat > ${shq(db)}.load && mv ${shq(db)}.load ${shq(db)}\n`,
  );
  writeFileSync(path.join(state, 'occ.log'), '');
  giveToWebUser(ocDir);
  giveToWebUser(state);
  giveToWebUser(path.dirname(db));
  openPath(dir);
  const read = (file: string): string => readFileSync(file, 'utf8');
  const apps = path.join(state, 'apps-upgraded');
  return {
    ocDir,
    configFile,
    dbFile: db,
    log: path.join(state, 'occ.log'),
    appsUpgraded: apps,
    mysqldump,
    mysql,
    failUpgrade: (on) => {
      const knob = path.join(state, 'fail-upgrade');
      if (on) writeFileSync(knob, '');
      else rmSync(knob, { force: true });
    },
    state: () => ({
      config: /^ {2}'version' => '([0-9.]+)',$/m.exec(read(configFile))?.[1] ?? 'none',
      code: (
        /^\$OC_Version = array\(([0-9,]+)\);$/m.exec(read(path.join(ocDir, 'version.php')))?.[1] ?? 'none'
      ).replace(/,/g, '.'),
      schema: /^schema (\S+)$/m.exec(read(db))?.[1] ?? 'none',
      maintenance: read(configFile).includes("'maintenance' => true"),
      users: /^users (\S+)$/m.exec(read(db))?.[1] ?? 'none',
    }),
  };
}

/**
 * Publishes ownCloud VERSION (four parts) in RELEASES as download.owncloud.com does:
 * `owncloud-complete-X.Y.Z.tar.bz2` (an `owncloud/` tree: version.php, occ, a core file of that
 * release), its `.sha256`, and a line in `index.html`.
 */
export function publishOwncloudRelease(releases: string, version: string, occFrom: string): void {
  const short = version.split('.').slice(0, 3).join('.');
  const build = path.join(releases, `build-${version}`, 'owncloud');
  mkdirSync(path.join(build, 'core'), { recursive: true });
  writeFileSync(path.join(build, 'version.php'), versionPhp(version));
  writeFileSync(path.join(build, `core/release-${version}.php`), '<?php\n');
  writeFileSync(path.join(build, 'occ'), readFileSync(occFrom));
  chmodSync(path.join(build, 'occ'), 0o755);
  const name = `owncloud-complete-${short}.tar.bz2`;
  execFileSync('tar', [
    '-cjf',
    path.join(releases, name),
    '--owner=0',
    '--group=0',
    '-C',
    path.dirname(build),
    'owncloud',
  ]);
  rmSync(path.dirname(build), { recursive: true, force: true });
  const sum = execFileSync('sha256sum', [name], { cwd: releases, encoding: 'utf8' });
  writeFileSync(path.join(releases, `${name}.sha256`), sum);
  const index = path.join(releases, 'index.html');
  let html = '';
  try {
    html = readFileSync(index, 'utf8');
  } catch {
    html = '<html><body>\n';
  }
  writeFileSync(index, `${html}<a href="${name}">${name}</a>\n`);
}

/** ownCloud's status.php for a fake instance: installed, maintenance, needsDbUpgrade, versions. */
export function owncloudStatus(oc: FakeOwncloud): Record<string, unknown> {
  const st = oc.state();
  return {
    installed: true,
    maintenance: st.maintenance,
    needsDbUpgrade: st.code !== st.config,
    version: st.config,
    versionstring: st.config.split('.').slice(0, 3).join('.'),
    edition: 'Community',
  };
}
