/**
 * Enrollment through the real CLIs: one-time tokens, expiry, approval, revocation, key pinning,
 * and nothing written by a refused enrollment.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';

async function countCommands(stateDir: string, hostId: string): Promise<number> {
  const rows = await queryStore<{ n: number }>(
    stateDir,
    'SELECT COUNT(*) AS n FROM commands WHERE host_id = ?',
    [hostId],
  );
  return rows[0]?.n ?? 0;
}

jest.setTimeout(60_000);

describe('enrollment', () => {
  const fleet = new TestFleet();

  beforeAll(async () => {
    await fleet.startController();
  });

  afterAll(async () => {
    await fleet.stop();
  });

  it('spends a one-use token once and refuses its reuse, writing nothing for the refused agent', () => {
    const token = fleet.createToken('--ttl', '5m');
    fleet.enrollOk('once', token);
    const again = fleet.enroll('twice', token);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TOKEN_USED_UP');
    expect(existsSync(fleet.agentDir('twice'))).toBe(false);
  });

  it('refuses an expired token', async () => {
    const token = fleet.createToken('--ttl', '300ms');
    await new Promise((r) => setTimeout(r, 500));
    const r = fleet.enroll('late', token);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TOKEN_EXPIRED');
    expect(existsSync(fleet.agentDir('late'))).toBe(false);
  });

  it('refuses unknown and malformed tokens alike', () => {
    const real = fleet.createToken();
    const [id] = real.split('.');
    for (const bogus of [`${id}.not-the-secret`, 'tok_0000000000000000.abc', 'garbage']) {
      const r = fleet.enroll('bogus', bogus);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('TOKEN_UNKNOWN');
    }
    // The real token was not spent by the wrong guesses.
    fleet.enrollOk('after-guesses', real);
  });

  it('refuses to enroll when the controller key differs from the pinned one', () => {
    const token = fleet.createToken();
    const otherKey = 'ed25519:' + Buffer.alloc(32, 7).toString('base64');
    const r = fleet.enroll('mitm', token.trim(), '--controller-key', otherKey);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CONTROLLER_KEY_MISMATCH');
    expect(existsSync(path.join(fleet.agentDir('mitm'), 'agent.key'))).toBe(false);
  });

  it('keeps hosts enrolled with --require-approval pending, sends them no commands, and lets them in once approved', async () => {
    const token = fleet.createToken('--require-approval', '--labels', 'tier=pending-test');
    const r = fleet.enroll('pending', token);
    expect(r.code).toBe(0);
    const { hostId, status } = JSON.parse(r.stdout) as { hostId: string; status: string };
    expect(status).toBe('pending');
    const agent = fleet.startAgent('pending');
    await agent.waitForOutput(/HOST_PENDING/);
    const ping = fleet.cli('ping', '--select', 'tier=pending-test', '--json');
    const result = (
      JSON.parse(ping.stdout) as { results: { hostId: string; outcome: string; message: string }[] }
    ).results;
    expect(result).toEqual([
      expect.objectContaining({ hostId, outcome: 'offline', message: expect.stringContaining('pending') }),
    ]);
    expect(await countCommands(fleet.stateDir, hostId)).toBe(0);

    const approved = fleet.cli('hosts', 'approve', hostId);
    expect(approved.code).toBe(0);
    await fleet.waitHost(hostId, true, 15_000);
    const after = fleet.cliJson<{ ok: number }>('ping', '--select', 'tier=pending-test');
    expect(after.ok).toBe(1);
    expect(await countCommands(fleet.stateDir, hostId)).toBe(1);
  });

  it('closes a revoked host at once and refuses it from then on', async () => {
    const token = fleet.createToken('--labels', 'tier=revoke-test');
    const hostId = fleet.enrollOk('revoked', token);
    const agent = fleet.startAgent('revoked');
    await fleet.waitHost(hostId, true);
    expect(fleet.cli('hosts', 'revoke', hostId).code).toBe(0);
    await waitFor('revoked host gone from status', () => !fleet.status().some((h) => h.id === hostId));
    await agent.waitForOutput(/HOST_REVOKED/);
    const listed = fleet.cliJson<{ hosts: { id: string; state: string; online: boolean }[] }>(
      'hosts',
      'list',
    );
    expect(listed.hosts.find((h) => h.id === hostId)).toMatchObject({ state: 'revoked', online: false });
    const approve = fleet.cli('hosts', 'approve', hostId);
    expect(approve.code).toBe(1);
    expect(approve.stderr).toContain('HOST_REVOKED');
  });

  it('refuses to enroll into a state directory that is already enrolled', () => {
    const token = fleet.createToken();
    const r = fleet.enroll('once', token);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ALREADY_ENROLLED');
    expect(readdirSync(fleet.agentDir('once')).sort()).toEqual(['agent.key', 'agent.yaml']);
  });
});

describe('enrollment rate limit', () => {
  const fleet = new TestFleet({ extraArgs: ['--enroll-rate', '3'] });

  beforeAll(async () => {
    await fleet.startController();
  });

  afterAll(async () => {
    await fleet.stop();
  });

  it('slows token guessing: past the per-address limit even a valid token waits', () => {
    const codes = ['a', 'b', 'c'].map((n) => fleet.enroll(`guess-${n}`, 'tok_0000000000000000.guess').stderr);
    for (const stderr of codes) expect(stderr).toContain('TOKEN_UNKNOWN');
    const real = fleet.createToken();
    const limited = fleet.enroll('real', real);
    expect(limited.code).toBe(1);
    expect(limited.stderr).toContain('ENROLL_RATE_LIMITED');
    expect(existsSync(fleet.agentDir('real'))).toBe(false);
  });
});
