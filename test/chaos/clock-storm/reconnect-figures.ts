/**
 * What the agents' own log lines say about a reconnect storm: per agent, each closed stream
 * (`disconnected from controller`, with the delay it drew before the next attempt) and the first
 * welcome after the fault (`connected to controller`).
 */
import type { LogLine } from './storm-fleet';

export interface AgentReconnect {
  /** Streams that closed since the fault: the one the fault broke plus every failed attempt. */
  readonly attempts: number;
  /** The delay drawn before each new attempt, ms. */
  readonly delaysMs: readonly number[];
  /** When each new attempt was due (close time + drawn delay), ms. */
  readonly attemptAtMs: readonly number[];
  readonly reasons: readonly string[];
  /** First welcome after the fault, ms; undefined if none. */
  readonly reconnectedAtMs: number | undefined;
}

export function reconnectsSince(lines: readonly LogLine[], sinceMs: number): Map<string, AgentReconnect> {
  const byHost = new Map<
    string,
    {
      attempts: number;
      delaysMs: number[];
      attemptAtMs: number[];
      reasons: string[];
      reconnectedAtMs: number | undefined;
    }
  >();
  for (const line of lines) {
    const at = typeof line['ts'] === 'string' ? Date.parse(line['ts']) : NaN;
    const hostId = line['hostId'];
    if (!(at >= sinceMs) || typeof hostId !== 'string') continue;
    let agent = byHost.get(hostId);
    if (agent === undefined) {
      agent = { attempts: 0, delaysMs: [], attemptAtMs: [], reasons: [], reconnectedAtMs: undefined };
      byHost.set(hostId, agent);
    }
    if (line['msg'] === 'disconnected from controller' && agent.reconnectedAtMs === undefined) {
      agent.attempts += 1;
      agent.delaysMs.push(Number(line['retryInMs']));
      agent.attemptAtMs.push(at + Number(line['retryInMs']));
      agent.reasons.push(String(line['reason']));
    } else if (line['msg'] === 'connected to controller') {
      agent.reconnectedAtMs ??= at;
    }
  }
  return byHost;
}

/** The most instants that fall within any `windowMs`-long window. */
export function peakInWindow(instants: readonly number[], windowMs: number): number {
  const sorted = [...instants].sort((a, b) => a - b);
  let peak = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] ?? 0) - (sorted[start] ?? 0) >= windowMs) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
