/**
 * The `apt` step's I/O besides the front end's own runs: dpkg's options and database
 * (dpkg-query), the versions the package lists offer (apt-cache madison), the archive cache, and
 * the pin preferences file it writes under the agent's state directory. Every command runs with
 * the context's environment, so an isolated root (APT_CONFIG) is honoured throughout.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AptStep } from '../../shared/recipe/types';
import { DPKG_QUERY_FORMAT, parseDpkgQuery, parseMadison, type InstalledPackage } from './apt-pin';
import { runArgv, type RunArgvResult } from './exec';
import type { StepContext } from './step';

export const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' };
const BIG_STDOUT = 8 * 1024 * 1024;

export function runAptTool(
  ctx: StepContext,
  step: AptStep,
  argv: readonly string[],
  options: { fullStdoutBytes?: number; deadline?: number; cwd?: string; acceptExitCodes?: number[] } = {},
): Promise<RunArgvResult> {
  const { deadline, fullStdoutBytes, cwd, acceptExitCodes } = options;
  const timeoutMs = deadline === undefined ? step.timeoutMs : Math.max(1000, deadline - ctx.now());
  return runArgv(ctx, {
    argv,
    env: APT_ENV,
    timeoutMs,
    cwd,
    ...(fullStdoutBytes ? { fullStdoutBytes } : {}),
    ...(acceptExitCodes ? { acceptExitCodes } : {}),
  });
}

/** The options apt passes dpkg (an isolated root's `--root`, `--admindir`, `--log` among them). */
export async function dpkgOptions(ctx: StepContext, step: AptStep): Promise<string[]> {
  const dump = await runAptTool(ctx, step, ['apt-config', 'dump', '--format', '%v%n', 'DPkg::Options'], {
    fullStdoutBytes: 1024 * 1024,
  });
  return dump.stdout.split('\n').filter((line) => line.trim() !== '');
}

/** `--admindir=` (and for dpkg-repack `--root=`) from dpkg's options; none on an ordinary host. */
export function optionValue(options: readonly string[], name: string): string | undefined {
  const found = options.find((o) => o.startsWith(`${name}=`));
  return found?.slice(name.length + 1);
}

/**
 * Installed packages matching `patterns` (dpkg-query globs), or every installed package when
 * `patterns` is empty. A pattern matching nothing is not an error.
 */
export async function queryInstalled(
  ctx: StepContext,
  step: AptStep,
  dpkgOpts: readonly string[],
  patterns: readonly string[],
): Promise<InstalledPackage[]> {
  const admindir = optionValue(dpkgOpts, '--admindir');
  const ran = await runAptTool(
    ctx,
    step,
    [
      'dpkg-query',
      ...(admindir === undefined ? [] : [`--admindir=${admindir}`]),
      '-W',
      '-f',
      DPKG_QUERY_FORMAT,
      ...patterns,
    ],
    // dpkg-query exits 1 when a pattern matches no package; the others are still listed.
    { fullStdoutBytes: BIG_STDOUT, acceptExitCodes: [0, 1] },
  );
  return parseDpkgQuery(ran.stdout).filter((p) => !p.status.startsWith('un') && !p.status.startsWith('pn'));
}

/** Every version the package lists offer for each name (not the installed-only ones). */
export async function offeredVersions(
  ctx: StepContext,
  step: AptStep,
  names: readonly string[],
): Promise<Map<string, string[]>> {
  if (names.length === 0) return new Map();
  const ran = await runAptTool(ctx, step, ['apt-cache', 'madison', ...names], {
    fullStdoutBytes: BIG_STDOUT,
  });
  return parseMadison(ran.stdout);
}

/** The `.deb` file names in the archive cache (none when it does not exist yet). */
export async function cachedDebFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir).catch(() => []);
  return entries.filter((f) => f.endsWith('.deb')).sort();
}

/** The host's main preferences file (`/etc/apt/preferences`), as apt's configuration names it. */
async function hostPreferencesFile(ctx: StepContext, step: AptStep): Promise<string | undefined> {
  const ran = await runAptTool(ctx, step, ['apt-config', 'shell', 'P', 'Dir::Etc::Preferences/f'], {
    fullStdoutBytes: 64 * 1024,
  });
  return /^P='(.+)'$/m.exec(ran.stdout)?.[1];
}

/**
 * Writes `<stateDir>/apt-pins/<step id>.pref` (temp file + rename): the pins, then the host's own
 * main preferences file, which the option below replaces for this command only. Returns the apt
 * options that use it; the host's preferences.d is still read as usual.
 */
export async function writePinFile(
  ctx: StepContext,
  step: AptStep,
  render: (hostPreferences: string) => string,
): Promise<string[]> {
  const hostFile = await hostPreferencesFile(ctx, step);
  const host = hostFile === undefined ? '' : await readFile(hostFile, 'utf8').catch(() => '');
  const dir = path.join(ctx.stateDir, 'apt-pins');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${step.id}.pref`);
  await writeFile(`${file}.tmp`, render(host));
  await rename(`${file}.tmp`, file);
  return ['-o', `Dir::Etc::Preferences=${file}`];
}
