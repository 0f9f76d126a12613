/**
 * `convoy hosts enroll --ssh` against real OpenSSH servers, one per host, each in its own network
 * namespace (fixtures.md §4, §6), and then the agent's own update rolled out like any application.
 *
 * Each host's sshd sees its own /usr/lib/convoy-agent, /var/lib/convoy-agent and
 * /var/log/convoy-agent (bind mounts of this test's directories), so the agents install at their
 * real paths and the test reads what they wrote from outside. The controller runs in the ctl
 * namespace; the CLI that speaks SSH runs there too (nothing in the root namespace dials a
 * namespace address). The tests run in order: each builds on the fleet the previous one left.
 */
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { HttpRepoProcess } from '../../scripts/fixtures/http-repo-process';
import { createNetns, netnsUnavailableReason, uniqueNetnsPrefix } from '../../scripts/fixtures/netns';
import { childrenOf, isAlive } from '../../scripts/fixtures/pids';
import { fleetFile } from '../helpers/app-fleets';
import { isResting } from '../helpers/rollout-probe';
import { AGENT_BIN, CONVOY_BIN, ROOT, run } from '../helpers/processes';
import {
  BUILD_AGENT,
  filesUnder,
  HOSTS,
  sampleProcesses,
  SshFleet,
  sshdAuthLines,
  supervisorPid,
  type EnrollJson,
  type HostView,
} from '../helpers/ssh-fleet';
import { skipReason } from '../helpers/require-tool';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const unavailable = skipReason(
  'ssh enrollment',
  ['ip', '/usr/sbin/sshd', 'ssh-keygen'],
  netnsUnavailableReason,
);
const describeSsh = unavailable === undefined ? describe : describe.skip;

describeSsh('convoy hosts enroll --ssh (OpenSSH in network namespaces)', () => {
  let fleet: SshFleet;
  const ids: string[] = [];
  const pwn = (n: string): string => `/tmp/convoy-pwn-${process.pid}-${n}`;

  beforeAll(async () => {
    fleet = new SshFleet(await createNetns(uniqueNetnsPrefix(), HOSTS));
    try {
      await fleet.start();
    } catch (err) {
      await fleet.stop();
      throw err;
    }
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  it('refuses an unknown or a different host key before authenticating, and changes nothing', async () => {
    const h0 = fleet.host(0);
    const before = sshdAuthLines(h0).length;
    const wrong = await fleet.enroll(0, '--host-key', fleet.host(1).sshd.hostKeyFingerprint);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('HOST_KEY_MISMATCH');
    expect(wrong.stderr).toContain(`presented host key ${h0.sshd.hostKeyFingerprint}`);

    const knownHosts = path.join(fleet.root, 'known_hosts_other');
    writeFileSync(knownHosts, fleet.host(1).sshd.knownHostsLine(fleet.host(1).sshd.host) + '\n');
    const unknown = await fleet.enroll(0, '--known-hosts', knownHosts);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('HOST_KEY_UNKNOWN');
    expect(unknown.stderr).toContain(`--host-key ${h0.sshd.hostKeyFingerprint}`);

    const noPin = await fleet.cli([
      'hosts',
      'enroll',
      '--ssh',
      h0.target,
      '--identity',
      fleet.client.privateKeyFile,
    ]);
    expect(noPin.code).toBe(2);
    expect(noPin.stderr).toMatch(/pin the host key/);

    // No login was attempted, no token made, nothing written on the host.
    expect(sshdAuthLines(h0).length).toBe(before);
    expect(await queryStore(fleet.stateDir, 'SELECT id FROM tokens')).toEqual([]);
    expect(filesUnder(h0.lib).concat(filesUnder(h0.state))).toEqual([]);
  });

  it('says so when the host has no such node, and leaves nothing behind', async () => {
    const h0 = fleet.host(0);
    const r = await fleet.enroll(0, '--node', '/opt/no-such/node');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /REMOTE_COMMAND_FAILED: root@10\.200\.0\.10:2222: convoy-agent install failed: .*\/opt\/no-such\/node: No such file or directory/,
    );
    expect(filesUnder(h0.lib).concat(filesUnder(h0.state))).toEqual([]);
    expect(readdirSync('/tmp').filter((f) => f.startsWith('convoy-agent-upload-'))).toEqual([]);
    // The probe failed before any token was needed.
    expect(await queryStore(fleet.stateDir, 'SELECT id FROM tokens')).toEqual([]);
  });

  it('refuses shell in the target before connecting', async () => {
    for (const target of [`root@$(touch ${pwn('target')})`, 'root@h;touch /tmp/x', '`id`@host']) {
      const r = await fleet.cli([
        'hosts',
        'enroll',
        '--ssh',
        target,
        '--host-key',
        fleet.host(0).sshd.hostKeyFingerprint,
        '--identity',
        fleet.client.privateKeyFile,
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/INVALID_ARGUMENT: --ssh .*is not a (host|user) name/);
    }
    expect(existsSync(pwn('target'))).toBe(false);
  });

  it('enrolls 3 hosts in parallel; the token is never on a command line, in a log, a file or the store', async () => {
    // Release keys need no controller: made here, in the root namespace.
    const keygen = run(CONVOY_BIN, ['release', 'keygen', '--out', path.join(fleet.root, 'release.key')]);
    expect(keygen.code).toBe(0);
    const releaseKey = keygen.stdout.trim();
    writeFileSync(path.join(fleet.root, 'release.pub'), releaseKey);
    const tokenFile = path.join(fleet.root, 'token');
    const created = await fleet.cli(['token', 'create', '--labels', 'role=agent,via=token-file']);
    const canary = created.stdout.trim();
    expect(canary).toMatch(/^tok_/);
    writeFileSync(tokenFile, canary + '\n', { mode: 0o600 });
    const known = path.join(fleet.root, 'known_hosts');
    writeFileSync(known, fleet.host(2).sshd.knownHostsLine(fleet.host(2).sshd.host) + '\n');

    const sampler = sampleProcesses();
    const results = await Promise.all([
      fleet.enroll(0, '--labels', 'role=agent,idx=0', '--release-key', releaseKey, '--json'),
      fleet.enroll(1, '--token-file', tokenFile, '--release-key', releaseKey, '--json'),
      fleet.enroll(
        2,
        '--known-hosts',
        known,
        '--release-key',
        releaseKey,
        '--json',
        '--hostname',
        `h2$(touch ${pwn('hostname')});\`touch ${pwn('tick')}\``,
        '--labels',
        `role=agent,note=$(touch ${pwn('label')})|&;`,
      ),
    ]);
    const processes = sampler.stop();
    for (const r of results)
      if (r.code !== 0) throw new Error(`enroll exited ${String(r.code)}: ${r.stderr}`);
    const out = results.map((r) => JSON.parse(r.stdout) as EnrollJson);
    for (const o of out) {
      expect(o).toMatchObject({ changed: true, online: true });
      expect(o.hostId).toMatch(/^h-[0-9a-f]{16}$/);
      ids.push(o.hostId);
    }
    expect(new Set(ids).size).toBe(HOSTS);

    const views = await fleet.hostViews();
    const byId = new Map(views.map((v) => [v.id, v]));
    expect(byId.get(ids[0] ?? '')?.labels).toEqual({ role: 'agent', idx: '0' });
    expect(byId.get(ids[1] ?? '')?.labels).toEqual({ role: 'agent', via: 'token-file' });
    // Names and labels are data: shown verbatim, never run.
    expect(byId.get(ids[2] ?? '')?.hostname).toBe(`h2$(touch ${pwn('hostname')});\`touch ${pwn('tick')}\``);
    expect(byId.get(ids[2] ?? '')?.labels['note']).toBe(`$(touch ${pwn('label')})|&;`);
    for (const n of ['hostname', 'tick', 'label']) expect(existsSync(pwn(n))).toBe(false);

    for (const [i, h] of fleet.hosts.entries()) {
      const bundle = path.join(h.lib, 'convoy-agent.js');
      expect(readFileSync(bundle).equals(readFileSync(fleet.bundleA))).toBe(true);
      expect(statSync(bundle).mode & 0o777).toBe(0o755);
      expect(statSync(path.join(h.state, 'agent.key')).mode & 0o777).toBe(0o600);
      const config = JSON.parse(readFileSync(path.join(h.state, 'agent.yaml'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(config).toMatchObject({
        hostId: ids[i],
        controller: `${fleet.netns.ctl.address}:7443`,
        releaseKeys: [releaseKey],
      });
      expect(isAlive(supervisorPid(h))).toBe(true);
    }
    // The uploads are gone.
    expect(readdirSync('/tmp').filter((f) => f.startsWith('convoy-agent-upload-'))).toEqual([]);

    // The canary token: nowhere but in the file the operator gave.
    const places: [string, string][] = [
      ['process command lines and environments', processes],
      ['CLI output', results.map((r) => r.stdout + r.stderr).join('\n')],
      ['controller output', fleet.controllerOutput],
      ...fleet.hosts.map((h, i): [string, string] => [
        `host ${i} sshd log`,
        readFileSync(h.sshd.logFile, 'latin1'),
      ]),
      ...fleet.hosts
        .flatMap((h) => [...filesUnder(h.state), ...filesUnder(h.log)])
        .map((f): [string, string] => [f.file, f.bytes.toString('latin1')]),
      ...filesUnder(fleet.stateDir).map((f): [string, string] => [f.file, f.bytes.toString('latin1')]),
    ];
    const secret = canary.split('.')[1] ?? canary;
    for (const [where, text] of places) {
      expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false });
    }
    // The store holds its hash only, and it is spent.
    const tokens = await queryStore<{ id: string; uses_left: number }>(
      fleet.stateDir,
      'SELECT id, uses_left FROM tokens',
    );
    expect(tokens.find((t) => canary.startsWith(`${t.id}.`))?.uses_left).toBe(0);
  });

  it('changes nothing when run again: same id, no token, same files and processes', async () => {
    const h0 = fleet.host(0);
    const tokensBefore = await queryStore(fleet.stateDir, 'SELECT id FROM tokens');
    const pid = supervisorPid(h0);
    const bundle = statSync(path.join(h0.lib, 'convoy-agent.js'));
    const config = readFileSync(path.join(h0.state, 'agent.yaml'));
    const r = await fleet.enroll(
      0,
      '--labels',
      'role=agent,idx=0',
      '--release-key',
      readFileSync(path.join(fleet.root, 'release.pub'), 'utf8'),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${h0.target} is already enrolled as ${ids[0]} (online); nothing changed\n`);
    // The same bytes are installed: nothing is uploaded, the installed bundle answers.
    expect(r.stderr).toContain('the same agent bundle is installed at /usr/lib/convoy-agent/convoy-agent.js');
    expect(r.stderr).not.toContain('uploading');
    expect(await queryStore(fleet.stateDir, 'SELECT id FROM tokens')).toEqual(tokensBefore);
    expect(supervisorPid(h0)).toBe(pid);
    expect(statSync(path.join(h0.lib, 'convoy-agent.js'))).toMatchObject({
      ino: bundle.ino,
      mtimeMs: bundle.mtimeMs,
    });
    expect(readFileSync(path.join(h0.state, 'agent.yaml')).equals(config)).toBe(true);
    expect((await fleet.hostViews()).length).toBe(HOSTS);

    // --dry-run logs in nowhere.
    const accepted = sshdAuthLines(h0).filter((l) => l.includes('Accepted')).length;
    const dry = await fleet.enroll(0, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stderr).toMatch(/would connect to .* accepting only host key SHA256:/);
    expect(dry.stderr).toMatch(/would upload the agent bundle/);
    expect(sshdAuthLines(h0).filter((l) => l.includes('Accepted')).length).toBe(accepted);
  });

  it('updates the agent from A to B like any application; each agent restarts onto B and reports it', async () => {
    const releases = path.join(fleet.root, 'releases');
    const b = run(BUILD_AGENT, [
      '--out',
      path.join(releases, '0.1.1/convoy-agent.js'),
      '--version',
      '0.1.1',
      '--sign-key',
      path.join(fleet.root, 'release.key'),
    ]);
    expect(b.code).toBe(0);
    // One release server per host, on that host's own loopback.
    const repos = await Promise.all(
      fleet.hosts.map(async (h) => {
        const repo = new HttpRepoProcess({
          root: releases,
          spawn: (cmd, args, opts) => fleet.netns.spawnIn(h.ns, cmd, args, opts),
        });
        await repo.start();
        return repo;
      }),
    );
    try {
      const agentsBefore = fleet.hosts.map((h) => childrenOf(supervisorPid(h)));
      const supervisors = fleet.hosts.map(supervisorPid);
      const yaml = fleetFile({
        name: 'agents',
        recipe: path.join(ROOT, 'recipes/convoy-agent.yaml'),
        target: '0.1.1',
        hosts: ids.map((id, i) => ({
          id,
          vars: { releaseUrl: repos[i]?.url ?? '', node: process.execPath },
        })),
      });
      const file = path.join(fleet.root, 'agents.fleet.yaml');
      writeFileSync(file, yaml);
      expect((await fleet.cli(['apply', file])).code).toBe(0);
      const started = await fleet.cliJson<RolloutView>('rollout', 'start', 'agents', '--stage-now');
      const done = await waitFor(
        'the agent rollout to finish',
        async () => {
          const doc = await fleet.cliJson<RolloutView>('rollout', 'status', started.id);
          if (doc.state !== 'succeeded' && isResting(doc))
            throw new Error(`rollout ${doc.state}: ${doc.reason}\n${fleet.dump()}`);
          return doc.state === 'succeeded' ? doc : undefined;
        },
        120_000,
        300,
      );
      expect(done.state).toBe('succeeded');
      const views = await fleet.hostViews();
      for (const [i, h] of fleet.hosts.entries()) {
        expect(views.find((v) => v.id === ids[i])).toMatchObject({ online: true, agentVersion: '0.1.1' });
        expect(
          readFileSync(path.join(h.lib, 'convoy-agent.js')).equals(
            readFileSync(path.join(releases, '0.1.1/convoy-agent.js')),
          ),
        ).toBe(true);
        expect(
          readFileSync(path.join(h.lib, 'convoy-agent.js.previous')).equals(readFileSync(fleet.bundleA)),
        ).toBe(true);
        // The same supervisor, a new agent process.
        expect(supervisorPid(h)).toBe(supervisors[i]);
        const now = childrenOf(supervisorPid(h));
        expect(now.length).toBe(1);
        expect(agentsBefore[i]).not.toContain(now[0]);
      }
      // Each restart step finished in the new process: it says so, and on every host.
      const restarts = await queryStore<{ host_id: string; ok: number | null; output_tail: string }>(
        fleet.stateDir,
        `SELECT p.host_id, s.ok, s.output_tail FROM step_results s JOIN phase_runs p ON s.phase_run_id = p.id
          WHERE s.step_id = 'restart-agent' AND p.run_id LIKE ?`,
        [`${started.id}-%`],
      );
      const finished = restarts.filter((r) => r.ok === 1);
      expect({ finished: finished.map((r) => r.host_id).sort(), rows: restarts }).toMatchObject({
        finished: [...ids].sort(),
      });
      for (const r of finished) expect(r.output_tail).toContain('the agent runs 0.1.1');

      // Enrolling again with the older bundle must not undo the update.
      const h1 = fleet.host(1);
      const rerun = await fleet.enroll(1, '--json');
      expect(rerun.code).toBe(0);
      expect(JSON.parse(rerun.stdout)).toMatchObject({
        changed: false,
        notes: ['kept the installed agent bundle 0.1.1, newer than this 0.1.0'],
      });
      expect(
        readFileSync(path.join(h1.lib, 'convoy-agent.js')).equals(
          readFileSync(path.join(releases, '0.1.1/convoy-agent.js')),
        ),
      ).toBe(true);
    } finally {
      await Promise.all(repos.map((r) => r.stop()));
    }
  });

  it('decommissions a host, then a re-enrolled agent gets a new id and none of the old state', async () => {
    const h0 = fleet.host(0);
    const old = ids[0] ?? '';
    const saved = path.join(fleet.root, 'h0-old-state');
    cpSync(h0.state, saved, { recursive: true });
    const pid = supervisorPid(h0);
    const agentPids = childrenOf(pid);
    const before = await fleet.cliJson<{ hosts: HostView[] }>('status');
    expect(before.hosts.find((v) => v.id === old)?.app).toMatchObject({
      deployment: 'agents',
      installed: '0.1.1',
    });

    const wrongHost = await fleet.cli([
      'hosts',
      'decommission',
      old,
      '--ssh',
      fleet.host(1).target,
      '--host-key',
      fleet.host(1).sshd.hostKeyFingerprint,
      '--identity',
      fleet.client.privateKeyFile,
      '--bundle',
      fleet.bundleA,
    ]);
    expect(wrongHost.code).toBe(2);
    expect(wrongHost.stderr).toContain(`is enrolled as ${ids[1] ?? ''}, not ${old}; nothing was removed`);
    expect(existsSync(path.join(fleet.host(1).state, 'agent.yaml'))).toBe(true);

    const r = await fleet.cli([
      'hosts',
      'decommission',
      old,
      '--ssh',
      h0.target,
      '--host-key',
      h0.sshd.hostKeyFingerprint,
      '--identity',
      fleet.client.privateKeyFile,
      '--bundle',
      fleet.bundleA,
    ]);
    if (r.code !== 0) throw new Error(`decommission exited ${String(r.code)}: ${r.stderr}`);
    expect(r.stdout).toBe(`decommissioned ${old} (${h0.target})\n`);
    await waitFor(
      'the old agent and supervisor to exit',
      () => !isAlive(pid) && agentPids.every((p) => !isAlive(p)),
      45_000,
    );
    expect(filesUnder(h0.lib).concat(filesUnder(h0.state), filesUnder(h0.log))).toEqual([]);
    const oldView = (await fleet.hostViews()).find((v) => v.id === old);
    expect(oldView?.state).toBe('revoked');
    expect(await queryStore(fleet.stateDir, 'SELECT host_id FROM host_app WHERE host_id = ?', [old])).toEqual(
      [],
    );

    // The old key is refused.
    const ghost = fleet.netns.spawnIn(h0.ns, process.execPath, [AGENT_BIN, 'run', '--state-dir', saved]);
    let ghostLog = '';
    ghost.stderr?.on('data', (d: Buffer) => (ghostLog += d.toString()));
    await waitFor('the old agent refused', () => /HOST_REVOKED/.test(ghostLog), 20_000);
    ghost.kill('SIGKILL');

    // Enrolled again, this time with a token that wants approval: pending, said so, then approved.
    const approvalToken = path.join(fleet.root, 'approval-token');
    const made = await fleet.cli(['token', 'create', '--require-approval', '--labels', 'role=agent']);
    writeFileSync(approvalToken, made.stdout.trim() + '\n', { mode: 0o600 });
    const again = await fleet.enroll(0, '--token-file', approvalToken);
    if (again.code !== 0) throw new Error(`enroll exited ${String(again.code)}: ${again.stderr}`);
    const m =
      /^enrolled \S+ as (h-[0-9a-f]{16}) \(pending approval: convoy hosts approve (h-[0-9a-f]{16})\)\n$/.exec(
        again.stdout,
      );
    expect(m?.[1]).toBe(m?.[2]);
    const fresh = m?.[1] ?? '';
    expect(fresh).not.toBe(old);
    expect((await fleet.hostViews()).find((v) => v.id === fresh)).toMatchObject({
      state: 'pending',
      online: false,
    });
    expect((await fleet.cli(['hosts', 'approve', fresh])).code).toBe(0);
    await waitFor(
      'the approved agent online',
      async () => (await fleet.hostViews()).find((v) => v.id === fresh)?.online === true,
      30_000,
    );
    const view = (await fleet.hostViews()).find((v) => v.id === fresh);
    expect(view).toMatchObject({ online: true, state: 'active', agentVersion: '0.1.0' });
    const status = await fleet.cliJson<{ hosts: HostView[] }>('status');
    const shown = status.hosts.find((v) => v.id === fresh);
    expect(shown?.app).toBeNull();
    expect(status.hosts.some((v) => v.id === old)).toBe(false);
  });
});
