/**
 * The decisions behind an `apt` step's `pin`, as pure functions: which installed packages it
 * covers, which Debian version each must reach, the apt preferences that make both front ends
 * choose exactly those, and what the archive cache and dpkg's database must show before and after.
 *
 * Why preferences and not `pkg=version`: aptitude refuses `pkg=version` with `upgrade`, and a
 * whole-system upgrade names no packages at all. A `Pin: version V` record with priority 1001 makes
 * V the candidate for apt-get and aptitude alike, whatever newer version the repository offers,
 * while every other package keeps its usual candidate. The file is passed per command
 * (`-o Dir::Etc::Preferences=FILE`) and never written into the host's /etc/apt: a pin left there
 * would steer every later upgrade (and aptitude follows a 1001 pin even downwards).
 */
import { appVersionOfDeb, compareDebVersions, pickDebVersionFor } from './deb-version';

/** One installed package as dpkg-query reports it. */
export interface InstalledPackage {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  /** dpkg's `db:Status-Abbrev`, `ii` when installed and configured. */
  readonly status: string;
}

/** One package a pin holds to a version. */
export interface PinnedPackage {
  readonly name: string;
  /** What is installed now. */
  readonly installed: string;
  /** The Debian version it must reach (the highest revision of the application version). */
  readonly version: string;
}

export interface PinResolution {
  readonly pinned: readonly PinnedPackage[];
  /** Installed packages the pin covers whose application version the repository does not offer. */
  readonly notOffered: readonly string[];
  /** Pinned packages whose target is older than what is installed (a pin never downgrades). */
  readonly downgrades: readonly PinnedPackage[];
}

/** apt's package-name globs (`bm-*`, `bm-?lugin`, `[ab]*`), anchored; anything else is literal. */
export function packageGlob(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => packageGlob(p).test(name));
}

/** Every installed package matching the pin's patterns, with the version it must reach. */
export function resolvePins(
  installed: readonly InstalledPackage[],
  offered: ReadonlyMap<string, readonly string[]>,
  pin: { readonly packages: readonly string[]; readonly version: string },
): PinResolution {
  const pinned: PinnedPackage[] = [];
  const notOffered: string[] = [];
  const downgrades: PinnedPackage[] = [];
  for (const pkg of installed) {
    if (!matchesAny(pkg.name, pin.packages) || !isPresent(pkg)) continue;
    const version = pickDebVersionFor(offered.get(pkg.name) ?? [], pin.version);
    if (version === undefined) {
      notOffered.push(pkg.name);
      continue;
    }
    const p = { name: pkg.name, installed: pkg.version, version };
    if (compareDebVersions(version, pkg.version) < 0) downgrades.push(p);
    else pinned.push(p);
  }
  return { pinned, notOffered, downgrades };
}

/** The preferences records, pins first (apt uses the first record that matches a version). */
export function pinPreferences(pinned: readonly PinnedPackage[], hostPreferences = ''): string {
  const records = pinned.map((p) =>
    [
      `Explanation: convoy pin: ${p.name} at ${appVersionOfDeb(p.version)}`,
      `Package: ${p.name}`,
      `Pin: version ${p.version}`,
      'Pin-Priority: 1001',
    ].join('\n'),
  );
  const host = hostPreferences.trim();
  return [...records, ...(host === '' ? [] : [host])].join('\n\n') + '\n';
}

/** `apt-cache madison` lines: `NAME | VERSION | SOURCE`; several versions per name. */
export function parseMadison(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const [name, version, source] = line.split('|').map((f) => f.trim());
    if (!name || !version || source === undefined) continue;
    const list = out.get(name) ?? [];
    if (!list.includes(version)) list.push(version);
    out.set(name, list);
  }
  return out;
}

/** The format dpkg-query is asked for (one package a line, tab-separated), and its parser. */
export const DPKG_QUERY_FORMAT = '${Package}\\t${Version}\\t${Architecture}\\t${db:Status-Abbrev}\\n';

export function parseDpkgQuery(stdout: string): InstalledPackage[] {
  return stdout
    .split('\n')
    .map((line) => line.split('\t'))
    .filter((f) => f.length >= 4 && f[0] !== '' && f[1] !== '')
    .map(([name = '', version = '', arch = '', status = '']) => ({
      name,
      version,
      arch,
      status: status.trim(),
    }));
}

/**
 * Some version is on the host, configured or not (`ii`, `hi`, `iU`, `iF`, ...); a package removed
 * but for its config files (`rc`) or never installed (`un`) is not.
 */
export function isPresent(p: InstalledPackage): boolean {
  return /^.[iUFWtH]/.test(p.status);
}

/** Installed and configured (`ii`); `rc`, half-installed and unpacked states do not count. */
export function isConfigured(p: InstalledPackage): boolean {
  return p.status === 'ii';
}

/** `NAME_VERSION_ARCH.deb` as apt names cached files (an epoch's `:` written `%3a`). */
export function parseDebFileName(file: string): { name: string; version: string; arch: string } | undefined {
  const m = /^([^_]+)_([^_]+)_([^_]+)\.deb$/.exec(file);
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) return undefined;
  return { name: m[1], version: decodeURIComponent(m[2]), arch: m[3] };
}

/**
 * Pinned packages that must change but whose pinned version is not in the archive cache, each with
 * the versions the cache does hold for it (an earlier, unpinned download, say).
 */
export function unstagedPins(
  pinned: readonly PinnedPackage[],
  cachedFiles: readonly string[],
): { name: string; version: string; cached: string[] }[] {
  const cached = cachedFiles.map(parseDebFileName).filter((f) => f !== undefined);
  return pinned
    .filter((p) => p.installed !== p.version)
    .filter((p) => !cached.some((c) => c.name === p.name && c.version === p.version))
    .map((p) => ({
      name: p.name,
      version: p.version,
      cached: cached.filter((c) => c.name === p.name).map((c) => c.version),
    }));
}

/** Pinned packages not installed (and configured) at their pinned version after an upgrade. */
export function pinsMissed(
  pinned: readonly PinnedPackage[],
  after: readonly InstalledPackage[],
): { name: string; wanted: string; found: string }[] {
  return pinned.flatMap((p) => {
    const now = after.find((a) => a.name === p.name);
    if (now !== undefined && isConfigured(now) && now.version === p.version) return [];
    return [{ name: p.name, wanted: p.version, found: now === undefined ? 'not installed' : describe(now) }];
  });
}

function describe(p: InstalledPackage): string {
  return isConfigured(p) ? p.version : `${p.version} (dpkg state ${p.status})`;
}
