/**
 * A host whose phase is inside a `reboot` step, decided: the agent reported the step as
 * `rebooting` (agent/phase/remote.ts) just before its connection dropped. Such a host is waiting,
 * neither failed nor unknown, for at most the step's bound (its `timeout`), counted from when the
 * phase's answer was lost (or, after a controller restart, from when this controller first looked).
 * Pure: flights.ts reads the store and acts.
 *
 *   no rebooting report in the phase run           ─▶ none      (the usual lost-answer path)
 *   rebooting, bound not reached                   ─▶ waiting   (the agent comes back and is resent)
 *   rebooting, bound passed                        ─▶ timed-out (REBOOT_TIMEOUT: the host fails)
 */
import { formatDuration } from '../../shared/duration';
import { DEFAULT_TIMEOUT_MS } from '../../shared/recipe/step-schema';
import type { Recipe, Step } from '../../shared/recipe/types';

/** What the store says of a reboot in a phase run: the step that reported it and since when. */
export interface RebootMark {
  readonly stepId: string;
  /** When the phase's answer was lost (reboot-store.ts). */
  readonly sinceMs: number;
}

export type RebootWait =
  | { readonly kind: 'none' }
  | { readonly kind: 'waiting'; readonly untilMs: number; readonly reason: string }
  | { readonly kind: 'timed-out'; readonly why: string };

/** The reason a waiting host shows; `isRebootingReason` recognises it (the status view). */
const REBOOTING = 'rebooting:';

export function decideRebootWait(
  mark: RebootMark | undefined,
  recipe: Recipe,
  phase: string,
  nowMs: number,
): RebootWait {
  if (mark === undefined) return { kind: 'none' };
  const boundMs = rebootBoundMs(recipe, phase, mark.stepId);
  const untilMs = mark.sinceMs + boundMs;
  if (nowMs >= untilMs)
    return {
      kind: 'timed-out',
      why: `REBOOT_TIMEOUT: ${mark.stepId}: the host did not come back within ${formatDuration(boundMs)} of its reboot`,
    };
  return {
    kind: 'waiting',
    untilMs,
    reason: `${REBOOTING} ${mark.stepId}; waiting up to ${formatDuration(boundMs)} for the host to come back`,
  };
}

export function isRebootingReason(reason: string): boolean {
  return reason.startsWith(REBOOTING);
}

/** The step's bound; a step the recipe no longer has gets the default a reboot step has. */
function rebootBoundMs(recipe: Recipe, phase: string, stepId: string): number {
  const steps: readonly Step[] =
    phase === 'finalize'
      ? (recipe.phases.finalize?.steps ?? [])
      : (recipe.phases[phase as keyof Omit<Recipe['phases'], 'finalize'>] ?? []);
  return steps.find((s) => s.id === stepId)?.timeoutMs ?? DEFAULT_TIMEOUT_MS.reboot;
}
