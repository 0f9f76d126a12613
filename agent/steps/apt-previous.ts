/**
 * The way back for `apt`: downloadOnly keeps the installed version of every package the upgrade
 * will change, and `restorePrevious` reinstalls those files from local disk.
 *
 * Kept under `<stateDir>/previous-packages/<step id>/`, with `manifest.json`
 * ([{name, version, arch, file, sha256}]) written last, atomically (temp file + rename): a manifest
 * only ever names files that are complete. Sources, in order: the archive cache (apt keeps what it
 * installed), the repository (`apt-get download NAME=VERSION`, while it still offers that version),
 * else the installed files rebuilt with `dpkg-repack` (same files and maintainer scripts, another
 * checksum). None of them: PREVIOUS_UNAVAILABLE, and the download fails, since without the file
 * there would be no way back.
 *
 * A download run again (resumed, or repeated in the same rollout) keeps what it kept before for a
 * package the upgrade already changed: `staged-for.json` records the target the manifest was made
 * for, and only a manifest for the same target is merged into; another target starts afresh.
 *
 * restorePrevious uses dpkg directly (`dpkg -i` with apt's own dpkg options): local files only, so
 * no network and no repository, and dpkg allows downgrades. It installs only packages not already
 * installed and configured at their kept version, so a second run changes nothing, and a run
 * interrupted inside dpkg (half-configured packages) is finished by the next one.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AptStep } from '../../shared/recipe/types';
import { dpkgOptions, optionValue, queryInstalled, runAptTool } from './apt-io';
import { isConfigured, pinsMissed, type InstalledPackage } from './apt-pin';
import { appVersionOfDeb } from './deb-version';
import { StepFailure, type StepSuccess } from './outcome';
import type { StepContext } from './step';

export interface KeptPackage {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  /** File name inside the step's previous-packages directory. */
  readonly file: string;
  readonly sha256: string;
}

/** Where a downloadOnly step keeps the previous versions. */
export function previousDir(stateDir: string, stepId: string): string {
  return path.join(stateDir, 'previous-packages', stepId);
}

/** Keeps the installed version of each package in `names`; returns the manifest written. */
export async function keepPrevious(
  ctx: StepContext,
  step: AptStep,
  names: readonly string[],
  archives: string,
): Promise<KeptPackage[]> {
  const dir = previousDir(ctx.stateDir, step.id);
  await mkdir(dir, { recursive: true });
  const opts = await dpkgOptions(ctx, step);
  const target = ctx.vars['target'] ?? '';
  const earlier = (await readStagedFor(dir)) === target ? await readManifest(dir).catch(() => []) : [];
  const installed = names.length === 0 ? [] : await queryInstalled(ctx, step, opts, names);
  const kept: KeptPackage[] = [];
  for (const pkg of installed.filter((p) => names.includes(p.name))) {
    const again = earlier.find((e) => e.name === pkg.name && e.version === pkg.version);
    kept.push(again ?? (await keepOne(ctx, step, pkg, dir, archives, opts)));
  }
  // A package this run does not change (the interrupted upgrade got to it) keeps its earlier entry.
  const stillNew =
    earlier.length === 0
      ? []
      : await queryInstalled(
          ctx,
          step,
          opts,
          earlier.map((e) => e.name),
        );
  for (const e of earlier) {
    if (kept.some((k) => k.name === e.name)) continue;
    if (stillNew.some((p) => p.name === e.name && p.version !== e.version)) kept.push(e);
  }
  await writeAtomically(path.join(dir, 'staged-for.json'), JSON.stringify({ target }));
  await writeAtomically(path.join(dir, 'manifest.json'), JSON.stringify(kept, null, 2));
  await removeUnlisted(dir, kept);
  return kept;
}

async function keepOne(
  ctx: StepContext,
  step: AptStep,
  pkg: InstalledPackage,
  dir: string,
  archives: string,
  opts: readonly string[],
): Promise<KeptPackage> {
  const file = `${pkg.name}_${pkg.version.replace(/:/g, '%3a')}_${pkg.arch}.deb`;
  const dest = path.join(dir, file);
  const work = path.join(dir, '.work');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const cached = path.join(archives, file);
    if (await debIs(ctx, step, cached, pkg)) {
      await copyFile(cached, path.join(work, file));
    } else if (!(await tryIn(ctx, step, work, ['apt-get', 'download', `${pkg.name}=${pkg.version}`]))) {
      const root = optionValue(opts, '--root') ?? '/';
      const repacked = await tryIn(ctx, step, work, [
        'dpkg-repack',
        `--root=${root}`,
        '--tag=none',
        pkg.name,
      ]);
      if (!repacked) {
        throw new StepFailure(
          'PREVIOUS_UNAVAILABLE',
          `cannot keep ${pkg.name} ${pkg.version} for the way back: not in the archive cache, ` +
            'not offered by the repository, and dpkg-repack could not rebuild it',
        );
      }
    }
    const got = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (got === undefined || !(await debIs(ctx, step, path.join(work, got), pkg))) {
      throw new StepFailure(
        'PREVIOUS_UNAVAILABLE',
        `the file kept for ${pkg.name} ${pkg.version} is not that package`,
      );
    }
    await rename(path.join(work, got), dest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { name: pkg.name, version: pkg.version, arch: pkg.arch, file, sha256: await sha256Of(dest) };
}

/** True when `file` exists and its control fields name this package and version. */
async function debIs(ctx: StepContext, step: AptStep, file: string, pkg: InstalledPackage): Promise<boolean> {
  const ran = await runAptTool(ctx, step, ['dpkg-deb', '-f', file, 'Package', 'Version'], {
    fullStdoutBytes: 64 * 1024,
  }).catch(() => undefined);
  if (ran === undefined) return false;
  return ran.stdout.includes(`Package: ${pkg.name}\n`) && ran.stdout.includes(`Version: ${pkg.version}\n`);
}

async function tryIn(ctx: StepContext, step: AptStep, cwd: string, argv: string[]): Promise<boolean> {
  try {
    await runAptTool(ctx, step, argv, { cwd });
    return (await readdir(cwd)).some((f) => f.endsWith('.deb'));
  } catch (err) {
    if (err instanceof StepFailure || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      ctx.log.warn('a source of the previous package failed', { step: step.id, argv: argv.join(' ') });
      return false;
    }
    throw err;
  }
}

/** restorePrevious: reinstalls what `fromStep` kept, from local files, and reads the result back. */
export async function restorePrevious(ctx: StepContext, step: AptStep): Promise<StepSuccess> {
  const fromStep = step.fromStep ?? '';
  const dir = previousDir(ctx.stateDir, fromStep);
  const kept = await readManifest(dir).catch((err: unknown) => {
    throw new StepFailure(
      'PREVIOUS_UNAVAILABLE',
      `step ${fromStep} kept no previous packages on this host (${dir}/manifest.json is missing or unreadable)`,
      {},
      { cause: err },
    );
  });
  for (const k of kept) {
    if ((await sha256Of(path.join(dir, k.file)).catch(() => '')) !== k.sha256) {
      throw new StepFailure(
        'PREVIOUS_UNAVAILABLE',
        `the kept file for ${k.name} ${k.version} is missing or corrupt`,
      );
    }
  }
  const opts = await dpkgOptions(ctx, step);
  const names = kept.map((k) => k.name);
  if (kept.length === 0)
    return {
      outputTail: `step ${fromStep} kept nothing: the upgrade changed no package`,
      versions: [],
      data: { installed: [], restored: [] },
    };
  const before = await queryInstalled(ctx, step, opts, names);
  const todo = kept.filter(
    (k) => !before.some((b) => b.name === k.name && b.version === k.version && isConfigured(b)),
  );
  let outputTail = 'every kept package is already installed at its previous version';
  if (todo.length > 0) {
    const files = todo.map((k) => path.join(dir, k.file));
    const ran = await runAptTool(ctx, step, [
      'dpkg',
      ...opts,
      '--force-confdef',
      '--force-confold',
      '-i',
      ...files,
    ]);
    outputTail = ran.outputTail;
  }
  const after = await queryInstalled(ctx, step, opts, names);
  const missed = pinsMissed(
    kept.map((k) => ({ name: k.name, installed: '', version: k.version })),
    after,
  );
  if (missed.length > 0) {
    const list = missed.map((m) => `${m.name} is ${m.found}, kept ${m.wanted}`).join('; ');
    throw new StepFailure('VERSION_MISMATCH', `after restoring the previous packages: ${list}`, {
      outputTail,
    });
  }
  const installed = after
    .filter((a) => names.includes(a.name))
    .map((a) => ({ name: a.name, version: a.version }));
  return {
    outputTail,
    versions: [...new Set(installed.map((i) => appVersionOfDeb(i.version)))],
    data: { installed, restored: todo.map((k) => k.name) },
  };
}

async function readManifest(dir: string): Promise<KeptPackage[]> {
  const parsed: unknown = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
  if (!Array.isArray(parsed)) throw new Error('manifest.json is not a list');
  return parsed as KeptPackage[];
}

async function readStagedFor(dir: string): Promise<string | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path.join(dir, 'staged-for.json'), 'utf8')) as {
      target?: unknown;
    };
    return typeof parsed.target === 'string' ? parsed.target : undefined;
  } catch {
    return undefined;
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

/** Files of an earlier manifest that the new one no longer names. */
async function removeUnlisted(dir: string, kept: readonly KeptPackage[]): Promise<void> {
  for (const f of await readdir(dir)) {
    if (f.endsWith('.deb') && !kept.some((k) => k.file === f)) await rm(path.join(dir, f), { force: true });
  }
}

function sha256Of(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}
