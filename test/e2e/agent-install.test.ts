/**
 * The remote half of SSH enrollment, run here directly: the agent bundle's `install`, `uninstall`
 * and `supervise` against a real controller, into a directory root (`--root`), with a fake
 * `systemctl` where the systemd path is tested (systemd is not PID 1 on this machine).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { agentUnit } from '../../agent/install/systemd-unit';
import { TestFleet } from '../helpers/fleet';
import { ROOT, tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';
import { childrenOf, isAlive } from '../../scripts/fixtures/pids';

jest.setTimeout(60_000);

const BUNDLE = path.join(ROOT, 'dist/bundle/convoy-agent.js');

interface Report {
  hostId: string | null;
  otherController: boolean;
  agentVersion: string;
  mode: string;
  running: boolean;
  actions: string[];
}

function runBundle(args: string[], stdin: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BUNDLE, ...args], {
    input: stdin,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function installIn(root: string, request: object, extra: string[] = []): Report {
  const r = runBundle(['install', '--request-stdin', '--root', root, ...extra], JSON.stringify(request));
  if (r.code !== 0) throw new Error(`install exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as Report;
}

describe('convoy-agent install / supervise / uninstall', () => {
  const fleet = new TestFleet();
  const root = tempDir('install-root');
  const supervisorPid = (): number =>
    Number(readFileSync(path.join(root, 'var/lib/convoy-agent/supervisor.pid'), 'utf8'));

  beforeAll(async () => {
    expect(existsSync(BUNDLE)).toBe(true);
    await fleet.startController();
  });

  afterAll(async () => {
    const pidFile = path.join(root, 'var/lib/convoy-agent/supervisor.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      for (const c of childrenOf(pid)) process.kill(c, 'SIGKILL');
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await fleet.controller?.stop();
  });

  it('refuses to start on a Node older than 20, saying which it found', () => {
    const preload = path.join(tempDir('old-node'), 'old-node.js');
    // The bundle's first statement reads process.versions.node: make it say 18.
    writeFileSync(preload, "Object.defineProperty(process.versions, 'node', { value: '18.19.0' });\n");
    const r = spawnSync(process.execPath, ['-r', preload, BUNDLE, '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^convoy-agent: NODE_TOO_OLD: Node\.js 20 or later is required; this is 18\.19\.0 /,
    );
  });

  it('installs, enrolls and starts the agent under its supervisor, then a second run changes nothing', async () => {
    const token = fleet.createToken('--labels', 'site=lab');
    const report = installIn(root, {
      action: 'install',
      controller: fleet.address,
      controllerKey: fleet.key,
      token,
      hostname: 'installed-1',
    });
    expect(report.mode).toBe('supervisor');
    expect(report.hostId).toMatch(/^h-[0-9a-f]{16}$/);
    expect(report.actions.join('\n')).toMatch(
      /installed the agent bundle.*enrolled as.*started the agent under its supervisor/s,
    );

    const bundle = path.join(root, 'usr/lib/convoy-agent/convoy-agent.js');
    expect(readFileSync(bundle).equals(readFileSync(BUNDLE))).toBe(true);
    expect(statSync(bundle).mode & 0o777).toBe(0o755);
    expect(statSync(path.join(root, 'var/lib/convoy-agent/agent.key')).mode & 0o777).toBe(0o600);
    const config = JSON.parse(
      readFileSync(path.join(root, 'var/lib/convoy-agent/agent.yaml'), 'utf8'),
    ) as Record<string, unknown>;
    expect(config).toMatchObject({
      controller: fleet.address,
      hostId: report.hostId,
      hostname: 'installed-1',
    });
    // The token is spent and is nowhere on the host.
    expect(JSON.stringify(config)).not.toContain(token);

    const hosts = await fleet.waitOnline(1, 20_000);
    expect(hosts[0]).toMatchObject({ id: report.hostId, hostname: 'installed-1', labels: { site: 'lab' } });

    const pid = supervisorPid();
    const inode = statSync(bundle).ino;
    const again = installIn(root, { action: 'install', controller: fleet.address, controllerKey: fleet.key });
    expect(again.actions).toEqual([]);
    expect(again.hostId).toBe(report.hostId);
    expect(supervisorPid()).toBe(pid);
    expect(statSync(bundle).ino).toBe(inode);

    const probe = installIn(root, { action: 'probe' });
    expect(probe).toMatchObject({
      hostId: report.hostId,
      running: true,
      otherController: false,
      actions: [],
    });
  });

  it('restarts an agent that dies, and reports the host online again', async () => {
    const pid = supervisorPid();
    const [agentPid] = childrenOf(pid);
    expect(agentPid).toBeDefined();
    process.kill(agentPid ?? -1, 'SIGKILL');
    const next = await waitFor(
      'a new agent under the supervisor',
      () => {
        const c = childrenOf(pid);
        return c.length === 1 && c[0] !== agentPid ? c[0] : undefined;
      },
      15_000,
    );
    expect(next).not.toBe(agentPid);
    await fleet.waitOnline(1, 20_000);
  });

  it('refuses to enroll with another controller over an existing enrollment', () => {
    const other = 'ed25519:' + Buffer.alloc(32, 7).toString('base64');
    const r = runBundle(
      ['install', '--request-stdin', '--root', root],
      JSON.stringify({
        action: 'install',
        controller: '127.0.0.1:9',
        controllerKey: other,
        token: 'tok_0.x',
      }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ALREADY_ENROLLED: .*agent\.yaml: enrolled with the controller at 127\.0\.0\.1/);
  });

  it.each([
    ['not JSON', 'hello', /install request: not JSON/],
    ['an unknown field', '{"action":"install","x":1}', /unknown field "x"/],
    ['a bad action', '{"action":"explode"}', /action must be probe, install or uninstall/],
    ['install without a controller', '{"action":"install"}', /controller is required/],
    ['a relative node', `{"action":"probe","node":"node"}`, /node must be an absolute path/],
  ])('refuses a request that is %s, writing nothing', (_what, body, reason) => {
    const empty = tempDir('install-bad');
    const r = runBundle(['install', '--request-stdin', '--root', empty], body);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(reason);
    expect(spawnSync('find', [empty, '-mindepth', '1'], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('uninstalls: stops the supervisor and its agent, removes every file it put down', async () => {
    const pid = supervisorPid();
    const children = childrenOf(pid);
    const r = runBundle(['uninstall', '--request-stdin', '--root', root], '{"action":"uninstall"}');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim()) as Report;
    expect(report.actions.join('\n')).toMatch(/stopped the supervisor/);
    expect(isAlive(pid)).toBe(false);
    for (const c of children) expect(isAlive(c)).toBe(false);
    for (const dir of ['usr/lib/convoy-agent', 'var/lib/convoy-agent', 'var/log/convoy-agent']) {
      expect(existsSync(path.join(root, dir))).toBe(false);
    }
  });

  it('under systemd writes the unit, enables and starts it, and on a second run only checks', () => {
    const sysRoot = tempDir('install-systemd');
    mkdirSync(path.join(sysRoot, 'run/systemd/system'), { recursive: true });
    const calls = path.join(sysRoot, 'systemctl.log');
    const active = path.join(sysRoot, 'active');
    const systemctl = path.join(sysRoot, 'systemctl');
    // Records its argv; `is-active` answers from a flag file that `start` creates.
    writeFileSync(
      systemctl,
      `#!/bin/sh\necho "$*" >> '${calls}'\ncase "$1" in\n  is-active) [ -e '${active}' ];;\n  start|restart) : > '${active}';;\nesac\n`,
      { mode: 0o755 },
    );
    const token = fleet.createToken();
    const request = { action: 'install', controller: fleet.address, controllerKey: fleet.key, token };
    const report = installIn(sysRoot, request, ['--systemctl', systemctl]);
    expect(report.mode).toBe('systemd');
    expect(readFileSync(path.join(sysRoot, 'etc/systemd/system/convoy-agent.service'), 'utf8')).toBe(
      agentUnit(process.execPath),
    );
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
      'daemon-reload',
      'enable convoy-agent.service',
      'is-active --quiet convoy-agent.service',
      'start convoy-agent.service',
    ]);
    writeFileSync(calls, '');
    const again = installIn(sysRoot, { ...request, token: undefined }, ['--systemctl', systemctl]);
    expect(again.actions).toEqual([]);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
      'is-active --quiet convoy-agent.service',
    ]);
  });
});
