/**
 * `reboot`: reboots the host, `always` or `ifRequired` (Debian's reboot-required flag, RHEL's
 * `needs-restarting -r`). Before its command runs, the step journals the boot id and tells the
 * controller it is rebooting; then it never completes in this process. The agent that starts
 * after the boot (systemd, or its supervisor) is sent the phase again, runs this step again (its
 * contract says `resume`), finds the journaled reboot and a new boot id: done, and the phase
 * goes on with the next step. The same boot id means the reboot did not happen: the step waits
 * what is left of its bound (`timeout`) and fails with REBOOT_DID_NOT_HAPPEN.
 */
import { ConvoyError } from '../../shared/errors';
import type { RebootStep } from '../../shared/recipe/types';
import { settleStep, StepFailure, type StepSuccess } from './outcome';
import { decideRebootNeed, decideRebootStart, rebootCommandFor, type RebootNeed } from './reboot-decide';
import type { RebootHooks, StepContext, StepExecutor } from './step';

/** How long `needs-restarting -r` may take. */
const PROBE_TIMEOUT_MS = 60_000;

export const rebootExecutor: StepExecutor<RebootStep> = {
  type: 'reboot',
  contract: {
    checks:
      'ifRequired: /var/run/reboot-required exists, or `needs-restarting -r` (when installed) exits 1; a way to reboot (`command`, or systemd as PID 1)',
    changes:
      'the whole host reboots; the step completes in the agent that starts after the boot, when it sees a new boot id',
    idempotent: true,
    interrupted: 'resume',
    rollback: 'none: a reboot cannot be undone; the rollback phase runs on the rebooted host',
  },
  run: (step, ctx) => settleStep(ctx, () => reboot(step, ctx)),
};

async function reboot(step: RebootStep, ctx: StepContext): Promise<StepSuccess> {
  const hooks = ctx.reboot;
  if (hooks === undefined) throw new Error('a reboot step runs only inside a phase run (no reboot hooks)');
  const bootId = hooks.facts.bootId();
  const start = decideRebootStart(hooks.journaled, step.id, bootId, ctx.now(), step.timeoutMs);
  switch (start.kind) {
    case 'rebooted':
      ctx.log.info('the host rebooted', { from: start.fromBootId, to: start.toBootId });
      return {
        data: { rebooted: true, fromBootId: start.fromBootId, toBootId: start.toBootId },
        outputTail: `rebooted: boot ${start.fromBootId} -> ${start.toBootId}\n`,
      };
    case 'did-not-happen':
      throw didNotHappen(bootId, start.waitedMs);
    case 'waiting':
      // Same boot, an agent started again before the bound: the reboot may still come. Never a
      // second command for the same step: wait out what is left.
      return waitForReboot(ctx, bootId, start.remainingMs);
    case 'fresh':
      break;
  }
  const need = await rebootNeed(step, ctx, hooks);
  if (need.kind === 'unknown') throw new ConvoyError('STEP_FAILED', need.why);
  if (need.kind === 'skip') return { data: { rebooted: false }, outputTail: `no reboot: ${need.why}\n` };
  const argv = rebootCommandFor(step.command, hooks.facts.systemdRuns());
  if (argv === undefined)
    throw new ConvoyError(
      'REBOOT_COMMAND_MISSING',
      `${step.id}: systemd is not PID 1 on this host and the step gives no command: say how to reboot (command: [...])`,
    );
  const started = ctx.now();
  await hooks.announce(bootId);
  ctx.log.info('rebooting the host', { why: need.why, bootId });
  const r = await ctx.exec({ argv, env: ctx.env, timeoutMs: step.timeoutMs, signal: ctx.signal });
  if (r.code !== 0) {
    throw new StepFailure(
      'STEP_FAILED',
      `the reboot command ${argv.join(' ')} exited ${r.code ?? r.signal ?? 'abnormally'}`,
      { outputTail: r.stdout + r.stderr, exitCode: r.code },
    );
  }
  return waitForReboot(ctx, bootId, step.timeoutMs - (ctx.now() - started));
}

async function rebootNeed(step: RebootStep, ctx: StepContext, hooks: RebootHooks): Promise<RebootNeed> {
  if (step.reboot === 'always') return decideRebootNeed('always', { rebootRequiredFlag: false });
  const rebootRequiredFlag = hooks.facts.rebootRequiredFlag();
  const program = rebootRequiredFlag ? undefined : hooks.facts.needsRestarting();
  if (program === undefined) return decideRebootNeed(step.reboot, { rebootRequiredFlag });
  const r = await ctx.exec({
    argv: [program, '-r'],
    env: ctx.env,
    timeoutMs: Math.min(PROBE_TIMEOUT_MS, step.timeoutMs),
    signal: ctx.signal,
  });
  return decideRebootNeed(step.reboot, { rebootRequiredFlag, needsRestartingExit: r.code });
}

/**
 * A reboot kills this process; a wait that ends is one that did not happen. Ends at `remainingMs`,
 * or when the runner's bound on the step aborts it, whichever comes first.
 */
function waitForReboot(ctx: StepContext, bootId: string, remainingMs: number): Promise<StepSuccess> {
  const started = ctx.now();
  return new Promise<StepSuccess>((_resolve, reject) => {
    const fail = (): void => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', fail);
      reject(didNotHappen(bootId, ctx.now() - started));
    };
    const timer = setTimeout(fail, Math.max(0, remainingMs));
    ctx.signal.addEventListener('abort', fail);
  });
}

function didNotHappen(bootId: string, waitedMs: number): ConvoyError {
  return new ConvoyError(
    'REBOOT_DID_NOT_HAPPEN',
    `the host did not reboot: the boot id is still ${bootId} after ${Math.round(waitedMs / 1000)} s`,
  );
}
