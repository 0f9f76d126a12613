/**
 * The dnf step's pin, as pure decisions: which package version each installed package goes to
 * (the highest release whose VERSION is the pinned application version, on the installed arch),
 * and whether what the rpm database shows afterwards keeps the promise.
 */
import type { PackagePin } from '../../shared/recipe/types';
import type { RpmPackage } from './dnf-query';
import { StepFailure } from './outcome';
import { applicationVersionOf, compareEvr, parseEvr, pinnedEvr, formatEvr } from './rpm-version';

/** One pinned package: installed at `from`, going to `to` (both [E:]V-R). */
export interface PinTarget {
  readonly name: string;
  readonly arch: string;
  readonly from: string;
  readonly to: string;
}

/** The package a target installs, for dnf (`to` as its version). */
export function targetPackage(t: PinTarget): RpmPackage {
  return { name: t.name, arch: t.arch, version: t.to };
}

/**
 * The target of every installed package of the pin; TARGET_NOT_OFFERED names each package whose
 * repository has no package of that version (on its arch, or noarch).
 */
export function resolvePinTargets(
  installed: readonly RpmPackage[],
  offered: readonly RpmPackage[],
  pin: PackagePin,
): PinTarget[] {
  if (installed.length === 0) {
    throw new StepFailure(
      'VERSION_MISMATCH',
      `no installed package matches the pin ${pin.packages.join(' ')}: nothing to put at ${pin.version}`,
    );
  }
  const missing: string[] = [];
  const targets: PinTarget[] = [];
  for (const p of installed) {
    const sameArch = offered.filter(
      (o) => o.name === p.name && (o.arch === p.arch || o.arch === 'noarch' || p.arch === 'noarch'),
    );
    const evr = pinnedEvr(
      sameArch.map((o) => parseEvr(o.version)),
      pin.version,
    );
    if (evr === undefined) {
      const versions = [...new Set(sameArch.map((o) => applicationVersionOf(o.version)))];
      missing.push(`${p.name} ${pin.version} (it offers ${versions.join(', ') || 'nothing'})`);
      continue;
    }
    const to = formatEvr(evr);
    const arch = sameArch.find((o) => o.version === to)?.arch ?? p.arch;
    targets.push({ name: p.name, arch, from: p.version, to });
  }
  if (missing.length > 0) {
    throw new StepFailure(
      'TARGET_NOT_OFFERED',
      `the repository does not offer the pinned version of ${missing.join('; ')}`,
    );
  }
  return targets;
}

/** Targets the transaction changes (a package already at its target is left alone). */
export function changingTargets(targets: readonly PinTarget[]): PinTarget[] {
  return targets.filter((t) => compareEvr(parseEvr(t.from), parseEvr(t.to)) !== 0);
}

/**
 * Why the rpm database does not keep the pin: every installed package of the pin must be at
 * application version `version`, and a package must not be installed twice (an rpm transaction
 * killed half-way leaves both versions). Empty when it holds.
 */
export function pinMismatches(installed: readonly RpmPackage[], version: string): string[] {
  if (installed.length === 0) return [`no installed package matches the pin`];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const p of installed) {
    const key = `${p.name}.${p.arch}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) problems.push(`${key} is installed twice (${earlier} and ${p.version})`);
    seen.set(key, p.version);
    if (applicationVersionOf(p.version) !== version)
      problems.push(`${p.name} is at ${p.version}, not ${version}`);
  }
  return problems;
}

/** The step result's read-back: application versions in `versions`, packages in `data.installed`. */
export function readBack(installed: readonly RpmPackage[]): {
  versions: string[];
  data: { installed: { name: string; version: string }[] };
} {
  return {
    versions: [...new Set(installed.map((p) => applicationVersionOf(p.version)))],
    data: { installed: installed.map((p) => ({ name: p.name, version: p.version })) },
  };
}
