/**
 * The agent's systemd unit. SSH enrollment writes it and packaging/systemd/convoy-agent.service
 * ships it (a test keeps the two equal), so both installs behave the same.
 *
 * Hardening stops where upgrades start: the agent runs package managers and vendor scripts that
 * write /usr, /etc, /opt and /var, restart services, chown, setcap and install setuid files, so
 * ProtectSystem, NoNewPrivileges, RestrictSUIDSGID, CapabilityBoundingSet, PrivateTmp and
 * SystemCallFilter would each break a real upgrade. What no upgrade needs is taken away.
 */
import { HOST_PATHS } from './layout';

/** Exit code with which the agent asks to be started again (after replacing its own bundle). */
export const RESTART_EXIT_CODE = 75;

export function agentUnit(nodePath = '/usr/bin/node'): string {
  return `# Convoy agent: runs the upgrade steps its controller signs. Installed by
# \`convoy hosts enroll --ssh\` or the convoy-agent .deb; see docs/packaging.md.
[Unit]
Description=Convoy agent
After=network-online.target
Wants=network-online.target
# Installed but not enrolled yet: nothing to run until agent.yaml exists.
ConditionPathExists=${HOST_PATHS.stateDir}/agent.yaml

[Service]
Type=simple
ExecStart=${nodePath} ${HOST_PATHS.bundle} run --state-dir ${HOST_PATHS.stateDir}
# The agent exits with ${RESTART_EXIT_CODE} to load a new bundle after a self-update: restart it every time.
Restart=always
RestartSec=2s
SuccessExitStatus=${RESTART_EXIT_CODE}
# Stopping or restarting the agent must not kill a dpkg or a vendor script it started: the
# journal resumes the step on the next start, a killed dpkg would leave packages half-configured.
KillMode=process
TimeoutStopSec=30s
# Upgrades write package files that everyone must read.
UMask=0022
# The agent is what repairs the host: let the kernel pick something else under memory pressure.
OOMScoreAdjust=-500
# Nothing an upgrade does needs these.
ProtectClock=yes
ProtectKernelLogs=yes
ProtectHostname=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
`;
}
