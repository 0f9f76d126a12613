/**
 * `dnf`: RPM packages through the command the vendor documents, `yum` (dnf accepts the same
 * syntax; Keeper Connection Manager says `yum list updates "kcm-*"` and `yum upgrade "kcm-*"`).
 *
 *   makecache     `yum makecache`: fresh metadata; new versions show only after it (or --refresh)
 *   listUpdates   `yum list updates PKGS`: exit 1 with "No matching Packages" means none, not an error
 *   downloadOnly  `yum --downloadonly upgrade -y PKGS`: RPMs into the cache (needs keepcache); a disk
 *                 that fills during it is DISK_FULL (no preflight: dnf prints the size only as it starts)
 *   upgrade       `yum -C upgrade -y PKGS`: from the cache only, so the repository may be gone and
 *                 expired metadata is used as is; a missing RPM is STAGED_CACHE_INCOMPLETE
 *
 * Interrupted upgrade: running it again upgrades what is left. An rpm transaction killed half-way
 * can also leave both versions of a package in the database, which `dnf upgrade` does not clean
 * (`dnf check --duplicates` shows them); that is not detected here yet.
 *
 * Output is parsed, so children run with LC_ALL=C.UTF-8.
 */
import type { ErrorCode } from '../../shared/errors';
import type { DnfStep } from '../../shared/recipe/types';
import { runArgv } from './exec';
import { settleStep, StepFailure, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

/** One package dnf lists or moves: `version` is dnf's [epoch:]version-release. */
export interface RpmPackage {
  readonly name: string;
  readonly arch: string;
  readonly version: string;
}

const DNF_ENV = { LC_ALL: 'C.UTF-8' };
const LIST_STDOUT_BYTES = 8 * 1024 * 1024;

export const dnfExecutor: StepExecutor<DnfStep> = {
  type: 'dnf',
  contract: {
    checks:
      'makecache: metadata downloads; listUpdates: reports the newer versions (none is not an error); ' +
      'downloadOnly: the RPMs of the upgrade are in the cache (a disk that fills: DISK_FULL); upgrade: runs from the cache only (-C), ' +
      'STAGED_CACHE_INCOMPLETE when an RPM or the metadata was not staged',
    changes:
      'makecache: repository metadata; listUpdates: nothing; downloadOnly: the package cache only; ' +
      'upgrade: the installed packages (one rpm transaction)',
    idempotent: true,
    interrupted: 'resume',
    rollback:
      'none of its own: makecache and downloadOnly need none; an applied upgrade is undone by the ' +
      'rollback phase (restore a backup, `yum downgrade` to the previous versions)',
  },
  run: (step, ctx) =>
    settleStep(ctx, async () => {
      switch (step.action) {
        case 'makecache': {
          const ran = await runArgv(ctx, { argv: dnfArgv(step), env: DNF_ENV, timeoutMs: step.timeoutMs });
          return { outputTail: ran.outputTail, exitCode: ran.exitCode };
        }
        case 'downloadOnly':
          return downloadOnly(ctx, step);
        case 'listUpdates':
          return listUpdates(ctx, step);
        case 'upgrade':
          return upgrade(ctx, step);
      }
    }),
};

/** The argv of one action (exported for tests and `recipe explain`). */
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
  }
}

async function listUpdates(ctx: StepContext, step: DnfStep): Promise<StepSuccess> {
  const ran = await runArgv(ctx, {
    argv: dnfArgv(step),
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

/**
 * A write that failed in the middle of the download: librepo's curl reports error 23 ("Failed
 * writing received data to disk") when the cache's file system is full, and Python code
 * `[Errno 28] No space left on device`. dnf deletes the partial RPM itself (verified on a 64 KiB
 * tmpfs over the repository's packages/ directory).
 */
const DISK_FULL_OUTPUT = /Curl error \(23\)|No space left on device/;

async function downloadOnly(ctx: StepContext, step: DnfStep): Promise<StepSuccess> {
  return runTransaction(ctx, step, parseTransaction, {
    output: DISK_FULL_OUTPUT,
    code: 'DISK_FULL',
    explain: (outputTail) => {
      const size = /Total download size: ([\d.]+ [kMG]?)/.exec(outputTail)?.[1];
      return (
        `the disk holding ${step.command}'s package cache filled up during the download` +
        `${size === undefined ? '' : ` of ${size.trim()}B`}; ${step.command} removed the partial file and nothing was staged`
      );
    },
  });
}

// "Some packages have invalid cache, but cannot be downloaded due to "--cacheonly" option", and
// "Cache-only enabled but no cache for 'REPO'" when makecache never ran.
const NOT_STAGED = /cannot be downloaded due to "--cacheonly" option|Cache-only enabled but no cache/;

async function upgrade(ctx: StepContext, step: DnfStep): Promise<StepSuccess> {
  return runTransaction(ctx, step, parseUpgraded, {
    output: NOT_STAGED,
    code: 'STAGED_CACHE_INCOMPLETE',
    explain: () =>
      `${step.command} upgrade needs packages that are not in the cache; nothing was installed ` +
      '(run the download phase first, or again if the repository changed since)',
  });
}

/** A failure dnf reports in its output, and what the operator is told instead of "exited 1". */
interface KnownFailure {
  readonly output: RegExp;
  readonly code: ErrorCode;
  readonly explain: (outputTail: string) => string;
}

/** Runs a transaction (download or upgrade), naming its packages; a known failure gets its own code. */
async function runTransaction(
  ctx: StepContext,
  step: DnfStep,
  parse: (outputTail: string) => readonly RpmPackage[],
  known: KnownFailure,
): Promise<StepSuccess> {
  try {
    const ran = await runArgv(ctx, { argv: dnfArgv(step), env: DNF_ENV, timeoutMs: step.timeoutMs });
    return { outputTail: ran.outputTail, exitCode: ran.exitCode, ...packagesResult(parse(ran.outputTail)) };
  } catch (err) {
    const outputTail = err instanceof StepFailure ? (err.detail.outputTail ?? '') : '';
    if (!(err instanceof StepFailure) || !known.output.test(outputTail)) throw err;
    throw new StepFailure(known.code, known.explain(outputTail), err.detail, { cause: err });
  }
}

function packagesResult(packages: readonly RpmPackage[]): Pick<StepSuccess, 'versions' | 'data'> {
  return { versions: [...new Set(packages.map((p) => p.version))], data: { packages } };
}

/**
 * `NAME.ARCH  VERSION  REPO` rows under "Available Upgrades" (dnf 4) or "Updated Packages" (yum 3).
 * A name too long for its column pushes the rest of the row onto the next, indented line.
 */
export function parseListUpdates(stdout: string): RpmPackage[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) =>
    /^(Available Upgrades|Updated Packages|Upgraded Packages)\s*$/.test(l),
  );
  if (start < 0) return [];
  const rows = joinWrapped(lines.slice(start + 1));
  const packages: RpmPackage[] = [];
  for (const row of rows) {
    const m = /^(\S+)\.([^.\s]+)\s+(\S+)\s+\S+$/.exec(row.trim());
    if (!m) break;
    packages.push({ name: m[1] ?? '', arch: m[2] ?? '', version: m[3] ?? '' });
  }
  return packages;
}

/** The "Upgrading:" rows of the transaction table: `NAME ARCH VERSION REPO SIZE`. */
export function parseTransaction(output: string): RpmPackage[] {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => /^Upgrading:\s*$/.test(l));
  if (start < 0) return [];
  const packages: RpmPackage[] = [];
  for (const row of joinWrapped(lines.slice(start + 1))) {
    const m = /^\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s+[\d.]+\s*[kMG]?$/.exec(row);
    if (!m) break;
    packages.push({ name: m[1] ?? '', arch: m[2] ?? '', version: m[3] ?? '' });
  }
  return packages;
}

/** The NEVRAs listed under "Upgraded:" once the transaction is done. */
export function parseUpgraded(output: string): RpmPackage[] {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => /^Upgraded:\s*$/.test(l));
  if (start < 0) return [];
  const packages: RpmPackage[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!/^\s+\S/.test(line)) break;
    for (const nevra of line.trim().split(/\s+/)) {
      const m = /^(.+)-([^-]+-[^-]+)\.([^.]+)$/.exec(nevra);
      if (m) packages.push({ name: m[1] ?? '', arch: m[3] ?? '', version: m[2] ?? '' });
    }
  }
  return packages;
}

/** A row whose name filled its column continues on the next line: join them. */
function joinWrapped(lines: readonly string[]): string[] {
  const rows: string[] = [];
  for (const line of lines) {
    const previous = rows[rows.length - 1];
    if (previous !== undefined && /^\s*\S+$/.test(previous) && /^\s+\S/.test(line)) {
      rows[rows.length - 1] = `${previous} ${line.trim()}`;
    } else {
      rows.push(line);
    }
  }
  return rows;
}

function lastLine(output: string): string {
  const line = output.trimEnd().split('\n').pop()?.trim() ?? '';
  return line === '' ? '' : `: ${line.slice(0, 200)}`;
}
