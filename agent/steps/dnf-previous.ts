/**
 * The way back for RPM packages. At download time the installed version of every package the
 * upgrade will change is kept under `<stateDir>/previous-packages/<step id>/`: copied from dnf's
 * package cache when it is there (keepcache kept it from its own install), else downloaded from
 * the repository (`yum --downloadonly --downloaddir=DIR reinstall NEVRA`: dnf itself, no
 * dnf-plugins-core needed). rpm has no repack tool (Debian's dpkg-repack has no RPM twin), so a version that is
 * in neither cannot be kept: the download fails PREVIOUS_UNAVAILABLE, since there would be no way
 * back. `manifest.json` ([{name, version, arch, file, sha256}]) is written last, atomically.
 *
 * `restorePrevious` reinstalls those files from local disk only (`yum -C --disablerepo=*
 * downgrade FILES`: no repository, no network), only for the packages whose installed version
 * differs from the manifest, and reads the rpm database back.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DnfStep } from '../../shared/recipe/types';
import { DNF_ENV, installedPackages, nevraOf, type RpmPackage } from './dnf-query';
import { readBack } from './dnf-pin';
import { runArgv } from './exec';
import { sha256File, writeFileAtomic } from './files';
import { StepFailure, type StepSuccess } from './outcome';
import { compareEvr, parseEvr } from './rpm-version';
import type { StepContext } from './step';

/** One kept package: `version` is [E:]V-R, `file` a name inside the step's directory. */
export interface KeptPackage {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly file: string;
  readonly sha256: string;
}

const MANIFEST = 'manifest.json';

export function previousDir(stateDir: string, stepId: string): string {
  return path.join(stateDir, 'previous-packages', stepId);
}

/** `name-version-release.arch.rpm`, the file name rpmbuild and `yum download` give (no epoch). */
function rpmFileOf(p: RpmPackage): string {
  const version = p.version.replace(/^\d+:/, '');
  return `${p.name}-${version}.${p.arch}.rpm`;
}

/** Keeps the RPM of every package in `installed` (the versions the upgrade replaces). */
export async function keepPrevious(
  ctx: StepContext,
  step: DnfStep,
  installed: readonly RpmPackage[],
): Promise<KeptPackage[]> {
  const dir = previousDir(ctx.stateDir, step.id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const wanted = new Set(installed.map(rpmFileOf));
  const fromCache = installed.length === 0 ? [] : await copyFromCache(ctx, step, installed, dir);
  const missing = installed.filter((p) => !fromCache.includes(p));
  if (missing.length > 0) await downloadFromRepository(ctx, step, missing, dir);
  const kept: KeptPackage[] = [];
  for (const p of installed) {
    const file = rpmFileOf(p);
    const digest = await sha256File(path.join(dir, file)).catch(() => undefined);
    if (digest === undefined) {
      throw new StepFailure(
        'PREVIOUS_UNAVAILABLE',
        `the installed ${nevraOf(p)} could not be kept: it is in neither ${step.command}'s package cache nor ` +
          'the repository, and rpm cannot rebuild a package from its installed files; without it there is no way back',
      );
    }
    kept.push({ name: p.name, version: p.version, arch: p.arch, file, sha256: digest.sha256 });
  }
  await writeFileAtomic(path.join(dir, MANIFEST), `${JSON.stringify(kept, null, 2)}\n`);
  // RPMs an earlier run kept for versions no longer installed would only take space.
  for (const f of await readdir(dir)) {
    if (f.endsWith('.rpm') && !wanted.has(f)) await rm(path.join(dir, f), { force: true });
  }
  return kept;
}

/**
 * Copies the packages dnf still has in its cache (keepcache kept them from their own install);
 * returns those it found. dnf says where its cache is only in its verbose header.
 */
async function copyFromCache(
  ctx: StepContext,
  step: DnfStep,
  installed: readonly RpmPackage[],
  dir: string,
): Promise<RpmPackage[]> {
  const ran = await runArgv(ctx, {
    argv: [step.command, '-v', '--disablerepo=*', 'repolist'],
    env: DNF_ENV,
    timeoutMs: step.timeoutMs,
  });
  const cachedir = /^cachedir: (.+)$/m.exec(ran.outputTail)?.[1]?.trim();
  if (cachedir === undefined) return [];
  const repos = await readdir(cachedir, { withFileTypes: true }).catch(() => []);
  const found: RpmPackage[] = [];
  for (const p of installed) {
    for (const repo of repos.filter((r) => r.isDirectory())) {
      const cached = path.join(cachedir, repo.name, 'packages', rpmFileOf(p));
      if (!existsSync(cached)) continue;
      await copyFile(cached, path.join(dir, rpmFileOf(p)));
      found.push(p);
      break;
    }
  }
  return found;
}

/**
 * The rest from the repository: a download-only reinstall of the installed NEVRAs into `dir`. A
 * version the repository no longer offers is skipped by dnf ("not available"), and found missing
 * by the caller.
 */
async function downloadFromRepository(
  ctx: StepContext,
  step: DnfStep,
  missing: readonly RpmPackage[],
  dir: string,
): Promise<void> {
  try {
    await runArgv(ctx, {
      argv: [
        step.command,
        '--downloadonly',
        `--downloaddir=${dir}`,
        'reinstall',
        '-y',
        ...missing.map(nevraOf),
      ],
      env: DNF_ENV,
      timeoutMs: step.timeoutMs,
    });
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    throw new StepFailure(
      'PREVIOUS_UNAVAILABLE',
      `the installed ${missing.map(nevraOf).join(', ')} could not be downloaded again: ${err.message}; ` +
        'without them there is no way back',
      err.detail,
      { cause: err },
    );
  }
}

async function readManifest(dir: string, fromStep: string): Promise<KeptPackage[]> {
  try {
    return JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as KeptPackage[];
  } catch (err) {
    throw new StepFailure(
      'PREVIOUS_UNAVAILABLE',
      `step ${fromStep} kept no previous packages on this host (${path.join(dir, MANIFEST)} is missing or unreadable)`,
      {},
      { cause: err },
    );
  }
}

/** Reinstalls the kept versions that are not installed, from local files only; reads them back. */
export async function restorePrevious(
  ctx: StepContext,
  step: DnfStep,
  fromStep: string,
): Promise<StepSuccess> {
  const dir = previousDir(ctx.stateDir, fromStep);
  const kept = await readManifest(dir, fromStep);
  const names = kept.map((k) => k.name);
  const before = await installedPackages(ctx, names);
  const differing = kept.filter(
    (k) => !before.some((p) => p.name === k.name && p.arch === k.arch && p.version === k.version),
  );
  for (const k of differing) {
    const got = await sha256File(path.join(dir, k.file)).catch(() => undefined);
    if (got?.sha256 !== k.sha256)
      throw new StepFailure(
        'PREVIOUS_UNAVAILABLE',
        `the kept ${k.file} is missing or does not match its sha256`,
      );
  }
  // Installed newer than kept: a downgrade; missing or older: an install. Both from the files alone.
  const newer = (k: KeptPackage): boolean =>
    before.some((p) => p.name === k.name && compareEvr(parseEvr(p.version), parseEvr(k.version)) > 0);
  let outputTail = '';
  for (const [verb, group] of [
    ['downgrade', differing.filter(newer)],
    ['install', differing.filter((k) => !newer(k))],
  ] as const) {
    if (group.length === 0) continue;
    const ran = await runArgv(ctx, {
      argv: [step.command, '-C', '--disablerepo=*', verb, '-y', ...group.map((k) => path.join(dir, k.file))],
      env: DNF_ENV,
      timeoutMs: step.timeoutMs,
    });
    outputTail += ran.outputTail;
  }
  const after = await installedPackages(ctx, names);
  const wrong = kept.filter(
    (k) =>
      !after.some((p) => p.name === k.name && p.arch === k.arch && p.version === k.version) ||
      after.filter((p) => p.name === k.name).length > 1,
  );
  if (wrong.length > 0) {
    const shown = wrong.map((k) => {
      const now = after.filter((p) => p.name === k.name).map((p) => p.version);
      return `${k.name} is at ${now.join(' and ') || 'nothing'}, not ${k.version}`;
    });
    throw new StepFailure('VERSION_MISMATCH', `after the restore ${shown.join('; ')}`, { outputTail });
  }
  return { outputTail, ...readBack(after.filter((p) => names.includes(p.name))) };
}
