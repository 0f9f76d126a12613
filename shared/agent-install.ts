/**
 * The contract between the two halves of SSH enrollment: where an installed agent lives on a
 * host, and what the bundle's `install --request-stdin` prints back. The controller side
 * (controller/ssh) and the agent side (agent/install) both read it from here.
 */

export const AGENT_UNIT_NAME = 'convoy-agent.service';

/** Paths as a host sees them (agent/install/layout.ts prefixes them for tests). */
export const AGENT_HOST_PATHS = {
  bundle: '/usr/lib/convoy-agent/convoy-agent.js',
  stateDir: '/var/lib/convoy-agent',
  logFile: '/var/log/convoy-agent/agent.log',
  pidFile: '/var/lib/convoy-agent/supervisor.pid',
  unitFile: `/etc/systemd/system/${AGENT_UNIT_NAME}`,
  systemdRunDir: '/run/systemd/system',
} as const;

/** The one JSON line `convoy-agent install|uninstall --request-stdin` prints. */
export interface InstallReport {
  /** The host id this agent is enrolled as, or null when it is not (probe only). */
  readonly hostId: string | null;
  /** Enrolled, but with another controller or key (probe only; install refuses that). */
  readonly otherController: boolean;
  readonly agentVersion: string;
  readonly mode: 'systemd' | 'supervisor';
  readonly running: boolean;
  /** What this run changed, in order; empty when everything was in place. */
  readonly actions: readonly string[];
  /** What it found and left alone on purpose (a newer bundle, say). */
  readonly notes?: readonly string[];
}
