/**
 * RPM versions as rpm reads them, never as semver. An RPM package version is `[EPOCH:]VERSION-RELEASE`:
 * the application's version is the VERSION field; the RELEASE (`1`, `1.el9`, `0.rc1.el9`) is the
 * packager's build of it. Semver would read `4.1.2-1.el9` as prerelease `1.el9` of 4.1.2 (below
 * 4.1.2): everything the dnf step reports passes through `applicationVersionOf` first, so only
 * VERSION fields leave the agent in a step's `versions`.
 *
 * Ordering is rpm's own (`rpmvercmp`, rpm 4.18 rpmio/rpmvercmp.c): alternating digit and letter
 * segments, digits above letters, `~` sorts before anything (pre-releases the RPM way), `^` after
 * the base but before anything longer (snapshots).
 */

/** One package version: epoch (0 when absent), VERSION and RELEASE. */
export interface Evr {
  readonly epoch: number;
  readonly version: string;
  readonly release: string;
}

/** Parses `[E:]V-R` (the release is what follows the last `-`); `V` alone has an empty release. */
export function parseEvr(text: string): Evr {
  const colon = text.indexOf(':');
  const epochText = colon > 0 ? text.slice(0, colon) : '';
  const rest = colon > 0 ? text.slice(colon + 1) : text;
  const dash = rest.lastIndexOf('-');
  return {
    epoch: /^\d+$/.test(epochText) ? Number(epochText) : 0,
    version: dash < 0 ? rest : rest.slice(0, dash),
    release: dash < 0 ? '' : rest.slice(dash + 1),
  };
}

/** `[E:]V-R`, the epoch only when it is not 0 (as dnf prints it). */
export function formatEvr(evr: Evr): string {
  const epoch = evr.epoch === 0 ? '' : `${evr.epoch}:`;
  return evr.release === '' ? `${epoch}${evr.version}` : `${epoch}${evr.version}-${evr.release}`;
}

/** The application version a package version carries: its VERSION field (epoch and release dropped). */
export function applicationVersionOf(packageVersion: string): string {
  return parseEvr(packageVersion).version;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string | undefined): boolean =>
  c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
const isAlnum = (c: string | undefined): boolean => isDigit(c) || isAlpha(c);

/** rpm's rpmvercmp on one field (VERSION or RELEASE): -1, 0 or 1. */
export function compareRpmSegments(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i += 1;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j += 1;
    // A tilde sorts before anything, the end of the string included: 1.0~rc1 < 1.0.
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i += 1;
      j += 1;
      continue;
    }
    // A caret sorts after the end of the string but before anything else: 1.0 < 1.0^git1 < 1.0.1.
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i += 1;
      j += 1;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i]);
    const take = numeric ? isDigit : isAlpha;
    const si = i;
    const sj = j;
    while (i < a.length && take(a[i])) i += 1;
    while (j < b.length && take(b[j])) j += 1;
    // A number against letters: the number is newer.
    if (j === sj) return numeric ? 1 : -1;
    let x = a.slice(si, i);
    let y = b.slice(sj, j);
    if (numeric) {
      x = x.replace(/^0+/, '');
      y = y.replace(/^0+/, '');
      if (x.length !== y.length) return x.length > y.length ? 1 : -1;
    }
    if (x !== y) return x < y ? -1 : 1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** Orders two package versions as rpm does: epoch, then VERSION, then RELEASE. */
export function compareEvr(a: Evr, b: Evr): -1 | 0 | 1 {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  const version = compareRpmSegments(a.version, b.version);
  if (version !== 0) return version;
  return compareRpmSegments(a.release, b.release);
}

/**
 * The package version that belongs to application version `version` among `offered`: VERSION
 * equal to it, the highest release (then epoch) when there are several; undefined when none.
 */
export function pinnedEvr(offered: readonly Evr[], version: string): Evr | undefined {
  const matching = offered.filter((e) => e.version === version);
  return matching.sort((x, y) => compareEvr(y, x))[0];
}
