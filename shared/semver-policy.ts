import semver, { type SemVer } from 'semver';

/** How a (installed, target) pair differs; 'invalid' when either side does not parse. */
export type UpgradeKind = 'patch' | 'minor' | 'major' | 'same' | 'downgrade' | 'invalid';

/** What a policy lets an upgrade do: proceed unattended, wait for --approve, or never run. */
export type PolicyDecision = 'auto' | 'needs-approval' | 'refused';

/** Rules an upgrade is checked against; every field is optional and the empty policy is the default. */
export interface UpgradePolicy {
  /** Which kinds proceed without approval. Default: ['patch', 'minor']. */
  readonly autoApprove?: readonly ('patch' | 'minor' | 'major')[];
  /** Allow going to an older version (it then needs approval). Default false (never downgrade). */
  readonly allowDowngrade?: boolean;
  /** A semver range the target must satisfy (e.g. '>=4.1.0 <5'). Default: no range check. */
  readonly allowedRange?: string;
  /** A pinned exact version: any other target is refused. Default: no pin. */
  readonly pinnedVersion?: string;
  /** Allow prerelease targets without approval. Default false. */
  readonly allowPrerelease?: boolean;
}

/** The outcome of decideUpgrade: the kind, the decision and a sentence for the operator. */
export interface PolicyVerdict {
  readonly kind: UpgradeKind;
  readonly decision: PolicyDecision;
  /** One sentence for the operator naming both versions, e.g. "4.1.2 -> 5.0.0 is a major upgrade; ...". */
  readonly reason: string;
}

const DEFAULT_AUTO_APPROVE: readonly UpgradeKind[] = ['patch', 'minor'];

// Packaging versions that are not semver: one to three numeric components, optionally followed by a
// Debian revision or RPM release after '-' or '+', which coerce drops. Anything else that merely starts
// with digits (1.2.3.4, 4.1.2~rc1, the epoch in 1:4.1.2) is refused: coerce would silently drop a
// component that orders versions, so 1.2.3.4 -> 1.2.3.5 would read as 'same'.
const PACKAGING_VERSION = /^\d+(?:\.\d+){0,2}(?:[-+].*)?$/;

/**
 * Parses leniently: trims and strips one leading 'v'/'V' (git tags). A string that is valid semver is
 * read as semver even when it looks like a packaging version, so '4.1.2-1' is prerelease "1" of 4.1.2
 * (below 4.1.2), not Debian revision 1; only strings strict parsing rejects fall back to coerce.
 */
export function parseVersion(raw: string): SemVer | null {
  const text = raw.trim().replace(/^[vV]/, '');
  // semver itself accepts a leading 'v', so without this 'vv1.2.3' would parse.
  if (!/^\d/.test(text)) return null;
  const strict = semver.parse(text);
  if (strict) return strict;
  return PACKAGING_VERSION.test(text) ? semver.coerce(text) : null;
}

function classifyParsed(from: SemVer, to: SemVer): UpgradeKind {
  const order = semver.compare(from, to);
  if (order === 0) return 'same';
  if (order > 0) return 'downgrade';
  if (from.major !== to.major) return 'major';
  // Caret semantics: below 1.0.0 a minor bump is the breaking one.
  if (from.minor !== to.minor) return from.major === 0 ? 'major' : 'minor';
  // Also covers a prerelease-only step (beta.1 -> beta.2, rc.1 -> release): same version, same API level.
  return 'patch';
}

/** Classifies installed -> target by semver order and the highest differing component; never throws. */
export function classifyUpgrade(installed: string, target: string): UpgradeKind {
  const from = parseVersion(installed);
  const to = parseVersion(target);
  return from && to ? classifyParsed(from, to) : 'invalid';
}

// Blank or space-holding input is quoted so a reason never reads " -> 4.1.2".
function show(raw: string): string {
  const text = raw.trim();
  return text === '' || /\s/.test(text) ? JSON.stringify(raw) : text;
}

// A blank range is '*' to semver; from a config file it is more likely a templating slip than
// "allow anything", so it is treated as invalid. Build metadata is ignored against the pin, as it is
// everywhere else in semver ordering.
function policyRefusal(policy: UpgradePolicy, to: SemVer): string | null {
  const { pinnedVersion, allowedRange } = policy;
  if (pinnedVersion !== undefined) {
    const pin = parseVersion(pinnedVersion);
    if (!pin) return `the policy pin ${JSON.stringify(pinnedVersion)} is not a valid version`;
    if (semver.compare(pin, to) !== 0) return `the policy pins ${show(pinnedVersion)}`;
  }
  if (allowedRange !== undefined) {
    if (allowedRange.trim() === '' || semver.validRange(allowedRange) === null) {
      return `the policy range ${JSON.stringify(allowedRange)} is invalid`;
    }
    if (!semver.satisfies(to, allowedRange, { includePrerelease: true })) {
      return `it is outside the allowed range ${allowedRange.trim()}`;
    }
  }
  return null;
}

/**
 * Decides whether installed -> target may run under policy (default: auto for patch and minor, approval
 * for major and prerelease targets, downgrades refused). Same and downgrade are settled before the
 * prerelease check so that a prerelease target can never turn a refused downgrade into an approvable one.
 */
export function decideUpgrade(installed: string, target: string, policy: UpgradePolicy = {}): PolicyVerdict {
  const step = `${show(installed)} -> ${show(target)}`;
  const from = parseVersion(installed);
  const to = parseVersion(target);
  if (!from || !to) {
    const bad = [from ? null : installed, to ? null : target].filter((v): v is string => v !== null);
    const what = bad.map((v) => JSON.stringify(v)).join(' and ');
    const verb = bad.length > 1 ? 'are not valid versions' : 'is not a valid version';
    return { kind: 'invalid', decision: 'refused', reason: `cannot decide ${step}: ${what} ${verb}` };
  }
  const kind = classifyParsed(from, to);
  const verdict = (decision: PolicyDecision, reason: string): PolicyVerdict => ({ kind, decision, reason });

  const refusal = policyRefusal(policy, to);
  if (refusal !== null) return verdict('refused', `${step} is refused; ${refusal}`);
  if (kind === 'same') {
    const also = installed.trim() === target.trim() ? '' : ` (same version as ${show(target)})`;
    return verdict('auto', `already on ${show(installed)}${also}; nothing to do`);
  }
  if (kind === 'downgrade') {
    return policy.allowDowngrade
      ? verdict('needs-approval', `${step} is a downgrade; it needs --approve`)
      : verdict('refused', `${step} is a downgrade; the policy does not allow downgrades`);
  }
  const label = from.major === 0 && kind === 'major' && to.major === 0 ? 'major (0.x minor bump)' : kind;
  if (to.prerelease.length > 0 && !policy.allowPrerelease) {
    return verdict('needs-approval', `${step} is a ${label} upgrade to a prerelease; it needs --approve`);
  }
  const autoApprove: readonly UpgradeKind[] = policy.autoApprove ?? DEFAULT_AUTO_APPROVE;
  if (autoApprove.includes(kind)) {
    return verdict('auto', `${step} is a ${label} upgrade; it proceeds without approval`);
  }
  return verdict('needs-approval', `${step} is a ${label} upgrade; it needs --approve`);
}
