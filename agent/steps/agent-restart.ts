/**
 * `agent.restart`: after a self-update has replaced the bundle on disk, makes the running agent
 * the new version. When the running agent already is `{{target}}` the step is done; otherwise it
 * asks the agent to exit for its supervisor to start the new file. The journal holds the step as
 * current when the process goes, so the controller's resend finds it interrupted, the resume
 * table says `redo`, and the new process finds itself at the target version: done.
 *
 * Without a supervisor (an agent started by hand) nothing would start it again: refused.
 */
import { ConvoyError } from '../../shared/errors';
import type { AgentRestartStep } from '../../shared/recipe/types';
import { CONVOY_VERSION } from '../../shared/version';
import { settleStep, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

export const agentRestartExecutor: StepExecutor<AgentRestartStep> = {
  type: 'agent.restart',
  contract: {
    checks:
      'the running agent reports {{target}}; a supervisor (systemd or convoy-agent supervise) will start it again',
    changes: 'the agent process: it exits and its supervisor starts the bundle now on disk',
    idempotent: true,
    interrupted: 'redo',
    rollback: 'none: the rollback phase restores the previous bundle (binary.restore)',
  },
  run: (step, ctx) => settleStep(ctx, () => restart(step, ctx)),
};

async function restart(_step: AgentRestartStep, ctx: StepContext): Promise<StepSuccess> {
  const target = ctx.vars['target'] ?? '';
  if (CONVOY_VERSION === target) {
    return { data: { version: CONVOY_VERSION }, outputTail: `the agent runs ${CONVOY_VERSION}\n` };
  }
  if (ctx.requestRestart === undefined) {
    throw new ConvoyError(
      'AGENT_NOT_SUPERVISED',
      `the agent runs ${CONVOY_VERSION}, not ${target}, and nothing would start it again after a restart`,
    );
  }
  ctx.log.info('restarting onto the new bundle', { running: CONVOY_VERSION, target });
  ctx.requestRestart();
  // The process exits under this step: it never finishes here, only in the next process.
  return new Promise<StepSuccess>((_resolve, reject) => {
    ctx.signal.addEventListener('abort', () =>
      reject(new ConvoyError('STEP_FAILED', 'the agent stopped before it could restart')),
    );
  });
}
