/**
 * `convoy hosts enroll --ssh` and `decommission --ssh`, over one pinned SSH session each:
 *
 *   upload the agent bundle to a fresh 0700 directory in /tmp (SFTP)
 *   run it: `install --request-stdin` with {action: probe}     what is there already?
 *   create a one-time token, unless the host is enrolled here  (1 use, 10 minutes)
 *   run it: `install --request-stdin` with {action: install}   the token rides on stdin
 *   remove the upload; wait until the agent is online
 *
 * Every command line is fixed text plus paths this module chose, each single-quoted: host names,
 * labels and the token are data in the JSON on stdin or in the controller's API, never shell.
 */
import { createHash, randomBytes } from 'node:crypto';
import { AGENT_HOST_PATHS, type InstallReport } from '../../shared/agent-install';
import { ConvoyError } from '../../shared/errors';
import type { Labels } from '../../shared/labels';
import type { WireControllerInfo, WireCreatedToken, WireHostView } from '../../proto/wire';
import { SshSession, type SshOptions } from './session';
import { showTarget } from './target';

export interface ControllerApi {
  info(): Promise<WireControllerInfo>;
  getHost(id: string): Promise<WireHostView | undefined>;
  createToken(labels: Labels, ttlMs: number): Promise<WireCreatedToken>;
  decommission(id: string): Promise<WireHostView>;
}

export interface RemoteAgentOptions {
  readonly ssh: SshOptions;
  readonly bundle: Buffer;
  /** Node.js on the host: a name looked up in the remote PATH, or an absolute path. */
  readonly node: string;
  readonly say: (line: string) => void;
}

export interface EnrollOptions extends RemoteAgentOptions {
  /** Address agents dial, as the host sees the controller. */
  readonly agentAddress?: string;
  readonly labels: Labels;
  readonly hostname?: string;
  readonly releaseKeys: readonly string[];
  readonly waitMs: number;
  readonly dryRun: boolean;
  /** A token the operator made (`convoy token create`), used instead of a fresh one-use token. */
  readonly token?: string;
}

export interface EnrollResult {
  readonly hostId: string;
  readonly target: string;
  readonly changed: boolean;
  readonly actions: readonly string[];
  readonly notes?: readonly string[];
  readonly online: boolean;
  /** Enrolled with an approval token (or a controller that wants approval): not online until approved. */
  readonly pending?: boolean;
  readonly dryRun: boolean;
}

const TOKEN_TTL_MS = 10 * 60_000;
/** Where the agent installs itself; the .deb (scripts/package-deb.ts) puts it there too. */
const INSTALLED_BUNDLE = AGENT_HOST_PATHS.bundle;

/** POSIX single quotes: the one quoting with no special characters inside. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function remoteCommand(opts: RemoteAgentOptions, script: string, sub: 'install' | 'uninstall'): string {
  const words = [opts.node, script, sub, '--request-stdin'];
  // Not root: the install writes /usr/lib, /var/lib and the unit, so it asks sudo, never a password.
  const sudo = opts.ssh.target.user === 'root' ? [] : ['sudo', '-n', '--'];
  return [...sudo, ...words].map(shellQuote).join(' ');
}

function agentAddressOf(info: WireControllerInfo, given: string | undefined): string {
  if (given !== undefined) return given;
  if (/^(0\.0\.0\.0|\[::\]|::):/.test(info.agentListen) || info.agentListen === '') {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `the controller listens for agents on ${info.agentListen || 'no address'}; say which address hosts dial with --agent-address HOST:PORT`,
      { field: 'agent-address' },
    );
  }
  return info.agentListen;
}

async function runRemote(
  session: SshSession,
  opts: RemoteAgentOptions,
  script: string,
  sub: 'install' | 'uninstall',
  request: object,
): Promise<InstallReport> {
  const res = await session.exec(remoteCommand(opts, script, sub), JSON.stringify(request));
  const last = res.stdout.trim().split('\n').pop() ?? '';
  if (res.code !== 0) {
    const reason = res.stderr.trim().split('\n').slice(-3).join(' / ') || `exit ${String(res.code)}`;
    const m = /convoy-agent: ([A-Z_]+): (.*)$/.exec(reason);
    if (m?.[1] === 'NODE_TOO_OLD') throw new ConvoyError('NODE_TOO_OLD', `${session.where}: ${m[2] ?? ''}`);
    throw new ConvoyError('REMOTE_COMMAND_FAILED', `${session.where}: convoy-agent ${sub} failed: ${reason}`);
  }
  try {
    return JSON.parse(last) as InstallReport;
  } catch {
    throw new ConvoyError('REMOTE_COMMAND_FAILED', `${session.where}: convoy-agent ${sub} printed no report`);
  }
}

/** Opens the session, uploads the bundle, runs `fn`, and always removes the upload and closes. */
async function withUploadedBundle<T>(
  opts: RemoteAgentOptions,
  fn: (session: SshSession, script: string) => Promise<T>,
): Promise<T> {
  opts.say(`connecting to ${showTarget(opts.ssh.target)} (host key pinned)`);
  const session = await SshSession.open(opts.ssh);
  const dir = `/tmp/convoy-agent-upload-${randomBytes(8).toString('hex')}`;
  const name = 'convoy-agent.js';
  let uploaded = false;
  try {
    // The same bytes installed already (a re-run): run those, and spare the upload.
    const sum = await session.exec(`sha256sum -- ${shellQuote(INSTALLED_BUNDLE)}`);
    if (sum.code === 0 && sum.stdout.split(' ')[0] === bundleSha256(opts.bundle)) {
      opts.say(`the same agent bundle is installed at ${INSTALLED_BUNDLE}`);
      return await fn(session, INSTALLED_BUNDLE);
    }
    opts.say(`uploading the agent bundle (${(opts.bundle.length / 1048576).toFixed(1)} MB) to ${dir}`);
    uploaded = true;
    const script = await session.upload(dir, name, opts.bundle);
    return await fn(session, script);
  } finally {
    if (uploaded) await session.removeUpload(dir, name);
    session.close();
  }
}

function bundleSha256(bundle: Buffer): string {
  return createHash('sha256').update(bundle).digest('hex');
}

export async function enrollOverSsh(api: ControllerApi, opts: EnrollOptions): Promise<EnrollResult> {
  const info = await api.info();
  const controller = agentAddressOf(info, opts.agentAddress);
  const where = showTarget(opts.ssh.target);
  const base = {
    controller,
    controllerKey: info.publicKey,
    // Only when given: enrolling again without --release-key keeps the keys the host pins.
    ...(opts.releaseKeys.length === 0 ? {} : { releaseKeys: [...opts.releaseKeys] }),
    ...(opts.hostname === undefined ? {} : { hostname: opts.hostname }),
  };
  if (opts.dryRun) return dryRunEnroll(opts, where, controller, info.publicKey);

  return withUploadedBundle(opts, async (session, script) => {
    const probe = await runRemote(session, opts, script, 'install', { ...base, action: 'probe' });
    if (probe.otherController) {
      throw new ConvoyError(
        'ALREADY_ENROLLED',
        `${where} is enrolled with another controller (as ${probe.hostId ?? '?'}); decommission it there first`,
      );
    }
    let token: string | undefined;
    if (probe.hostId !== null) {
      const known = await api.getHost(probe.hostId);
      if (known === undefined || known.state === 'revoked') {
        throw new ConvoyError(
          'HOST_REVOKED',
          `${where} still holds the enrollment of ${probe.hostId}, which this controller ${known === undefined ? 'does not know' : 'has revoked'}; remove it first: convoy hosts decommission ${probe.hostId} --ssh ${where}`,
          { hostId: probe.hostId },
        );
      }
      opts.say(`already enrolled as ${probe.hostId}`);
    } else if (opts.token !== undefined) {
      opts.say('using the enrollment token from --token-file');
      token = opts.token;
    } else {
      const created = await api.createToken(opts.labels, TOKEN_TTL_MS);
      opts.say(`created one-time enrollment token ${created.tokenId} (1 use, 10 minutes)`);
      token = created.token;
    }
    const report = await runRemote(session, opts, script, 'install', {
      ...base,
      action: 'install',
      ...(token === undefined ? {} : { token }),
    });
    for (const a of [...report.actions, ...(report.notes ?? [])]) opts.say(a);
    const hostId = report.hostId ?? '';
    const seen = await waitOnline(api, hostId, opts.waitMs);
    const online = seen === 'online';
    if (seen === 'pending') {
      opts.say(`${hostId} waits for approval: convoy hosts approve ${hostId}`);
    } else if (!online) {
      throw new ConvoyError(
        'AGENT_START_FAILED',
        `${where}: agent ${hostId} was installed but did not come online within ${Math.round(opts.waitMs / 1000)} s; see /var/log/convoy-agent/agent.log (or journalctl -u convoy-agent) on the host`,
        { hostId },
      );
    }
    return {
      hostId,
      target: where,
      changed: report.actions.length > 0,
      actions: report.actions,
      notes: report.notes ?? [],
      online,
      pending: seen === 'pending',
      dryRun: false,
    };
  });
}

function dryRunEnroll(opts: EnrollOptions, where: string, controller: string, key: string): EnrollResult {
  const pin =
    opts.ssh.pin.kind === 'fingerprint'
      ? `host key ${opts.ssh.pin.fingerprint}`
      : `the host key ${opts.ssh.pin.file} lists`;
  const labels =
    Object.entries(opts.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || 'none';
  const actions = [
    `connect to ${where} over SSH, accepting only ${pin}, authenticating with ${opts.ssh.identityFile ?? 'SSH_AUTH_SOCK'}`,
    `upload the agent bundle (sha256 ${bundleSha256(opts.bundle).slice(0, 16)}…, ${(opts.bundle.length / 1048576).toFixed(1)} MB) to a new 0700 directory in /tmp over SFTP`,
    `run ${opts.node} <bundle> install --request-stdin to see what is installed`,
    opts.token !== undefined
      ? 'unless already enrolled here: use the token from --token-file, sent on stdin only'
      : `unless already enrolled here: create a one-time enrollment token (1 use, 10 minutes, labels ${labels}), sent on stdin only`,
    `run ${opts.node} <bundle> install --request-stdin: install /usr/lib/convoy-agent/convoy-agent.js, enroll with ${controller} pinning ${key}, start it under systemd if systemd runs, else under convoy-agent supervise`,
    'remove the uploaded bundle',
    `wait up to ${Math.round(opts.waitMs / 1000)} s for the agent to come online`,
  ];
  for (const a of actions) opts.say(`would ${a}`);
  return { hostId: '', target: where, changed: false, actions, online: false, dryRun: true };
}

/** Until the agent is online, or pending approval (it cannot come online before), or the bound. */
async function waitOnline(
  api: ControllerApi,
  hostId: string,
  waitMs: number,
): Promise<'online' | 'pending' | 'timeout'> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const h = await api.getHost(hostId);
    if (h?.online === true) return 'online';
    if (h?.state === 'pending') return 'pending';
    if (Date.now() >= deadline) return 'timeout';
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface DecommissionResult {
  readonly hostId: string;
  readonly target: string | null;
  readonly actions: readonly string[];
}

/**
 * Removes the agent from the host (when `opts` gives SSH) and then revokes the host on the
 * controller. The host must be the one enrolled as `hostId`: a probe checks before anything goes.
 */
export async function decommissionOverSsh(
  api: ControllerApi,
  hostId: string,
  opts: RemoteAgentOptions | undefined,
): Promise<DecommissionResult> {
  const host = await api.getHost(hostId);
  if (host === undefined)
    throw new ConvoyError('HOST_UNKNOWN', `no host with id ${JSON.stringify(hostId)}`, { hostId });
  const actions: string[] = [];
  let target: string | null = null;
  if (opts !== undefined) {
    target = showTarget(opts.ssh.target);
    await withUploadedBundle(opts, async (session, script) => {
      const probe = await runRemote(session, opts, script, 'install', { action: 'probe' });
      if (probe.hostId !== null && probe.hostId !== hostId) {
        throw new ConvoyError(
          'INVALID_ARGUMENT',
          `${session.where} is enrolled as ${probe.hostId}, not ${hostId}; nothing was removed`,
          { hostId },
        );
      }
      const removed = await runRemote(session, opts, script, 'uninstall', { action: 'uninstall' });
      for (const a of removed.actions) {
        opts.say(a);
        actions.push(a);
      }
    });
  }
  await api.decommission(hostId);
  actions.push(`revoked ${hostId}'s key and removed its application state on the controller`);
  opts?.say(actions[actions.length - 1] ?? '');
  return { hostId, target, actions };
}
