/**
 * A fake host for the sweep: the agent-facing spec, the directories holding its mutable state,
 * and how to read, from outside the agent, which version of the application runs and whether it
 * is healthy, in maintenance, or was changed twice by a step whose contract says "once".
 */
import type { AgentHostSpec } from './agent-phase';

export interface AppState {
  /** The version the host reports (package database, git tag, binary, occ status). */
  readonly version: string;
  readonly healthy: boolean;
  readonly maintenance: boolean;
  /** Half states the version alone does not show (new code without its migration, ...). */
  readonly problems: readonly string[];
  /** Steps that must run once and whose effect the fixture's logs show more than once. */
  readonly ranTwice: readonly string[];
}

export interface SweepHost {
  readonly recipe: string;
  readonly from: string;
  readonly to: string;
  readonly agent: AgentHostSpec;
  /** Mutable state on disk, the agent's state dir included: snapshotted and restored per case. */
  readonly dirs: readonly string[];
  /** Resets what lives in this process (fake services' counters and switches). */
  reset(): void;
  observe(): Promise<AppState>;
  cleanup(): Promise<void>;
}

/** GET url; the status code, or 0 when nothing answered. */
export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}
