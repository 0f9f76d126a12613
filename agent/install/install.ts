/**
 * The remote half of `convoy hosts enroll --ssh` and `convoy hosts decommission --ssh`: the
 * uploaded agent bundle installs itself, enrolls, and starts under systemd when systemd runs,
 * otherwise under its own supervisor (docs/packaging.md). Every action is checked first and
 * skipped when already done, so a second run changes nothing and says so.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
} from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';
import type { InstallReport } from '../../shared/agent-install';
import { ConvoyError } from '../../shared/errors';
import { formatPublicKey, parsePublicKey } from '../../shared/keys';
import { CONVOY_VERSION } from '../../shared/version';
import { CONFIG_FILE, loadAgentConfig, type AgentConfigFile } from '../config';
import { writeFileAtomic } from '../identity';
import { fsyncDir } from '../seq-journal';
import type { AgentLayout } from './layout';
import { UNIT_NAME } from './layout';
import type { InstallRequest } from './request';
import { runningSupervisor } from './supervise';
import { agentUnit } from './systemd-unit';

const run = promisify(execFile);

export type { InstallReport };

export interface InstallEnv {
  readonly layout: AgentLayout;
  /** The bundle file running this code, which is what gets installed. */
  readonly script: string;
  readonly systemctl?: string;
}

function sha256Of(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}

/** What the bundle at `file` says it is, when it runs and says a valid version. */
function installedVersion(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const r = spawnSync(process.execPath, [file, '--version'], { encoding: 'utf8', timeout: 30_000 });
  const v = r.status === 0 ? semver.valid(r.stdout.trim()) : null;
  return v ?? undefined;
}

function systemdRuns(layout: AgentLayout): boolean {
  return existsSync(layout.systemdRunDir);
}

interface Enrollment {
  readonly hostId: string;
  readonly sameController: boolean;
  readonly config: AgentConfigFile;
}

function currentEnrollment(layout: AgentLayout, req: InstallRequest): Enrollment | undefined {
  const file = path.join(layout.stateDir, CONFIG_FILE);
  if (!existsSync(file)) return undefined;
  const config = loadAgentConfig(file);
  const wanted = parsePublicKey(req.controllerKey);
  const sameController =
    config.controller === req.controller &&
    wanted !== null &&
    Buffer.from(config.controllerKey).equals(Buffer.from(wanted));
  const raw: AgentConfigFile = {
    controller: config.controller,
    controllerKey: formatPublicKey(config.controllerKey),
    hostId: config.hostId,
    ...(config.hostname === undefined ? {} : { hostname: config.hostname }),
    releaseKeys: config.releaseKeys.map(formatPublicKey),
  };
  return { hostId: config.hostId, sameController, config: raw };
}

async function isActive(env: InstallEnv): Promise<boolean> {
  try {
    await run(env.systemctl ?? 'systemctl', ['is-active', '--quiet', UNIT_NAME]);
    return true;
  } catch {
    return false;
  }
}

export async function probeInstall(env: InstallEnv, req: InstallRequest): Promise<InstallReport> {
  const enrolled = currentEnrollment(env.layout, req);
  const systemd = systemdRuns(env.layout);
  return {
    hostId: enrolled?.hostId ?? null,
    otherController: enrolled !== undefined && req.controllerKey !== '' && !enrolled.sameController,
    agentVersion: CONVOY_VERSION,
    mode: systemd ? 'systemd' : 'supervisor',
    running: systemd ? await isActive(env) : runningSupervisor(env.layout.pidFile) !== undefined,
    actions: [],
  };
}

export async function install(env: InstallEnv, req: InstallRequest): Promise<InstallReport> {
  const { layout } = env;
  const actions: string[] = [];
  const notes: string[] = [];
  const bundleChanged = installBundle(env, actions, notes);
  const hostId = await ensureEnrolled(env, req, actions);
  const node = req.node ?? process.execPath;
  if (systemdRuns(layout)) await ensureUnit(env, node, bundleChanged, actions);
  else await ensureSupervisor(env, node, bundleChanged, actions);
  return {
    hostId,
    otherController: false,
    agentVersion: CONVOY_VERSION,
    mode: systemdRuns(layout) ? 'systemd' : 'supervisor',
    running: true,
    actions,
    notes,
  };
}

/** Copies the running bundle into place unless the same bytes are there; true when it changed. */
function installBundle(env: InstallEnv, actions: string[], notes: string[]): boolean {
  const target = env.layout.bundle;
  if (path.resolve(env.script) === path.resolve(target)) return false;
  const want = sha256Of(env.script);
  if (want === undefined)
    throw new ConvoyError('STATE_DIR_INVALID', `cannot read the running bundle ${env.script}`, {
      file: env.script,
    });
  if (sha256Of(target) === want) return false;
  const installed = installedVersion(target);
  if (installed !== undefined && semver.gt(installed, CONVOY_VERSION)) {
    // A self-update got there first: enrolling again must not undo it.
    notes.push(`kept the installed agent bundle ${installed}, newer than this ${CONVOY_VERSION}`);
    return false;
  }
  mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
  const tmp = `${target}.new`;
  copyFileSync(env.script, tmp);
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o755);
  renameSync(tmp, target);
  fsyncDir(path.dirname(target));
  actions.push(`installed the agent bundle ${CONVOY_VERSION} at ${target}`);
  return true;
}

async function ensureEnrolled(env: InstallEnv, req: InstallRequest, actions: string[]): Promise<string> {
  const { layout } = env;
  const current = currentEnrollment(layout, req);
  if (current !== undefined) {
    if (!current.sameController) {
      throw new ConvoyError(
        'ALREADY_ENROLLED',
        `${path.join(layout.stateDir, CONFIG_FILE)}: enrolled with the controller at ${current.config.controller} (${current.config.controllerKey}); decommission it first`,
        { file: path.join(layout.stateDir, CONFIG_FILE) },
      );
    }
    const keys = [...(req.releaseKeys ?? current.config.releaseKeys ?? [])].sort();
    if (JSON.stringify([...(current.config.releaseKeys ?? [])].sort()) !== JSON.stringify(keys)) {
      const text = JSON.stringify({ ...current.config, releaseKeys: keys }, null, 2) + '\n';
      writeFileAtomic(path.join(layout.stateDir, CONFIG_FILE), text);
      actions.push('updated the pinned release keys');
    }
    return current.hostId;
  }
  if (req.token === undefined) {
    throw new ConvoyError('INVALID_ARGUMENT', 'this host is not enrolled and the request carries no token', {
      field: 'token',
    });
  }
  // Loaded only here: enrollment needs proto-loader, which the daemon never loads.
  const { enrollAgent } = await import('../enroll');
  const res = await enrollAgent({
    controller: req.controller,
    controllerKey: req.controllerKey,
    token: req.token,
    stateDir: layout.stateDir,
    releaseKeys: req.releaseKeys ?? [],
    ...(req.hostname === undefined ? {} : { hostname: req.hostname }),
  });
  actions.push(`enrolled as ${res.hostId} (${res.status})`);
  return res.hostId;
}

async function ensureUnit(
  env: InstallEnv,
  node: string,
  bundleChanged: boolean,
  actions: string[],
): Promise<void> {
  const systemctl = env.systemctl ?? 'systemctl';
  const text = agentUnit(node);
  let unitChanged = false;
  let existing: string | undefined;
  try {
    existing = readFileSync(env.layout.unitFile, 'utf8');
  } catch {
    existing = undefined;
  }
  if (existing !== text) {
    mkdirSync(path.dirname(env.layout.unitFile), { recursive: true });
    writeFileAtomic(env.layout.unitFile, text);
    chmodSync(env.layout.unitFile, 0o644);
    await run(systemctl, ['daemon-reload']);
    actions.push(`wrote ${env.layout.unitFile}`);
    unitChanged = true;
  }
  if (unitChanged) {
    await run(systemctl, ['enable', UNIT_NAME]);
    actions.push(`enabled ${UNIT_NAME}`);
  }
  if (!(await isActive(env))) {
    await run(systemctl, ['start', UNIT_NAME]);
    actions.push(`started ${UNIT_NAME}`);
  } else if (unitChanged || bundleChanged) {
    await run(systemctl, ['restart', UNIT_NAME]);
    actions.push(`restarted ${UNIT_NAME} on the new bundle`);
  }
}

async function ensureSupervisor(
  env: InstallEnv,
  node: string,
  bundleChanged: boolean,
  actions: string[],
): Promise<void> {
  const { layout } = env;
  const running = runningSupervisor(layout.pidFile);
  if (running !== undefined && !bundleChanged) return;
  if (running !== undefined) {
    await stopSupervisor(running);
    actions.push(`stopped the supervisor (pid ${running}) to load the new bundle`);
  }
  mkdirSync(path.dirname(layout.logFile), { recursive: true, mode: 0o750 });
  const log = openSync(layout.logFile, 'a', 0o640);
  try {
    // Its own session: the SSH session that started it may end, and its hangup must not reach here.
    const child = spawn(node, [layout.bundle, 'supervise', '--state-dir', layout.stateDir], {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: '/',
    });
    child.unref();
  } finally {
    closeSync(log);
  }
  const deadline = Date.now() + 10_000;
  let pid: number | undefined;
  while ((pid = runningSupervisor(layout.pidFile)) === undefined) {
    if (Date.now() > deadline) {
      throw new ConvoyError('AGENT_START_FAILED', `the supervisor did not start; see ${layout.logFile}`, {
        file: layout.logFile,
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  actions.push(`started the agent under its supervisor (pid ${pid}), logging to ${layout.logFile}`);
}

async function stopSupervisor(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone between the check and the kill.
  }
}

/** Stops the agent and removes everything an install put down. */
export async function uninstall(env: InstallEnv): Promise<InstallReport> {
  const { layout } = env;
  const actions: string[] = [];
  const systemctl = env.systemctl ?? 'systemctl';
  if (existsSync(layout.unitFile)) {
    if (systemdRuns(layout)) {
      await run(systemctl, ['disable', '--now', UNIT_NAME]).catch(() => undefined);
    }
    rmSync(layout.unitFile, { force: true });
    if (systemdRuns(layout)) await run(systemctl, ['daemon-reload']).catch(() => undefined);
    actions.push(`stopped ${UNIT_NAME} and removed ${layout.unitFile}`);
  }
  const pid = runningSupervisor(layout.pidFile);
  if (pid !== undefined) {
    await stopSupervisor(pid);
    actions.push(`stopped the supervisor (pid ${pid}) and its agent`);
  }
  let hostId: string | null = null;
  const config = path.join(layout.stateDir, CONFIG_FILE);
  if (existsSync(config)) {
    try {
      hostId = loadAgentConfig(config).hostId;
    } catch {
      // An unreadable config is removed all the same.
    }
  }
  for (const dir of [layout.stateDir, path.dirname(layout.bundle), path.dirname(layout.logFile)]) {
    if (existsSync(dir)) {
      removeTree(dir);
      actions.push(`removed ${dir}`);
    }
  }
  return {
    hostId,
    otherController: false,
    agentVersion: CONVOY_VERSION,
    mode: systemdRuns(layout) ? 'systemd' : 'supervisor',
    running: false,
    actions,
  };
}

/**
 * rm -rf, except that a directory which is a mount point (an operator's separate volume for
 * /var/lib/convoy-agent, or a test's bind mount) is emptied and left: it cannot be removed.
 */
function removeTree(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(path.join(dir, entry), { recursive: true, force: true });
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
  }
}
