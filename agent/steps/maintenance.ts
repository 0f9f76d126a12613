/**
 * `maintenance`: switches an application's maintenance mode on or off in exactly one of three ways:
 *
 * - `argv`: runs the program (the recipe's vendor command, e.g. `occ maintenance:mode --on`);
 * - `flagFile`: `on` writes the file (temp file + rename, so a reader never sees it half written),
 *   `off` removes it; both succeed when the file is already in the wanted state;
 * - `url`: `on` sends `PUT url`, `off` sends `DELETE url`; any 2xx answer is success. PUT/DELETE
 *   because switching on and off is setting and removing one resource, and both are idempotent.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { MaintenanceStep } from '../../shared/recipe/types';
import { ConvoyError } from '../../shared/errors';
import { runArgv } from './exec';
import { writeFileAtomic } from './files';
import { sendRequest, showUrl } from './http-client';
import { settleStep, StepFailure, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

export const maintenanceExecutor: StepExecutor<MaintenanceStep> = {
  type: 'maintenance',
  contract: {
    checks: 'the command exits 0, the flag file is in place or gone, or the URL answers 2xx',
    changes: "the application's maintenance mode (a flag file, or whatever the command or URL does)",
    idempotent: true,
    interrupted: 'redo',
    rollback:
      'the opposite action; a host must never be left in maintenance, so rollback phases switch it off',
  },
  run: (step, ctx) => settleStep(ctx, () => switchMaintenance(step, ctx)),
};

async function switchMaintenance(step: MaintenanceStep, ctx: StepContext): Promise<StepSuccess> {
  const ways = [step.argv, step.flagFile, step.url].filter((w) => w !== undefined).length;
  if (ways !== 1) {
    throw new ConvoyError('STEP_FAILED', 'a maintenance step needs exactly one of argv, flagFile and url', {
      step: step.id,
    });
  }
  if (step.argv !== undefined) {
    const ran = await runArgv(ctx, { argv: step.argv, timeoutMs: step.timeoutMs });
    return { outputTail: ran.outputTail, exitCode: ran.exitCode };
  }
  if (step.flagFile !== undefined) {
    if (step.action === 'on') await writeFlagFile(step.flagFile, ctx.now());
    else await rm(step.flagFile, { force: true });
    return { data: { flagFile: step.flagFile } };
  }
  return switchByUrl(step, step.url ?? '', ctx);
}

async function writeFlagFile(file: string, nowMs: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const content = `maintenance mode switched on by convoy at ${new Date(nowMs).toISOString()}\n`;
  await writeFileAtomic(file, content, 0o644);
}

async function switchByUrl(step: MaintenanceStep, url: string, ctx: StepContext): Promise<StepSuccess> {
  const method = step.action === 'on' ? 'PUT' : 'DELETE';
  const reply = await sendRequest({ url, method, timeoutMs: step.timeoutMs, signal: ctx.signal }, 4096);
  const outputTail = reply.body.toString('utf8');
  if (reply.status < 200 || reply.status > 299) {
    throw new StepFailure('STEP_FAILED', `${method} ${showUrl(url)} answered ${reply.status}`, {
      outputTail,
    });
  }
  return { outputTail, data: { status: reply.status } };
}
