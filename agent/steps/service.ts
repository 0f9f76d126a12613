/**
 * `service`: stop, start, restart or query one service. Where systemd runs (the directory
 * `/run/systemd/system` exists, the test sd_booted(3) uses) it goes through `systemctl`; elsewhere
 * (containers, test machines) through the step's `commands[action]` argv. Neither available is a
 * clear failure rather than a silent no-op: SERVICE_COMMAND_MISSING, found by `preflight` before
 * the phase's first step runs (whether systemd runs is a fact of the host, which recipe
 * validation cannot know). A command whose program is empty (a recipe var left at its `''`
 * default) counts as no command.
 */
import { existsSync } from 'node:fs';
import type { ServiceStep } from '../../shared/recipe/types';
import { ConvoyError } from '../../shared/errors';
import { runArgv } from './exec';
import { settleStep } from './outcome';
import type { StepExecutor } from './step';

export interface ServiceExecutorOptions {
  /** The directory whose existence means systemd is PID 1. Default `/run/systemd/system`. */
  readonly systemdMarker?: string;
}

const CONTRACT = {
  checks: 'the systemctl (or configured) command exits 0; for status, that the service is active',
  changes: 'the running state of one service',
  idempotent: true,
  interrupted: 'redo',
  rollback: 'none of its own: the rollback phase starts or stops the service again',
} as const;

export function createServiceExecutor(options: ServiceExecutorOptions = {}): StepExecutor<ServiceStep> {
  const marker = options.systemdMarker ?? '/run/systemd/system';
  return {
    type: 'service',
    contract: CONTRACT,
    preflight: (step) => {
      if (existsSync(marker) || hasCommand(step)) return undefined;
      return { code: 'SERVICE_COMMAND_MISSING', message: missingCommandMessage(step) };
    },
    run: (step, ctx) =>
      settleStep(ctx, async () => {
        const argv = serviceArgv(step, existsSync(marker));
        const ran = await runArgv(ctx, { argv, timeoutMs: step.timeoutMs });
        return { outputTail: ran.outputTail, exitCode: ran.exitCode };
      }),
  };
}

export const serviceExecutor = createServiceExecutor();

/** The command for one action; `--` keeps a service name that starts with '-' from being an option. */
export function serviceArgv(step: ServiceStep, systemd: boolean): readonly string[] {
  if (systemd) {
    // is-active exits 0 only for an active unit, which is what a status check asks.
    const verb = step.action === 'status' ? 'is-active' : step.action;
    return ['systemctl', verb, '--', step.name];
  }
  const argv = step.commands?.[step.action];
  if (argv === undefined || !hasCommand(step)) {
    throw new ConvoyError('SERVICE_COMMAND_MISSING', missingCommandMessage(step), { step: step.id });
  }
  return argv;
}

function hasCommand(step: ServiceStep): boolean {
  const argv = step.commands?.[step.action];
  return argv !== undefined && argv.length > 0 && argv[0] !== '';
}

function missingCommandMessage(step: ServiceStep): string {
  return `step ${step.id}: systemd is not running on this host and the step gives no command to ${step.action} ${step.name} (set commands.${step.action}, or the recipe var it names)`;
}
