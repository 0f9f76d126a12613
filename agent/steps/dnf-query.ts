/**
 * What the dnf step reads: the installed packages from the rpm database (`rpm -qa`, the source of
 * truth after a transaction), and the package versions the repositories offer (`yum repoquery`,
 * from the cached metadata with `-C`). Both print one tab-separated row per package, so nothing
 * depends on dnf's column layout.
 */
import type { DnfStep } from '../../shared/recipe/types';
import { runArgv } from './exec';
import type { StepContext } from './step';
import { formatEvr } from './rpm-version';

/** One package dnf lists or moves: `version` is dnf's [epoch:]version-release. */
export interface RpmPackage {
  readonly name: string;
  readonly arch: string;
  readonly version: string;
}

export const DNF_ENV = { LC_ALL: 'C.UTF-8' };
const QUERY_STDOUT_BYTES = 8 * 1024 * 1024;
const QUERY_TIMEOUT_MS = 5 * 60_000;

/** Installed packages whose names match `patterns` (rpm globs), read from the rpm database. */
export async function installedPackages(
  ctx: StepContext,
  patterns: readonly string[],
): Promise<RpmPackage[]> {
  if (patterns.length === 0) return [];
  const qf = '%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n';
  const ran = await runArgv(ctx, {
    argv: ['rpm', '-qa', '--qf', qf, ...patterns],
    env: DNF_ENV,
    timeoutMs: QUERY_TIMEOUT_MS,
    fullStdoutBytes: QUERY_STDOUT_BYTES,
  });
  // rpm lists in database order: sorted, results and manifests read the same on every host.
  return parseQueryRows(ran.stdout).sort((a, b) =>
    a.name === b.name ? a.arch.localeCompare(b.arch) : a.name < b.name ? -1 : 1,
  );
}

/** Every version of `names` the enabled repositories offer (`-C`: from the cached metadata only). */
export async function offeredPackages(
  ctx: StepContext,
  step: DnfStep,
  names: readonly string[],
  cacheOnly: boolean,
): Promise<RpmPackage[]> {
  if (names.length === 0) return [];
  const qf = '%{name}\\t%{epoch}\\t%{version}\\t%{release}\\t%{arch}';
  const ran = await runArgv(ctx, {
    argv: [step.command, ...(cacheOnly ? ['-C'] : []), '-q', 'repoquery', '--qf', qf, ...names],
    env: DNF_ENV,
    timeoutMs: step.timeoutMs,
    fullStdoutBytes: QUERY_STDOUT_BYTES,
  });
  return parseQueryRows(ran.stdout);
}

/** `NAME\tEPOCH\tVERSION\tRELEASE\tARCH` rows; anything else (a warning line) is skipped. */
export function parseQueryRows(stdout: string): RpmPackage[] {
  const out: RpmPackage[] = [];
  for (const line of stdout.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 5 || f.some((x) => x === '') || !/^\d+$/.test(f[1] ?? '')) continue;
    const [name, epoch, version, release, arch] = f as [string, string, string, string, string];
    out.push({ name, arch, version: formatEvr({ epoch: Number(epoch), version, release }) });
  }
  return out;
}

/** `name-[epoch:]version-release.arch`, the spec dnf reads as exactly one package. */
export function nevraOf(p: RpmPackage): string {
  return `${p.name}-${p.version}.${p.arch}`;
}
