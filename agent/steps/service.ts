/**
 * `service`: stop, start, restart or query one service. Where systemd runs (the directory
 * `/run/systemd/system` exists, the test sd_booted(3) uses) it goes through `systemctl`; elsewhere
 * (containers, test machines) through the step's `commands[action]` argv. Neither available is a
 * clear failure rather than a silent no-op.
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
  if (argv === undefined || argv.length === 0) {
    throw new ConvoyError(
      'STEP_FAILED',
      `systemd is not running on this host and the step gives no command to ${step.action} ${step.name}`,
      { step: step.id },
    );
  }
  return argv;
}
