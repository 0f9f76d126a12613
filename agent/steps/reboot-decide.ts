/**
 * The `reboot` step's decisions, pure (agent/steps/reboot.ts does the I/O):
 *
 *   journaled reboot of this step?  no                     ─▶ fresh    (decide whether to reboot)
 *                                   yes, boot id changed   ─▶ rebooted (the step is done)
 *                                   yes, same boot, time left ─▶ waiting (the reboot may still come)
 *                                   yes, same boot, bound passed ─▶ did-not-happen (REBOOT_DID_NOT_HAPPEN)
 *
 *   need:  always                                          ─▶ reboot
 *          ifRequired: reboot-required flag, or needs-restarting -r exits 1 ─▶ reboot
 *          ifRequired: neither                             ─▶ no reboot
 *          needs-restarting exits anything but 0 or 1      ─▶ failure (it could not tell)
 */
import { PHASES, type Recipe, type RebootStep, type Step } from '../../shared/recipe/types';
import type { JournaledReboot } from './step';

export type RebootStart =
  | { readonly kind: 'fresh' }
  | { readonly kind: 'rebooted'; readonly fromBootId: string; readonly toBootId: string }
  | { readonly kind: 'waiting'; readonly remainingMs: number }
  | { readonly kind: 'did-not-happen'; readonly waitedMs: number };

/** Where a reboot step starts, given what the journal says and the boot id now. */
export function decideRebootStart(
  journaled: JournaledReboot | undefined,
  stepId: string,
  bootIdNow: string,
  nowMs: number,
  boundMs: number,
): RebootStart {
  if (journaled === undefined || journaled.stepId !== stepId) return { kind: 'fresh' };
  if (journaled.bootId !== bootIdNow)
    return { kind: 'rebooted', fromBootId: journaled.bootId, toBootId: bootIdNow };
  const waited = Math.max(0, nowMs - journaled.atMs);
  if (waited >= boundMs) return { kind: 'did-not-happen', waitedMs: waited };
  return { kind: 'waiting', remainingMs: boundMs - waited };
}

/** What the host's package manager said; `needsRestartingExit` is undefined when it is not installed. */
export interface RebootProbe {
  readonly rebootRequiredFlag: boolean;
  readonly needsRestartingExit?: number | null;
}

export type RebootNeed =
  | { readonly kind: 'reboot'; readonly why: string }
  | { readonly kind: 'skip'; readonly why: string }
  | { readonly kind: 'unknown'; readonly why: string };

export function decideRebootNeed(mode: RebootStep['reboot'], probe: RebootProbe): RebootNeed {
  if (mode === 'always') return { kind: 'reboot', why: 'the step reboots always' };
  if (probe.rebootRequiredFlag) return { kind: 'reboot', why: '/var/run/reboot-required exists' };
  const code = probe.needsRestartingExit;
  if (code === 1) return { kind: 'reboot', why: '`needs-restarting -r` says a reboot is needed' };
  if (code === undefined)
    return { kind: 'skip', why: 'no reboot-required flag (needs-restarting not installed)' };
  if (code === 0)
    return { kind: 'skip', why: 'no reboot-required flag, and `needs-restarting -r` says none is needed' };
  return { kind: 'unknown', why: `\`needs-restarting -r\` exited ${code ?? 'by a signal'}` };
}

/** The recipe's command, else `systemctl reboot` where systemd runs; undefined: nothing known. */
export function rebootCommandFor(
  command: readonly string[] | undefined,
  systemdRuns: boolean,
): readonly string[] | undefined {
  if (command !== undefined) return command;
  return systemdRuns ? ['systemctl', 'reboot'] : undefined;
}

/**
 * The reboot steps of `recipe` that could not reboot this host (no command, no systemd), named
 * `phase.id`: a `check` refuses on them, so a plan says so before any host is touched.
 */
export function rebootStepsWithoutCommand(recipe: Recipe, systemdRuns: boolean): string[] {
  if (systemdRuns) return [];
  return PHASES.flatMap((phase) => {
    const steps: readonly Step[] =
      phase === 'finalize' ? (recipe.phases.finalize?.steps ?? []) : recipe.phases[phase];
    return steps.filter((s) => s.type === 'reboot' && s.command === undefined).map((s) => `${phase}.${s.id}`);
  });
}
