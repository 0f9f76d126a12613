/**
 * `apt`: Debian packages through the vendor's own front end, `apt-get` or `aptitude` (BlueMind
 * documents `aptitude update`, `aptitude --download-only upgrade`, later `aptitude upgrade`).
 *
 *   update          `FE update`
 *   listUpgradable  `FE --simulate upgrade`, read-only: the versions the upgrade would install
 *   downloadOnly    `FE --download-only upgrade`: .debs into the archive cache, nothing installed;
 *                   DISK_FULL before fetching when they do not fit, or if the disk fills (apt-space.ts)
 *   upgrade         installs only what downloadOnly staged, never downloading, and reads dpkg's
 *                   database back: `versions` and `data.installed` come from dpkg-query
 *   restorePrevious reinstalls, from local files only, the versions `fromStep` kept (apt-previous.ts)
 *
 * `pin` (apt-pin.ts): every installed package matching `pin.packages` goes to exactly the Debian
 * version of application version `pin.version`, through an apt preferences file passed per
 * command; both front ends honour it. A version the lists do not offer is TARGET_NOT_OFFERED
 * (listUpgradable, downloadOnly, upgrade); upgrade refuses with STAGED_VERSION_MISMATCH before dpkg
 * runs when the archive cache lacks a pinned version, and fails VERSION_MISMATCH when a pinned
 * package is elsewhere afterwards. downloadOnly also keeps the installed version of every package
 * the upgrade will change, the way back restorePrevious uses.
 *
 * With packages, apt-get upgrades just those (`install --only-upgrade PKGS`, so a name never pulls
 * in a package that was not installed) and aptitude takes them after `upgrade` (names or
 * ?patterns): downloadOnly and upgrade always cover the same set.
 *
 * Staged-only upgrade: apt-get has `--no-download`. aptitude has no such option and ignores
 * `APT::Get::Download=false` (it fetched from a running repository in our test), so it runs with an
 * acquire-methods directory that cannot exist (`Dir::Bin::Methods=/dev/null/`): a .deb already in the
 * cache needs no method, any other fails while aptitude prepares its downloads, before dpkg starts.
 * Verified with the repository up and with it stopped: nothing requested, nothing installed,
 * STAGED_CACHE_INCOMPLETE. A consequence: `file:` sources (used in place, never staged) cannot be
 * upgraded with aptitude here.
 *
 * Output is parsed, so children run with LC_ALL=C.UTF-8.
 */
import type { AptStep } from '../../shared/recipe/types';
import {
  cachedDebFiles,
  dpkgOptions,
  offeredVersions,
  queryInstalled,
  runAptTool,
  writePinFile,
} from './apt-io';
import { pinPreferences, pinsMissed, resolvePins, unstagedPins, type PinnedPackage } from './apt-pin';
import { keepPrevious, restorePrevious } from './apt-previous';
import { archiveCacheDir, DISK_FULL_OUTPUT, diskFullAfterDownload, parseNeedToGet } from './apt-space';
import { appVersionOfDeb } from './deb-version';
import type { RunArgvResult } from './exec';
import { preflightFreeSpace } from './free-space';
import { settleStep, StepFailure, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

/** One package the plan (or dpkg) moves from `from` to `to`. */
export interface PackageChange {
  readonly name: string;
  readonly from: string;
  readonly to: string;
}

/** A step's pins, resolved on this host, and the apt options that apply them (none without a pin). */
interface ActivePin {
  readonly pinned: readonly PinnedPackage[];
  readonly options: readonly string[];
}

/** No terminal to ask on: keep locally changed config files, take new defaults for untouched ones. */
const CONFFILE_OPTIONS = ['-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];
/** aptitude: no usable download method, and never continue with missing packages. */
const APTITUDE_NO_DOWNLOAD = ['-o', 'Dir::Bin::Methods=/dev/null/', '-o', 'APT::Get::Fix-Missing=false'];
/** Simulation output for a whole-system plan can be long; it must be read whole to be parsed. */
const PLAN_STDOUT_BYTES = 8 * 1024 * 1024;

export const aptExecutor: StepExecutor<AptStep> = {
  type: 'apt',
  contract: {
    checks:
      'update: the indexes download; listUpgradable: simulates the upgrade and reports its versions; ' +
      'with a pin, every installed package it matches must be offered at the pinned application version ' +
      '(else TARGET_NOT_OFFERED, from listUpgradable, downloadOnly and upgrade alike); ' +
      'downloadOnly: the upgrade’s .debs fit in the archive cache’s free space (else DISK_FULL before fetching) ' +
      'and are in the cache afterwards (a download that fills the disk: DISK_FULL, partial files removed), ' +
      'a pinned version missing from the cache afterwards is STAGED_VERSION_MISMATCH, and the installed version of every ' +
      'package the upgrade will change is kept (cache, repository, dpkg-repack; else PREVIOUS_UNAVAILABLE); upgrade: every .deb it needs is already ' +
      'cached (apt-get --no-download; aptitude with no download method), else STAGED_CACHE_INCOMPLETE before dpkg runs; ' +
      'with a pin, the cache holds each pinned version (else STAGED_VERSION_MISMATCH before dpkg runs) and dpkg-query ' +
      'shows each pinned package at it afterwards (else VERSION_MISMATCH); restorePrevious: the kept files match ' +
      'their checksums (else PREVIOUS_UNAVAILABLE) and dpkg-query shows every kept version afterwards (else VERSION_MISMATCH)',
    changes:
      'update: package lists; listUpgradable: nothing; downloadOnly: the archive cache, and ' +
      '<stateDir>/previous-packages/<step id>/; upgrade: the installed packages; restorePrevious: the ' +
      'installed packages, back to the kept versions (downgrades), from local files only',
    idempotent: true,
    interrupted: 'resume',
    rollback:
      'update and downloadOnly need none; an applied upgrade is undone by a rollback-phase step ' +
      'restorePrevious with fromStep naming the downloadOnly step, which reinstalls the kept versions',
  },
  run: (step, ctx) =>
    settleStep(ctx, async (): Promise<StepSuccess> => {
      switch (step.action) {
        case 'update': {
          const ran = await runApt(ctx, step, aptArgv(step));
          return { outputTail: ran.outputTail, exitCode: ran.exitCode };
        }
        case 'listUpgradable':
          return readPlan(ctx, step, await activatePin(ctx, step));
        case 'downloadOnly':
          return downloadOnly(ctx, step);
        case 'upgrade':
          return upgrade(ctx, step);
        case 'restorePrevious':
          return restorePrevious(ctx, step);
      }
    }),
};

/**
 * The argv of one action, as the front end is asked (exported for tests and `recipe explain`);
 * `pinOptions` are the `-o` options of an active pin (activatePin), placed before the command.
 */
export function aptArgv(step: AptStep, pinOptions: readonly string[] = []): string[] {
  const fe = step.frontend;
  const aptitude = fe === 'aptitude';
  const selection = aptitude
    ? ['upgrade', ...step.packages]
    : step.packages.length === 0
      ? ['upgrade']
      : ['install', '--only-upgrade', ...step.packages];
  switch (step.action) {
    case 'update':
      return [fe, 'update'];
    case 'listUpgradable':
      // aptitude names versions only with -V (`name [old -> new]`); apt-get prints `Inst` lines.
      return [fe, ...pinOptions, '--simulate', '-y', ...(aptitude ? ['-V'] : []), ...selection];
    case 'downloadOnly':
      return [fe, ...pinOptions, '-y', '--download-only', ...selection];
    case 'upgrade':
      return [
        fe,
        ...pinOptions,
        '-y',
        ...(aptitude ? APTITUDE_NO_DOWNLOAD : ['--no-download']),
        ...CONFFILE_OPTIONS,
        ...selection,
      ];
    case 'restorePrevious':
      // Not a front-end command: dpkg -i of the kept files (apt-previous.ts).
      return ['dpkg', '-i'];
  }
}

/**
 * Resolves the step's pin on this host (installed packages it matches, the version each must
 * reach) and writes the preferences that apply it; a step without a pin gets no options.
 */
async function activatePin(ctx: StepContext, step: AptStep): Promise<ActivePin> {
  if (step.pin === undefined) return { pinned: [], options: [] };
  const pin = step.pin;
  const installed = await queryInstalled(ctx, step, await dpkgOptions(ctx, step), pin.packages);
  const offered = await offeredVersions(ctx, step, [...new Set(installed.map((p) => p.name))]);
  const resolved = resolvePins(installed, offered, pin);
  if (resolved.notOffered.length > 0) {
    throw new StepFailure(
      'TARGET_NOT_OFFERED',
      `the package lists offer no version ${pin.version} of ${resolved.notOffered.join(', ')} ` +
        '(is the repository for that version configured, and was it updated?)',
    );
  }
  if (resolved.downgrades.length > 0) {
    const list = resolved.downgrades.map((d) => `${d.name} ${d.installed} -> ${d.version}`).join(', ');
    throw new StepFailure('DOWNGRADE_REFUSED', `a pin to ${pin.version} would downgrade ${list}`);
  }
  const options = await writePinFile(ctx, step, (host) => pinPreferences(resolved.pinned, host));
  return { pinned: resolved.pinned, options };
}

async function readPlan(ctx: StepContext, step: AptStep, pin: ActivePin): Promise<StepSuccess> {
  const argv = aptArgv({ ...step, action: 'listUpgradable' }, pin.options);
  const ran = await runApt(ctx, step, argv, PLAN_STDOUT_BYTES);
  const plan = step.frontend === 'aptitude' ? parseAptitudePlan(ran.stdout) : parseAptGetPlan(ran.stdout);
  return {
    outputTail: ran.outputTail,
    exitCode: ran.exitCode,
    ...changesResult(plan, step.pin !== undefined, pin.pinned),
  };
}

/**
 * The download, with a free-space preflight first and DISK_FULL (partial files removed) if it
 * fills the disk; then the pinned versions checked in the cache, and the previous versions kept.
 */
async function downloadOnly(ctx: StepContext, step: AptStep): Promise<StepSuccess> {
  const pin = await activatePin(ctx, step);
  const cache = await archiveCacheDir(ctx, step);
  const simulated = await runApt(
    ctx,
    step,
    aptArgv({ ...step, action: 'listUpgradable' }, pin.options),
    PLAN_STDOUT_BYTES,
  );
  const need = parseNeedToGet(simulated.stdout);
  if (need !== undefined) await preflightFreeSpace(cache, need, 'the packages');
  let ran: RunArgvResult;
  try {
    ran = await runApt(ctx, step, aptArgv(step, pin.options));
  } catch (err) {
    if (err instanceof StepFailure && DISK_FULL_OUTPUT.test(err.detail.outputTail ?? ''))
      throw await diskFullAfterDownload(cache, err);
    throw err;
  }
  await refuseUnstaged(step, pin, cache, 'the download did not stage');
  // What is now staged is what the upgrade will apply: report it, and keep what it replaces.
  const plan = await readPlan(ctx, step, pin);
  const changes = (plan.data?.['packages'] ?? []) as readonly PackageChange[];
  const kept = await keepPrevious(
    ctx,
    step,
    changes.map((c) => c.name),
    cache,
  );
  return {
    ...plan,
    outputTail: ran.outputTail,
    exitCode: ran.exitCode,
    data: { ...plan.data, previous: kept.map((k) => ({ name: k.name, version: k.version })) },
  };
}

/** STAGED_VERSION_MISMATCH when the archive cache lacks a pinned version that must be installed. */
async function refuseUnstaged(step: AptStep, pin: ActivePin, cache: string, what: string): Promise<void> {
  const missing = unstagedPins(pin.pinned, await cachedDebFiles(cache));
  if (missing.length === 0) return;
  const list = missing
    .map((m) => `${m.name} ${m.version} (cached: ${m.cached.length === 0 ? 'none' : m.cached.join(', ')})`)
    .join('; ');
  throw new StepFailure(
    'STAGED_VERSION_MISMATCH',
    `${what} the pinned version ${step.pin?.version ?? ''} of: ${list}; nothing was installed`,
  );
}

async function upgrade(ctx: StepContext, step: AptStep): Promise<StepSuccess> {
  const deadline = ctx.now() + step.timeoutMs;
  const pin = await activatePin(ctx, step);
  await refuseUnstaged(step, pin, await archiveCacheDir(ctx, step), 'the archive cache does not hold');
  const argv = aptArgv(step, pin.options);
  let ran: RunArgvResult;
  try {
    ran = await runApt(ctx, step, argv, undefined, deadline);
  } catch (err) {
    if (!(err instanceof StepFailure) || err.code !== 'STEP_FAILED') throw err;
    const output = err.detail.outputTail ?? '';
    if (!DPKG_INTERRUPTED.test(output)) throw explainFailure(step, err, output);
    // The agent (or someone) was killed inside dpkg: finish that run as apt says, then go on.
    await configurePending(ctx, step, deadline);
    ran = await runApt(ctx, step, argv, undefined, deadline).catch((again: unknown) => {
      throw again instanceof StepFailure ? explainFailure(step, again, again.detail.outputTail ?? '') : again;
    });
  }
  return { outputTail: ran.outputTail, exitCode: ran.exitCode, ...(await readBack(ctx, step, pin, ran)) };
}

/**
 * What dpkg's database says after the upgrade: the pinned packages (VERSION_MISMATCH when one is
 * elsewhere), or without a pin the packages dpkg unpacked. Never the plan's versions.
 */
async function readBack(
  ctx: StepContext,
  step: AptStep,
  pin: ActivePin,
  ran: RunArgvResult,
): Promise<Pick<StepSuccess, 'versions' | 'data'>> {
  const unpacked = parseUnpacked(ran.outputTail);
  const names = [...new Set([...pin.pinned.map((p) => p.name), ...unpacked.map((u) => u.name)])];
  const after =
    names.length === 0 ? [] : await queryInstalled(ctx, step, await dpkgOptions(ctx, step), names);
  const missed = pinsMissed(pin.pinned, after);
  if (missed.length > 0) {
    const list = missed.map((m) => `${m.name} is ${m.found}, pinned ${m.wanted}`).join('; ');
    throw new StepFailure('VERSION_MISMATCH', `after the upgrade: ${list}`, { outputTail: ran.outputTail });
  }
  const installed = after.map((a) => ({ name: a.name, version: a.version }));
  const versions =
    step.pin === undefined
      ? installed.map((i) => i.version)
      : installed
          .filter((i) => pin.pinned.some((p) => p.name === i.name))
          .map((i) => appVersionOfDeb(i.version));
  return { versions: [...new Set(versions)], data: { packages: unpacked, installed } };
}

const DPKG_INTERRUPTED = /dpkg was interrupted, you must manually run 'dpkg --configure -a'/;
// apt-get --no-download; aptitude without download methods (apt folds any dir under /dev/null to
// /dev/null, so the driver it looks for is `/dev/nullhttp`: never a file).
const NOT_STAGED = /Unable to fetch some archives|The method driver \/dev\/null\S* could not be found/;

function explainFailure(step: AptStep, err: StepFailure, output: string): StepFailure {
  if (!NOT_STAGED.test(output)) return err;
  const message =
    `${step.frontend} upgrade needs packages that are not in the archive cache; nothing was installed ` +
    '(run the download phase first, or again if the repository changed since)';
  return new StepFailure('STAGED_CACHE_INCOMPLETE', message, err.detail, { cause: err });
}

/** `dpkg --configure -a` with the options apt itself passes dpkg (an isolated root's among them). */
async function configurePending(ctx: StepContext, step: AptStep, deadline: number): Promise<void> {
  const options = await dpkgOptions(ctx, step);
  ctx.log.warn('dpkg was interrupted; finishing its pending work before the upgrade', { step: step.id });
  await runApt(
    ctx,
    step,
    ['dpkg', ...options, '--force-confdef', '--force-confold', '--configure', '-a'],
    undefined,
    deadline,
  );
}

function runApt(
  ctx: StepContext,
  step: AptStep,
  argv: readonly string[],
  fullStdoutBytes?: number,
  deadline?: number,
): Promise<RunArgvResult> {
  return runAptTool(ctx, step, argv, {
    ...(fullStdoutBytes === undefined ? {} : { fullStdoutBytes }),
    ...(deadline === undefined ? {} : { deadline }),
  });
}

/** A plan's versions: every new version, or with a pin the application versions the pins reach. */
function changesResult(
  changes: readonly PackageChange[],
  pinned: boolean,
  pins: readonly PinnedPackage[] = [],
): Pick<StepSuccess, 'versions' | 'data'> {
  const versions = pinned
    ? changes.filter((c) => pins.some((p) => p.name === c.name)).map((c) => appVersionOfDeb(c.to))
    : changes.map((c) => c.to);
  return { versions: [...new Set(versions)], data: { packages: changes } };
}

/** `Inst NAME [OLD] (NEW ...)`: upgrades only; a line without `[OLD]` installs a new package. */
export function parseAptGetPlan(stdout: string): PackageChange[] {
  return [...stdout.matchAll(/^Inst (\S+) \[([^\]\s]+)\] \((\S+)/gm)].map((m) => ({
    name: m[1] ?? '',
    from: m[2] ?? '',
    to: m[3] ?? '',
  }));
}

/** The indented lines under "The following packages will be upgraded:", entries `NAME [OLD -> NEW]`. */
export function parseAptitudePlan(stdout: string): PackageChange[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('The following packages will be upgraded:'));
  if (start < 0) return [];
  const changes: PackageChange[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!/^\s/.test(line)) break;
    for (const m of line.matchAll(/(\S+) \[(\S+) -> (\S+)\]/g)) {
      changes.push({ name: m[1] ?? '', from: m[2] ?? '', to: m[3] ?? '' });
    }
  }
  return changes;
}

/** dpkg's `Unpacking NAME (NEW) over (OLD) ...`, the same under either front end. */
export function parseUnpacked(output: string): PackageChange[] {
  return [...output.matchAll(/^Unpacking (\S+) \((\S+)\) over \((\S+)\)/gm)].map((m) => ({
    name: m[1] ?? '',
    from: m[3] ?? '',
    to: m[2] ?? '',
  }));
}
