/** The SQLite store on real files: settings, migrations, serialized writes, token spending. */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ConvoyError } from '../../shared/errors';
import { generateKeyPair } from '../../shared/ed25519';
import { keyIdOf } from '../../shared/keys';
import { verifyEventChain } from '../../controller/store/events';
import { MIGRATIONS } from '../../controller/store/migrations';
import { Sqlite } from '../../controller/store/sqlite';
import { Store, type HostFactsRecord, type HostRecord } from '../../controller/store/store';
import { tempDir } from '../helpers/processes';

const FACTS: HostFactsRecord = {
  hostname: 'h',
  agentVersion: '0.1.0',
  osPlatform: 'linux',
  osRelease: '6',
  arch: 'x64',
  osPrettyName: 'Debian',
  cpus: 2,
  memoryBytes: 1,
};

async function withStore(fn: (store: Store, file: string) => Promise<void>): Promise<void> {
  const dir = tempDir('store');
  const file = path.join(dir, 'convoy.db');
  const store = await Store.open(file);
  try {
    await fn(store, file);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function token(
  store: Store,
  id: string,
  uses: number,
  secret = 's3cret',
  expiresAtMs = Date.now() + 60_000,
): Promise<void> {
  await store.createToken(
    {
      id,
      secretSha256: createHash('sha256').update(secret).digest(),
      nowMs: Date.now(),
      expiresAtMs,
      uses,
      labels: { role: 'core' },
      requireApproval: false,
    },
    'test',
  );
}

function enroll(
  store: Store,
  tokenId: string,
  hostId: string,
  secret = 's3cret',
  requireApproval = false,
): Promise<HostRecord> {
  const { publicKey } = generateKeyPair();
  return store.enrollHost({
    requireApproval,
    tokenId,
    secret,
    hostId,
    publicKey,
    keyId: keyIdOf(publicKey),
    facts: FACTS,
    nowMs: Date.now(),
  });
}

describe('store', () => {
  it('opens in WAL mode with full sync, foreign keys and every migration applied', async () => {
    await withStore(async (store) => {
      expect(await store.db.get('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
      expect(await store.db.get('PRAGMA synchronous')).toEqual({ synchronous: 2 });
      expect(await store.db.get('PRAGMA foreign_keys')).toEqual({ foreign_keys: 1 });
      expect(await store.db.get('PRAGMA user_version')).toEqual({ user_version: MIGRATIONS.length });
    });
  });

  it('reopens an existing store without re-running migrations', async () => {
    const dir = tempDir('reopen');
    const file = path.join(dir, 'convoy.db');
    const first = await Store.open(file);
    await token(first, 'tok_a', 1);
    await first.close();
    const second = await Store.open(file);
    expect(await second.db.get('SELECT COUNT(*) AS n FROM tokens')).toEqual({ n: 1 });
    await second.close();
  });

  it('refuses a store written by a newer schema', async () => {
    const dir = tempDir('newer');
    const file = path.join(dir, 'convoy.db');
    const raw = await Sqlite.open(file);
    await raw.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
    await raw.close();
    await expect(Store.open(file)).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
  });

  it('refuses a file that is not a database', async () => {
    const dir = tempDir('garbage');
    const file = path.join(dir, 'convoy.db');
    writeFileSync(file, Buffer.alloc(8192, 0x41));
    await expect(Store.open(file)).rejects.toThrow();
  });

  it('serializes concurrent writers: 50 tokens created at once all land', async () => {
    await withStore(async (store) => {
      await Promise.all(Array.from({ length: 50 }, (_, i) => token(store, `tok_${i}`, 1)));
      expect(await store.db.get('SELECT COUNT(*) AS n FROM tokens')).toEqual({ n: 50 });
      expect(await verifyEventChain(store.db)).toBeNull();
    });
  });

  it('lets exactly `uses` of 10 concurrent enrollments through', async () => {
    await withStore(async (store) => {
      await token(store, 'tok_three', 3);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => enroll(store, 'tok_three', `h-${i}`)),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      for (const r of refused) expect((r.reason as ConvoyError).code).toBe('TOKEN_USED_UP');
      expect(await store.db.get("SELECT uses_left FROM tokens WHERE id = 'tok_three'")).toEqual({
        uses_left: 0,
      });
      expect((await store.listHosts()).map((h) => h.labels)).toEqual([
        { role: 'core' },
        { role: 'core' },
        { role: 'core' },
      ]);
    });
  });

  it('refuses a wrong secret and an expired token without spending a use', async () => {
    await withStore(async (store) => {
      await token(store, 'tok_x', 1);
      await expect(enroll(store, 'tok_x', 'h-1', 'wrong')).rejects.toMatchObject({ code: 'TOKEN_UNKNOWN' });
      await token(store, 'tok_old', 1, 's3cret', Date.now() - 1);
      await expect(enroll(store, 'tok_old', 'h-2')).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
      expect(await store.db.get("SELECT uses_left FROM tokens WHERE id = 'tok_x'")).toEqual({ uses_left: 1 });
      expect(await store.listHosts()).toEqual([]);
    });
  });

  it('allocates strictly increasing sequence numbers under concurrent dispatches, durably', async () => {
    const file = path.join(tempDir('seq'), 'convoy.db');
    const store = await Store.open(file);
    await token(store, 'tok_s', 2);
    await enroll(store, 'tok_s', 'h-a');
    await enroll(store, 'tok_s', 'h-b');
    const sign = (hostId: string, seq: number) => ({
      payload: Buffer.from(`${hostId}:${seq}`),
      signature: Buffer.alloc(64),
    });
    const batches = await Promise.all(
      Array.from({ length: 20 }, () => store.issueCommands(['h-a', 'h-b'], 'ping', sign, Date.now())),
    );
    const seqsA = batches
      .flat()
      .filter((c) => c.hostId === 'h-a')
      .map((c) => c.seq)
      .sort((x, y) => x - y);
    expect(seqsA).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await store.close();
    const reopened = await Store.open(file);
    expect((await reopened.getHost('h-a'))?.lastSeq).toBe(20);
    expect(await reopened.db.get("SELECT COUNT(*) AS n FROM commands WHERE host_id = 'h-b'")).toEqual({
      n: 20,
    });
    await reopened.close();
  });

  it('records each outcome of a fan-out on its own command, and refuses an unknown host whole', async () => {
    await withStore(async (store) => {
      await token(store, 'tok_f', 2);
      await enroll(store, 'tok_f', 'h-a');
      await enroll(store, 'tok_f', 'h-b');
      const sign = (hostId: string, seq: number) => ({
        payload: Buffer.from(`${hostId}:${seq}`),
        signature: Buffer.alloc(64),
      });
      const issued = await store.issueCommands(['h-b', 'h-a'], 'ping', sign, 1000);
      expect(issued.map((c) => [c.hostId, c.seq])).toEqual([
        ['h-b', 1],
        ['h-a', 1],
      ]);
      await store.finishCommands(
        [
          { hostId: 'h-a', seq: 1, outcome: 'ok', result: { pong: true } },
          { hostId: 'h-b', seq: 1, outcome: 'timeout', result: { code: 'COMMAND_TIMEOUT' } },
        ],
        2000,
      );
      expect(
        await store.db.all(
          'SELECT host_id, seq, outcome, result_json, finished_at, payload FROM commands ORDER BY host_id',
        ),
      ).toEqual([
        {
          host_id: 'h-a',
          seq: 1,
          outcome: 'ok',
          result_json: '{"pong":true}',
          finished_at: 2000,
          payload: Buffer.from('h-a:1'),
        },
        {
          host_id: 'h-b',
          seq: 1,
          outcome: 'timeout',
          result_json: '{"code":"COMMAND_TIMEOUT"}',
          finished_at: 2000,
          payload: Buffer.from('h-b:1'),
        },
      ]);
      await expect(store.issueCommands(['h-a', 'h-ghost'], 'ping', sign, 3000)).rejects.toMatchObject({
        code: 'HOST_UNKNOWN',
      });
      expect((await store.getHost('h-a'))?.lastSeq).toBe(1);
    });
  });

  it('rolls back a failed write transaction whole', async () => {
    await withStore(async (store) => {
      await expect(
        store.db.write(async (tx) => {
          await tx.run(
            "INSERT INTO tokens (id, secret_sha256, created_at, expires_at, uses_total, uses_left) VALUES ('t', x'00', 0, 1, 1, 1)",
          );
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await store.db.get('SELECT COUNT(*) AS n FROM tokens')).toEqual({ n: 0 });
      await token(store, 'tok_after', 1); // the mutex was released
    });
  });

  it('detects an edited audit event', async () => {
    await withStore(async (store) => {
      await token(store, 'tok_1', 1);
      await token(store, 'tok_2', 1);
      expect(await verifyEventChain(store.db)).toBeNull();
      await store.db.run("UPDATE events SET actor = 'mallory' WHERE id = 1");
      expect(await verifyEventChain(store.db)).toBe(1);
    });
  });

  it('starts a host pending when the controller requires approval, whatever its token says', async () => {
    await withStore(async (store) => {
      await token(store, 'tok_p', 2);
      expect((await enroll(store, 'tok_p', 'h-free')).state).toBe('active');
      expect((await enroll(store, 'tok_p', 'h-held', 's3cret', true)).state).toBe('pending');
    });
  });

  it('marks revocation final: a revoked host cannot be approved', async () => {
    await withStore(async (store) => {
      await token(store, 'tok_r', 1);
      await enroll(store, 'tok_r', 'h-r');
      await store.setHostState('h-r', 'revoked', 'operator', Date.now());
      await expect(store.setHostState('h-r', 'active', 'operator', Date.now())).rejects.toMatchObject({
        code: 'HOST_REVOKED',
      });
      await expect(store.setHostState('h-none', 'active', 'operator', Date.now())).rejects.toMatchObject({
        code: 'HOST_UNKNOWN',
      });
    });
  });
});
