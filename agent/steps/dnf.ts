/**
 * `dnf`: RPM packages through the command the vendor documents, `yum` (dnf accepts the same
 * syntax; Keeper Connection Manager says `yum list updates "kcm-*"` and `yum upgrade "kcm-*"`).
 *
 *   makecache        `yum makecache`: fresh metadata; new versions show only after it (or --refresh)
 *   listUpdates      `yum list updates PKGS`: exit 1 with "No matching Packages" means none, not an error
 *   downloadOnly     `yum --downloadonly upgrade -y PKGS`: RPMs into the cache (needs keepcache); a disk
 *                    that fills during it is DISK_FULL (no preflight: dnf prints the size only as it
 *                    starts). Then the installed versions of what will change are kept (./dnf-previous.ts).
 *   upgrade          `yum -C upgrade -y PKGS`: from the cache only, so the repository may be gone and
 *                    expired metadata is used as is; a missing RPM is STAGED_CACHE_INCOMPLETE
 *   restorePrevious  the RPMs `fromStep` kept, reinstalled from local files (`-C --disablerepo=*`)
 *   verifyPinned     every installed package of the pin is at the pinned version (rpm -qa)
 *
 * With `pin` ({packages, version}), every installed package matching `pin.packages` goes to
 * exactly `name-version-release.arch`, the highest release whose VERSION is `pin.version`
 * (./dnf-pin.ts, ./rpm-version.ts): listUpdates and downloadOnly refuse a version the repository
 * does not offer (TARGET_NOT_OFFERED), downloadOnly stages exactly that (`yum --downloadonly
 * install NEVRA`, nothing newer), upgrade installs it from the cache only (`yum -C install NEVRA`;
 * another version staged is STAGED_VERSION_MISMATCH, refused before rpm runs) and reads the rpm
 * database back (VERSION_MISMATCH). A whole-system step (no `packages`) still upgrades every other
 * package, in a second transaction that excludes the pin's globs.
 *
 * `versions` in a result are always application versions (RPM VERSION fields, never
 * `version-release`, which semver would read as a prerelease); `data.packages` keeps dnf's
 * [epoch:]version-release, and pinned upgrades add `data.installed` read from the rpm database.
 *
 * Interrupted upgrade: running it again upgrades what is left. An rpm transaction killed half-way
 * can also leave both versions of a package in the database, which `dnf upgrade` does not clean
 * (`dnf check --duplicates` shows them); a pinned read-back reports it as VERSION_MISMATCH.
 *
 * Output is parsed, so children run with LC_ALL=C.UTF-8.
 */
import type { ErrorCode } from '../../shared/errors';
import type { DnfStep, PackagePin } from '../../shared/recipe/types';
import {
  changingTargets,
  pinMismatches,
  readBack,
  resolvePinTargets,
  targetPackage,
  type PinTarget,
} from './dnf-pin';
import { keepPrevious, restorePrevious } from './dnf-previous';
import { DNF_ENV, installedPackages, nevraOf, offeredPackages, type RpmPackage } from './dnf-query';
import { parseListUpdates, parseTransaction, parseUpgraded } from './dnf-output';
import { runArgv } from './exec';
import { settleStep, StepFailure, type StepSuccess } from './outcome';
import { applicationVersionOf } from './rpm-version';
import type { StepContext, StepExecutor } from './step';

export type { RpmPackage } from './dnf-query';
export { parseListUpdates, parseTransaction, parseUpgraded } from './dnf-output';

const LIST_STDOUT_BYTES = 8 * 1024 * 1024;

export const dnfExecutor: StepExecutor<DnfStep> = {
  type: 'dnf',
  contract: {
    checks:
      'makecache: metadata downloads; listUpdates: reports the newer versions (none is not an error; a pinned version ' +
      'the repository does not offer: TARGET_NOT_OFFERED); downloadOnly: the RPMs of the upgrade are in the cache ' +
      '(a disk that fills: DISK_FULL) and the installed versions are kept (else PREVIOUS_UNAVAILABLE); upgrade: ' +
      'runs from the cache only (-C), STAGED_CACHE_INCOMPLETE when an RPM or the metadata was not staged, ' +
      'STAGED_VERSION_MISMATCH when the cache lacks a pinned version, VERSION_MISMATCH when rpm -q reads back another; ' +
      'restorePrevious: every kept package is installed again at its kept version (VERSION_MISMATCH otherwise); ' +
      'verifyPinned: every installed package of the pin is at the pinned version',
    changes:
      'makecache: repository metadata; listUpdates, verifyPinned: nothing; downloadOnly: the package cache and ' +
      '<stateDir>/previous-packages/<step id>/; upgrade: the installed packages (one rpm transaction, two for a ' +
      'pinned whole-system upgrade); restorePrevious: the installed packages, back to the kept versions',
    idempotent: true,
    interrupted: 'resume',
    rollback:
      'none of its own: makecache, listUpdates, verifyPinned and downloadOnly change no package; an applied ' +
      'upgrade is undone by a restorePrevious step in the rollback phase (the RPMs its downloadOnly kept, ' +
      'from local disk only, downgrades allowed)',
  },
  run: (step, ctx) =>
    settleStep(ctx, async () => {
      switch (step.action) {
        case 'makecache': {
          const ran = await runArgv(ctx, { argv: dnfArgv(step), env: DNF_ENV, timeoutMs: step.timeoutMs });
          return { outputTail: ran.outputTail, exitCode: ran.exitCode };
        }
        case 'downloadOnly':
          return step.pin === undefined ? downloadOnly(ctx, step) : downloadPinned(ctx, step, step.pin);
        case 'listUpdates':
          return step.pin === undefined
            ? listUpdates(ctx, step, dnfArgv(step))
            : listPinned(ctx, step, step.pin);
        case 'upgrade':
          return step.pin === undefined ? upgrade(ctx, step) : upgradePinned(ctx, step, step.pin);
        case 'restorePrevious':
          if (step.fromStep === undefined)
            throw new Error(`dnf step ${step.id}: restorePrevious without fromStep`);
          return restorePrevious(ctx, step, step.fromStep);
        case 'verifyPinned':
          if (step.pin === undefined) throw new Error(`dnf step ${step.id}: verifyPinned without pin`);
          return verifyPinned(ctx, step.pin);
      }
    }),
};

/** The argv of one unpinned action (exported for tests and `recipe explain`). */
export function dnfArgv(step: DnfStep): string[] {
  const cmd = step.command;
  switch (step.action) {
    case 'makecache':
      return [cmd, 'makecache'];
    case 'listUpdates':
      return [cmd, 'list', 'updates', ...step.packages];
    case 'downloadOnly':
      return [cmd, '--downloadonly', 'upgrade', '-y', ...step.packages];
    case 'upgrade':
      return [cmd, '-C', 'upgrade', '-y', ...step.packages];
    case 'restorePrevious':
      return [cmd, '-C', '--disablerepo=*', 'downgrade', '-y', `<${step.fromStep ?? ''} kept RPMs>`];
    case 'verifyPinned':
      return ['rpm', '-qa', ...(step.pin?.packages ?? [])];
  }
}

/**
 * The other packages of a pinned step: none when every package the step names is pinned (KCM's
 * `kcm-*`), else an upgrade of `packages` (everything when empty) with the pin's globs excluded.
 */
function restArgs(step: DnfStep, pin: PackagePin): string[] | undefined {
  const others = step.packages.filter((p) => !pin.packages.includes(p));
  if (step.packages.length > 0 && others.length === 0) return undefined;
  return [...pin.packages.map((g) => `--exclude=${g}`), ...others];
}

async function listUpdates(ctx: StepContext, step: DnfStep, argv: readonly string[]): Promise<StepSuccess> {
  const ran = await runArgv(ctx, {
    argv,
    env: DNF_ENV,
    timeoutMs: step.timeoutMs,
    acceptExitCodes: [0, 1],
    fullStdoutBytes: LIST_STDOUT_BYTES,
  });
  if (ran.exitCode === 1) {
    // Exit 1 is also how dnf reports a repository it cannot reach: only this message means "none".
    if (!/No matching Packages to list/.test(ran.outputTail)) {
      throw new StepFailure('STEP_FAILED', `${step.command} list updates failed${lastLine(ran.outputTail)}`, {
        outputTail: ran.outputTail,
        exitCode: ran.exitCode,
      });
    }
    return { outputTail: ran.outputTail, exitCode: ran.exitCode, versions: [], data: { packages: [] } };
  }
  return {
    outputTail: ran.outputTail,
    exitCode: ran.exitCode,
    ...packagesResult(parseListUpdates(ran.stdout)),
  };
}

/** The pinned packages' targets (TARGET_NOT_OFFERED when one is missing), from fresh or cached metadata. */
async function pinTargets(
  ctx: StepContext,
  step: DnfStep,
  pin: PackagePin,
  cacheOnly: boolean,
): Promise<PinTarget[]> {
  const installed = await installedPackages(ctx, pin.packages);
  const names = [...new Set(installed.map((p) => p.name))];
  const offered = await offeredPackages(ctx, step, names, cacheOnly);
  return resolvePinTargets(installed, offered, pin);
}

async function listPinned(ctx: StepContext, step: DnfStep, pin: PackagePin): Promise<StepSuccess> {
  const pinned = changingTargets(await pinTargets(ctx, step, pin, false)).map(targetPackage);
  const rest = restArgs(step, pin);
  const others =
    rest === undefined ? undefined : await listUpdates(ctx, step, [step.command, 'list', 'updates', ...rest]);
  const listed = (others?.data?.['packages'] as readonly RpmPackage[] | undefined) ?? [];
  return { outputTail: others?.outputTail ?? '', ...packagesResult([...pinned, ...listed]) };
}

/**
 * A write that failed in the middle of the download: librepo's curl reports error 23 ("Failed
 * writing received data to disk") when the cache's file system is full, and Python code
 * `[Errno 28] No space left on device`. dnf deletes the partial RPM itself (verified on a 64 KiB
 * tmpfs over the repository's packages/ directory).
 */
const DISK_FULL: KnownFailure = {
  output: /Curl error \(23\)|No space left on device/,
  code: 'DISK_FULL',
  explain: (outputTail, step) => {
    const size = /Total download size: ([\d.]+ [kMG]?)/.exec(outputTail)?.[1];
    return (
      `the disk holding ${step.command}'s package cache filled up during the download` +
      `${size === undefined ? '' : ` of ${size.trim()}B`}; ${step.command} removed the partial file and nothing was staged`
    );
  },
};

// "Some packages have invalid cache, but cannot be downloaded due to "--cacheonly" option", and
// "Cache-only enabled but no cache for 'REPO'" when makecache never ran.
const NOT_STAGED_OUTPUT = /cannot be downloaded due to "--cacheonly" option|Cache-only enabled but no cache/;

const NOT_STAGED: KnownFailure = {
  output: NOT_STAGED_OUTPUT,
  code: 'STAGED_CACHE_INCOMPLETE',
  explain: (_tail, step) =>
    `${step.command} upgrade needs packages that are not in the cache; nothing was installed ` +
    '(run the download phase first, or again if the repository changed since)',
};

async function downloadOnly(ctx: StepContext, step: DnfStep): Promise<StepSuccess> {
  const ran = await runTransaction(ctx, step, dnfArgv(step), DISK_FULL);
  const staged = parseTransaction(ran.outputTail);
  const previous = await installedPackages(ctx, [...new Set(staged.map((p) => p.name))]);
  const kept = await keepPrevious(ctx, step, previous);
  return { ...ran, ...packagesResult(staged), data: { packages: staged, previous: kept } };
}

async function upgrade(ctx: StepContext, step: DnfStep): Promise<StepSuccess> {
  const ran = await runTransaction(ctx, step, dnfArgv(step), NOT_STAGED);
  return { ...ran, ...packagesResult(parseUpgraded(ran.outputTail)) };
}

/** Stages exactly the pinned versions (and, for a whole-system step, the other upgrades). */
async function downloadPinned(ctx: StepContext, step: DnfStep, pin: PackagePin): Promise<StepSuccess> {
  const changing = changingTargets(await pinTargets(ctx, step, pin, false));
  let outputTail = '';
  if (changing.length > 0) {
    const argv = [
      step.command,
      '--downloadonly',
      'install',
      '-y',
      ...changing.map((t) => nevraOf(targetPackage(t))),
    ];
    outputTail += (await runTransaction(ctx, step, argv, DISK_FULL)).outputTail;
  }
  const rest = restArgs(step, pin);
  let others: RpmPackage[] = [];
  if (rest !== undefined) {
    const ran = await runTransaction(
      ctx,
      step,
      [step.command, '--downloadonly', 'upgrade', '-y', ...rest],
      DISK_FULL,
    );
    outputTail += ran.outputTail;
    others = parseTransaction(ran.outputTail);
  }
  const previous = [
    ...changing.map((t) => ({ name: t.name, arch: t.arch, version: t.from })),
    ...(await installedPackages(ctx, [...new Set(others.map((p) => p.name))])),
  ];
  const kept = await keepPrevious(ctx, step, previous);
  const staged = [...changing.map(targetPackage), ...others];
  return {
    outputTail,
    ...packagesResult(staged),
    data: { packages: staged, pinned: changing, previous: kept },
  };
}

/** Installs the pinned versions from the cache only, then reads the rpm database back. */
async function upgradePinned(ctx: StepContext, step: DnfStep, pin: PackagePin): Promise<StepSuccess> {
  const changing = changingTargets(await pinTargets(ctx, step, pin, true));
  let outputTail = '';
  if (changing.length > 0) {
    const nevras = changing.map((t) => nevraOf(targetPackage(t)));
    const mismatch: KnownFailure = {
      output: NOT_STAGED_OUTPUT,
      code: 'STAGED_VERSION_MISMATCH',
      explain: () =>
        `the package cache does not hold the pinned ${nevras.join(', ')} (${pin.version}); nothing was installed ` +
        '(run the download phase again for this target)',
    };
    outputTail += (
      await runTransaction(ctx, step, [step.command, '-C', 'install', '-y', ...nevras], mismatch)
    ).outputTail;
  }
  const rest = restArgs(step, pin);
  if (rest !== undefined) {
    outputTail += (
      await runTransaction(ctx, step, [step.command, '-C', 'upgrade', '-y', ...rest], NOT_STAGED)
    ).outputTail;
  }
  return { outputTail, ...(await checkPinned(ctx, pin, outputTail)) };
}

async function verifyPinned(ctx: StepContext, pin: PackagePin): Promise<StepSuccess> {
  return checkPinned(ctx, pin, '');
}

/** Reads the pin's packages from the rpm database: all at the pinned version, or VERSION_MISMATCH. */
async function checkPinned(ctx: StepContext, pin: PackagePin, outputTail: string): Promise<StepSuccess> {
  const installed = await installedPackages(ctx, pin.packages);
  const problems = pinMismatches(installed, pin.version);
  if (problems.length > 0) {
    throw new StepFailure('VERSION_MISMATCH', `pinned to ${pin.version}: ${problems.join('; ')}`, {
      outputTail,
    });
  }
  return readBack(installed);
}

/** A failure dnf reports in its output, and what the operator is told instead of "exited 1". */
interface KnownFailure {
  readonly output: RegExp;
  readonly code: ErrorCode;
  readonly explain: (outputTail: string, step: DnfStep) => string;
}

/** Runs one transaction; a known failure gets its own code. */
async function runTransaction(
  ctx: StepContext,
  step: DnfStep,
  argv: readonly string[],
  known: KnownFailure,
): Promise<{ outputTail: string; exitCode: number }> {
  try {
    const ran = await runArgv(ctx, { argv, env: DNF_ENV, timeoutMs: step.timeoutMs });
    return { outputTail: ran.outputTail, exitCode: ran.exitCode };
  } catch (err) {
    const outputTail = err instanceof StepFailure ? (err.detail.outputTail ?? '') : '';
    if (!(err instanceof StepFailure) || !known.output.test(outputTail)) throw err;
    throw new StepFailure(known.code, known.explain(outputTail, step), err.detail, { cause: err });
  }
}

/** `versions` are application versions (RPM VERSION fields); `data.packages` keeps dnf's versions. */
function packagesResult(packages: readonly RpmPackage[]): Pick<StepSuccess, 'versions' | 'data'> {
  return { versions: [...new Set(packages.map((p) => applicationVersionOf(p.version)))], data: { packages } };
}

function lastLine(output: string): string {
  const line = output.trimEnd().split('\n').pop()?.trim() ?? '';
  return line === '' ? '' : `: ${line.slice(0, 200)}`;
}
