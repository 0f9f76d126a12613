/** What `rollout plan` and `rollout start` send: the deployment, target, window and staging. */
import type { CommonFlags } from '../common';

/** Planning asks every host's check; the controller answers when they all have. */
export const LONG_CALL_MS = 30 * 60_000;

export interface RolloutRequestFlags extends CommonFlags {
  to?: string;
  window?: string;
  approve?: boolean;
  stageNow?: boolean;
  /** Parsed as it is read (flags.ts isoTime). */
  stageAt?: number;
  acknowledgeCautions?: boolean;
}

export function rolloutRequest(deployment: string, flags: RolloutRequestFlags): Record<string, unknown> {
  return {
    deployment,
    target: flags.to ?? '',
    window: flags.window ?? '',
    approve: flags.approve === true,
    stageNow: flags.stageNow === true,
    stageAtMs: flags.stageAt ?? 0,
    acknowledgeCautions: flags.acknowledgeCautions === true,
  };
}
