/**
 * The versions a rollout records are the ones the agent read back from the host after the step
 * (its installed probe: the package database or the binary), never the plan's target copied over.
 * Pure: host-results.ts applies these to an answer.
 *
 * - staged: the target only when a download step reported staging it (its `versions`: a pinned
 *   package step reports the application version it staged, an unpinned one package versions,
 *   whose revision or release is dropped to compare). A download that reported no version,
 *   or only others (a whole-system download lists every package it fetched), leaves staged
 *   unknown (''): status shows `-`, not a version nobody saw.
 * - installed: the phase report's `installed` (read by the agent after upgrade, verify, finalize
 *   and rollback). A verify that read back another version than the target fails the host
 *   (VERSION_MISMATCH: installed X, planned Y); one that read nothing records installed unknown.
 */
import { classifyUpgrade } from '../../shared/semver-policy';
import { upstreamVersion } from './plan';

/** Same version, as an operator would say: equal text, or equal once read as versions (`v1.2.0`). */
export function sameVersion(a: string, b: string): boolean {
  return a.trim() === b.trim() || classifyUpgrade(a, b) === 'same';
}

/**
 * What a successful download staged, from the versions its steps reported: a package step reports
 * package versions, so a Debian revision or RPM release of the target (`2.1.0-1`) is the target.
 */
export function stagedVersionOf(reported: readonly string[], target: string): string {
  return reported.some((v) => sameVersion(v, target) || upstreamVersion(v) === target) ? target : '';
}

/** The failure of a verify that read back `installed`, or undefined when it is the target (or unread). */
export function installedMismatch(installed: string | undefined, target: string): string | undefined {
  if (installed === undefined || installed === '' || sameVersion(installed, target)) return undefined;
  return `VERSION_MISMATCH: installed ${installed}, planned ${target}`;
}
