/** What `rollout plan` and `rollout start` send: the deployment, target, window and staging. */
import { ConvoyError } from '../../../shared/errors';
import type { CommonFlags } from '../common';

/** Planning asks every host's check; the controller answers when they all have. */
export const LONG_CALL_MS = 30 * 60_000;

export interface RolloutRequestFlags extends CommonFlags {
  to?: string;
  window?: string;
  approve?: boolean;
  stageNow?: boolean;
  stageAt?: string;
}

export function rolloutRequest(deployment: string, flags: RolloutRequestFlags): Record<string, unknown> {
  let stageAtMs = 0;
  if (flags.stageAt !== undefined) {
    stageAtMs = Date.parse(flags.stageAt);
    if (!Number.isFinite(stageAtMs))
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `--stage-at ${JSON.stringify(flags.stageAt)}: not an ISO time`,
      );
  }
  return {
    deployment,
    target: flags.to ?? '',
    window: flags.window ?? '',
    approve: flags.approve === true,
    stageNow: flags.stageNow === true,
    stageAtMs,
  };
}
