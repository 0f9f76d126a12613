/**
 * A controller and three agents as separate processes over loopback: enrollment, status, ping,
 * liveness after kill -9 and SIGSTOP, and hostile names carried verbatim.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestFleet } from '../helpers/fleet';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const PWN = `/tmp/convoy-pwn-${process.pid}`;
const HOSTILE_HOSTNAME = `db'; DROP TABLE hosts;-- $(touch ${PWN}) \`touch ${PWN}\``;
const HOSTILE_LABELS = { site: `"; DELETE FROM tokens; --`, cmd: `$(touch ${PWN})|rm -rf /;` };

describe('fleet of three agents', () => {
  const fleet = new TestFleet();
  const ids: string[] = [];

  beforeAll(async () => {
    await fleet.startController();
    const labels = `role=core,site=${HOSTILE_LABELS.site},cmd=${HOSTILE_LABELS.cmd}`;
    const token = fleet.createToken('--ttl', '10m', '--uses', '3', '--labels', labels);
    ids.push(fleet.enrollOk('a', token, '--hostname', HOSTILE_HOSTNAME));
    ids.push(fleet.enrollOk('b', token));
    ids.push(fleet.enrollOk('c', token));
    for (const name of ['a', 'b', 'c']) fleet.startAgent(name);
    await fleet.waitOnline(3);
  });

  afterAll(async () => {
    await fleet.stop();
  });

  it('status shows all three hosts online with their agent version and labels', () => {
    const hosts = fleet.status();
    expect(hosts.map((h) => h.id).sort()).toEqual([...ids].sort());
    for (const h of hosts) {
      expect(h.online).toBe(true);
      expect(h.agentVersion).toBe('0.1.0');
      expect(h.state).toBe('active');
      expect(typeof h.lastSeen).toBe('string');
    }
    const human = fleet.cli('status');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('3/3 online');
  });

  it('stores and shows hostile host names and labels verbatim, and never runs them', async () => {
    const a = fleet.status().find((h) => h.id === ids[0]);
    expect(a?.hostname).toBe(HOSTILE_HOSTNAME);
    expect(a?.labels).toEqual({ role: 'core', ...HOSTILE_LABELS });
    const shown = fleet.cli('hosts', 'show', ids[0] ?? '');
    expect(shown.stdout).toContain(HOSTILE_HOSTNAME);
    const rows = await queryStore<{ hostname: string }>(
      fleet.stateDir,
      'SELECT hostname FROM hosts WHERE id = ?',
      [ids[0]],
    );
    expect(rows[0]?.hostname).toBe(HOSTILE_HOSTNAME);
    const integrity = await queryStore<{ integrity_check: string }>(fleet.stateDir, 'PRAGMA integrity_check');
    expect(integrity[0]?.integrity_check).toBe('ok');
    expect((await queryStore(fleet.stateDir, 'SELECT id FROM tokens')).length).toBe(1);
    expect(existsSync(PWN)).toBe(false);
  });

  it('ping reaches every agent and records each signed round trip in the store', async () => {
    const before = await queryStore<{ n: number }>(
      fleet.stateDir,
      "SELECT COUNT(*) AS n FROM commands WHERE outcome = 'ok'",
    );
    const r = fleet.cliJson<{
      results: { hostId: string; outcome: string; rttMs: number; seq: number }[];
      ok: number;
    }>('ping');
    expect(r.ok).toBe(3);
    expect(r.results.map((x) => x.hostId).sort()).toEqual([...ids].sort());
    for (const x of r.results) {
      expect(x.outcome).toBe('ok');
      expect(x.rttMs).toBeGreaterThan(0);
      expect(x.seq).toBeGreaterThan(0);
    }
    const after = await queryStore<{ n: number }>(
      fleet.stateDir,
      "SELECT COUNT(*) AS n FROM commands WHERE outcome = 'ok'",
    );
    expect((after[0]?.n ?? 0) - (before[0]?.n ?? 0)).toBe(3);
    const seqs = await queryStore<{ host_id: string; last_seq: number }>(
      fleet.stateDir,
      'SELECT id AS host_id, last_seq FROM hosts',
    );
    for (const x of r.results) expect(seqs.find((s) => s.host_id === x.hostId)?.last_seq).toBe(x.seq);
  });

  it('answers a live status query from the agent itself over the signed channel', () => {
    const shown = fleet.cliJson<{
      id: string;
      lastSeq: number;
      agent: { hostId: string; pid: number; lastSeq: number; agentVersion: string };
    }>('hosts', 'show', ids[1] ?? '', '--live');
    expect(shown.agent.hostId).toBe(ids[1]);
    expect(shown.agent.pid).toBe(fleet.agents.get('b')?.pid);
    expect(shown.agent.agentVersion).toBe('0.1.0');
    // The status command itself took a sequence number, and the agent journaled it before answering.
    const after = fleet.cliJson<{ lastSeq: number }>('hosts', 'show', ids[1] ?? '');
    expect(shown.agent.lastSeq).toBe(after.lastSeq);
  });

  it('ping --select reaches only the matching hosts', () => {
    const r = fleet.cliJson<{ results: { hostId: string }[] }>(
      'ping',
      '--select',
      `cmd=${HOSTILE_LABELS.cmd}`,
    );
    expect(r.results).toHaveLength(3);
    const none = fleet.cli('ping', '--select', 'role=edge');
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('0/0 answered');
  });

  it('shows a kill -9ed agent offline within the heartbeat bound, and back with the same id on restart', async () => {
    const victim = fleet.agents.get('b');
    await victim?.kill9();
    const killedAt = Date.now();
    await fleet.waitHost(ids[1] ?? '', false, 3000);
    expect(Date.now() - killedAt).toBeLessThan(1500 + 1000);
    const ping = fleet.cli('ping', '--timeout', '2s', '--json');
    expect(ping.code).toBe(1); // not every host answered
    const results = (JSON.parse(ping.stdout) as { results: { hostId: string; outcome: string }[] }).results;
    expect(results.find((x) => x.hostId === ids[1])?.outcome).toBe('offline');
    expect(results.filter((x) => x.outcome === 'ok')).toHaveLength(2);
    fleet.startAgent('b');
    const back = await fleet.waitHost(ids[1] ?? '', true);
    expect(back.id).toBe(ids[1]);
    expect(fleet.status()).toHaveLength(3);
  });

  it('detects a frozen agent (half-open stream) by missed heartbeats, and takes it back when it thaws', async () => {
    const frozen = fleet.agents.get('c');
    process.kill(frozen?.pid ?? -1, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await fleet.waitHost(ids[2] ?? '', false, 5000);
      // 1.5 s heartbeat timeout, swept at most every 300 ms; the TCP connection stays open.
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1000);
      expect(Date.now() - stoppedAt).toBeLessThan(1500 + 1500);
    } finally {
      process.kill(frozen?.pid ?? -1, 'SIGCONT');
    }
    const thawedAt = frozen?.stderr.length ?? 0;
    await fleet.waitHost(ids[2] ?? '', true);
    // The agent was the one stopped: its overdue timer must not blame the controller for the acks
    // still waiting in its socket (it reconnects because the controller closed the stream).
    expect(frozen?.stderr.slice(thawedAt)).not.toContain('controller silent');
  });

  it('keeps every agent through a stall of its own longer than the heartbeat timeout', async () => {
    const controller = fleet.controller;
    if (controller === undefined) throw new Error('no controller');
    const since = controller.stderr.length;
    process.kill(controller.pid, 'SIGSTOP');
    try {
      await sleep(3000); // twice the 1.5 s heartbeat timeout
    } finally {
      process.kill(controller.pid, 'SIGCONT');
    }
    await waitFor('the controller to notice its stall', () =>
      controller.stderr.slice(since).includes('controller was stalled; not counted against agents'),
    );
    await fleet.waitOnline(3);
    const log = controller.stderr.slice(since);
    // Before the fix every session was dropped the moment the stopped process ran again: the sweep
    // timer fired before the queued heartbeats were read.
    expect(log).not.toContain('heartbeats missed');
    expect(log).toMatch(/"stalledMs":(2\d{3}|3\d{3})/);
  });

  it('keeps its state files private', () => {
    expect(statSync(path.join(fleet.stateDir, 'controller.key')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(fleet.stateDir, 'convoy.sock')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(fleet.agentDir('a'), 'agent.key')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(fleet.agentDir('a'), 'agent.yaml')).mode & 0o777).toBe(0o600);
  });

  it('refuses a second controller on the same state directory', async () => {
    const second = fleet.cli('controller', 'start', '--listen', '127.0.0.1:0');
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/STATE_DIR_INVALID: .*another controller \(pid \d+\) is running/);
    await waitFor('controller still serving', () => fleet.status().length === 3);
  });
});
