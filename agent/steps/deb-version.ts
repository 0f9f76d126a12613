/**
 * Debian package versions and the application versions they carry, as pure functions.
 *
 * A Debian version is `[epoch:]upstream[-revision]`. The application version a package belongs to
 * is its upstream part: the epoch (`N:`) dropped, and the last `-revision` dropped (the upstream
 * part may itself contain hyphens, so only the last one counts). `bm-core 1:4.1.0-3` belongs to
 * BlueMind 4.1.0. When the repository offers several revisions of one upstream version, the
 * highest revision is the one a pin chooses.
 *
 * Ordering follows dpkg's own algorithm (deb-version(7), lib/dpkg/version.c `verrevcmp`), so that
 * "highest" here is what `dpkg --compare-versions` says.
 */

export interface DebVersion {
  readonly epoch: number;
  readonly upstream: string;
  /** Empty when the version has no `-revision` (a native package). */
  readonly revision: string;
}

export function parseDebVersion(text: string): DebVersion {
  const v = text.trim();
  const colon = v.indexOf(':');
  const epochText = colon >= 0 ? v.slice(0, colon) : '';
  const epoch = /^\d+$/.test(epochText) ? Number(epochText) : 0;
  const rest = colon >= 0 && /^\d+$/.test(epochText) ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf('-');
  return dash >= 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: '' };
}

/** The application version a Debian package version belongs to: `1:4.1.0-3` -> `4.1.0`. */
export function appVersionOfDeb(debVersion: string): string {
  return parseDebVersion(debVersion).upstream;
}

/** dpkg's order: negative when a < b, 0 when equal, positive when a > b. */
export function compareDebVersions(a: string, b: string): number {
  const x = parseDebVersion(a);
  const y = parseDebVersion(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision);
}

/**
 * The highest offered version whose application version is `appVersion`, or undefined when the
 * repository offers none.
 */
export function pickDebVersionFor(offered: readonly string[], appVersion: string): string | undefined {
  let best: string | undefined;
  for (const v of offered) {
    if (appVersionOfDeb(v) !== appVersion) continue;
    if (best === undefined || compareDebVersions(v, best) > 0) best = v;
  }
  return best;
}

/** `~` sorts before everything, even the end; letters before other characters. */
function order(c: string | undefined): number {
  if (c === undefined || /\d/.test(c)) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    // The non-digit prefixes, character by character.
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = order(a[i]);
      const bc = order(b[j]);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    // The digit runs as numbers: the longer run wins, else the first differing digit.
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = (a.charCodeAt(i) || 0) - (b.charCodeAt(j) || 0);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}
