/**
 * Where an installed agent lives on a host. One layout for SSH enrollment, the .deb and
 * self-update, so that each finds what the others put down. `root` prefixes every path (as
 * `dpkg --root` does) for tests that install into a directory; on a host it is `/`.
 */
import path from 'node:path';
import { AGENT_HOST_PATHS, AGENT_UNIT_NAME } from '../../shared/agent-install';

export interface AgentLayout {
  readonly root: string;
  /** The single-file agent bundle (`npm run build:agent`). */
  readonly bundle: string;
  /** Key, agent.yaml, journals, staging, backups. */
  readonly stateDir: string;
  /** Where the fallback supervisor appends the agent's log (systemd has the journal). */
  readonly logFile: string;
  /** The fallback supervisor's pid, written by the supervisor itself. */
  readonly pidFile: string;
  /** The systemd unit, when systemd runs. */
  readonly unitFile: string;
  /** Present only when systemd is PID 1 (sd_booted(3) checks the same directory). */
  readonly systemdRunDir: string;
}

export const UNIT_NAME = AGENT_UNIT_NAME;

/** Paths as a host sees them, i.e. without the root prefix (what goes into the unit). */
export const HOST_PATHS = AGENT_HOST_PATHS;

export function agentLayout(root = '/'): AgentLayout {
  const under = (p: string): string => path.join(root, p);
  return {
    root,
    bundle: under(HOST_PATHS.bundle),
    stateDir: under(HOST_PATHS.stateDir),
    logFile: under(HOST_PATHS.logFile),
    pidFile: under(HOST_PATHS.pidFile),
    unitFile: under(HOST_PATHS.unitFile),
    systemdRunDir: under(HOST_PATHS.systemdRunDir),
  };
}
