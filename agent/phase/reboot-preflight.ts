/**
 * What a `check` refuses before it runs anything: a recipe this host could not carry out. Today
 * one thing: a reboot step without a command where systemd is not PID 1 (the step would fail
 * with the same code mid-upgrade; at the check a plan says so before any host is touched).
 */
import { ConvoyError } from '../../shared/errors';
import type { Recipe } from '../../shared/recipe/types';
import { hostRebootFacts, type RebootFacts } from '../host/reboot-facts';
import { rebootStepsWithoutCommand } from '../steps/reboot-decide';

export function refuseUnrebootable(
  recipe: Recipe,
  facts: Pick<RebootFacts, 'systemdRuns'> = hostRebootFacts(),
): void {
  const steps = rebootStepsWithoutCommand(recipe, facts.systemdRuns());
  if (steps.length === 0) return;
  throw new ConvoyError(
    'REBOOT_COMMAND_MISSING',
    `${steps.join(', ')}: systemd is not PID 1 on this host and the reboot step gives no command: say how to reboot (command: [...])`,
  );
}
