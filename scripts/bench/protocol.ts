/**
 * Messages between the benchmark (`fanout.ts`) and its agent swarms (`agent-swarm.ts`), over the
 * IPC channel that `child_process.fork` opens.
 */
import type { LogLevel } from '../../shared/logger';

/** Parent -> swarm: enroll and run `count` agents. */
export interface SwarmStart {
  readonly type: 'start';
  /** Swarm number, used in agent host names (`bench-s<swarm>-a<index>`). */
  readonly swarm: number;
  readonly count: number;
  /** Controller agent address, host:port. */
  readonly controller: string;
  /** Controller public key to pin, `ed25519:<base64>`. */
  readonly controllerKey: string;
  readonly token: string;
  /** Directory under which each agent gets its own state directory. */
  readonly stateRoot: string;
  /** Enrollments in flight at once in this swarm. */
  readonly enrollConcurrency: number;
  /**
   * Level of the agents' log lines on the swarm's stderr. Default 'warn'; the reconnect-storm
   * test (test/chaos/reconnect-storm.test.ts) asks for 'info' to see every `connected` line.
   */
  readonly agentLogLevel?: LogLevel;
}

/** Parent -> swarm: stop every agent (streams closed, journals closed), then exit 0. */
export interface SwarmStop {
  readonly type: 'stop';
}

export type ToSwarm = SwarmStart | SwarmStop;

/** Swarm -> parent, at most every 500 ms while agents enroll and connect. */
export interface SwarmProgress {
  readonly type: 'progress';
  readonly enrolled: number;
  readonly online: number;
}

/** Swarm -> parent: every agent of the swarm is enrolled and online. */
export interface SwarmReady {
  readonly type: 'ready';
  readonly hostIds: readonly string[];
  /** The swarm process's own RSS once all of its agents are online, kB. */
  readonly rssKb: number;
  /** Time from the start message to the last agent online, ms. */
  readonly elapsedMs: number;
}

/** Swarm -> parent: enrolling or starting the agents failed. */
export interface SwarmError {
  readonly type: 'error';
  readonly message: string;
}

export type FromSwarm = SwarmProgress | SwarmReady | SwarmError;

export function isToSwarm(value: unknown): value is ToSwarm {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === 'start' || type === 'stop';
}

export function isFromSwarm(value: unknown): value is FromSwarm {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === 'progress' || type === 'ready' || type === 'error';
}
