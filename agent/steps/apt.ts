/**
 * `apt`: Debian packages through the vendor's own front end, `apt-get` or `aptitude` (BlueMind
 * documents `aptitude update`, `aptitude --download-only upgrade`, later `aptitude upgrade`).
 *
 *   update          `FE update`
 *   listUpgradable  `FE --simulate upgrade`, read-only: the versions the upgrade would install
 *   downloadOnly    `FE --download-only upgrade`: .debs into the archive cache, nothing installed;
 *                   DISK_FULL before fetching when they do not fit, or if the disk fills (apt-space.ts)
 *   upgrade         installs only what downloadOnly staged, never downloading
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
import { archiveCacheDir, DISK_FULL_OUTPUT, diskFullAfterDownload, parseNeedToGet } from './apt-space';
import { runArgv, type RunArgvResult } from './exec';
import { preflightFreeSpace } from './free-space';
import { settleStep, StepFailure, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

/** One package the plan (or dpkg) moves from `from` to `to`. */
export interface PackageChange {
  readonly name: string;
  readonly from: string;
  readonly to: string;
}

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' };
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
      'downloadOnly: the upgrade’s .debs fit in the archive cache’s free space (else DISK_FULL before fetching) ' +
      'and are in the cache afterwards (a download that fills the disk: DISK_FULL, partial files removed); upgrade: every .deb it needs is already ' +
      'cached (apt-get --no-download; aptitude with no download method), else STAGED_CACHE_INCOMPLETE before dpkg runs',
    changes:
      'update: package lists; listUpgradable: nothing; downloadOnly: the archive cache only; ' +
      'upgrade: the installed packages',
    idempotent: true,
    interrupted: 'resume',
    rollback:
      'none of its own: update and downloadOnly need none; an applied upgrade is undone by the ' +
      'rollback phase (restore a backup, install the previous versions)',
  },
  run: (step, ctx) =>
    settleStep(ctx, async () => {
      switch (step.action) {
        case 'update': {
          const ran = await runApt(ctx, step, aptArgv(step));
          return { outputTail: ran.outputTail, exitCode: ran.exitCode };
        }
        case 'listUpgradable':
          return readPlan(ctx, step);
        case 'downloadOnly': {
          const ran = await downloadOnly(ctx, step);
          // What is now staged is what the upgrade will apply: report it from the same plan.
          const plan = await readPlan(ctx, step);
          return { ...plan, outputTail: ran.outputTail, exitCode: ran.exitCode };
        }
        case 'upgrade':
          return upgrade(ctx, step);
      }
    }),
};

/** The argv of one action, as the front end is asked (exported for tests and `recipe explain`). */
export function aptArgv(step: AptStep): string[] {
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
      return [fe, '--simulate', '-y', ...(aptitude ? ['-V'] : []), ...selection];
    case 'downloadOnly':
      return [fe, '-y', '--download-only', ...selection];
    case 'upgrade':
      return [
        fe,
        '-y',
        ...(aptitude ? APTITUDE_NO_DOWNLOAD : ['--no-download']),
        ...CONFFILE_OPTIONS,
        ...selection,
      ];
  }
}

async function readPlan(ctx: StepContext, step: AptStep): Promise<StepSuccess> {
  const argv = aptArgv({ ...step, action: 'listUpgradable' });
  const ran = await runApt(ctx, step, argv, PLAN_STDOUT_BYTES);
  const plan = step.frontend === 'aptitude' ? parseAptitudePlan(ran.stdout) : parseAptGetPlan(ran.stdout);
  return { outputTail: ran.outputTail, exitCode: ran.exitCode, ...changesResult(plan) };
}

/** The download, with a free-space preflight first and DISK_FULL (partial files removed) if it fills the disk. */
async function downloadOnly(ctx: StepContext, step: AptStep): Promise<RunArgvResult> {
  const cache = await archiveCacheDir(ctx, step);
  const simulated = await runApt(
    ctx,
    step,
    aptArgv({ ...step, action: 'listUpgradable' }),
    PLAN_STDOUT_BYTES,
  );
  const need = parseNeedToGet(simulated.stdout);
  if (need !== undefined) await preflightFreeSpace(cache, need, 'the packages');
  try {
    return await runApt(ctx, step, aptArgv(step));
  } catch (err) {
    if (err instanceof StepFailure && DISK_FULL_OUTPUT.test(err.detail.outputTail ?? ''))
      throw await diskFullAfterDownload(cache, err);
    throw err;
  }
}

async function upgrade(ctx: StepContext, step: AptStep): Promise<StepSuccess> {
  const deadline = ctx.now() + step.timeoutMs;
  let ran: RunArgvResult;
  try {
    ran = await runApt(ctx, step, aptArgv(step), undefined, deadline);
  } catch (err) {
    if (!(err instanceof StepFailure) || err.code !== 'STEP_FAILED') throw err;
    const output = err.detail.outputTail ?? '';
    if (!DPKG_INTERRUPTED.test(output)) throw explainFailure(step, err, output);
    // The agent (or someone) was killed inside dpkg: finish that run as apt says, then go on.
    await configurePending(ctx, step, deadline);
    ran = await runApt(ctx, step, aptArgv(step), undefined, deadline).catch((again: unknown) => {
      throw again instanceof StepFailure ? explainFailure(step, again, again.detail.outputTail ?? '') : again;
    });
  }
  return {
    outputTail: ran.outputTail,
    exitCode: ran.exitCode,
    ...changesResult(parseUnpacked(ran.outputTail)),
  };
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
  const dump = await runApt(
    ctx,
    step,
    ['apt-config', 'dump', '--format', '%v%n', 'DPkg::Options'],
    1024 * 1024,
  );
  const options = dump.stdout.split('\n').filter((line) => line.trim() !== '');
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
  const timeoutMs = deadline === undefined ? step.timeoutMs : Math.max(1000, deadline - ctx.now());
  return runArgv(ctx, { argv, env: APT_ENV, timeoutMs, ...(fullStdoutBytes ? { fullStdoutBytes } : {}) });
}

function changesResult(changes: readonly PackageChange[]): Pick<StepSuccess, 'versions' | 'data'> {
  return { versions: [...new Set(changes.map((c) => c.to))], data: { packages: changes } };
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
