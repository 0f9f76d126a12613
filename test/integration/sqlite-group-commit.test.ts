/**
 * Group commit in the store's one writer (controller/store/sqlite.ts): writes queued while a
 * transaction is open share the next commit, each in its own savepoint. Checked on a real SQLite
 * file, reopened to read what is durable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Sqlite } from '../../controller/store/sqlite';

let dir = '';
let file = '';

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'convoy-group-'));
  file = path.join(dir, 'g.db');
  const db = await Sqlite.open(file);
  await db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
  await db.close();
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function durableRows(): Promise<Record<string, number>> {
  const db = await Sqlite.open(file);
  const rows = await db.all<{ k: string; v: number }>('SELECT k, v FROM t ORDER BY k');
  await db.close();
  return Object.fromEntries(rows.map((r) => [r.k, r.v]));
}

describe('group commit', () => {
  it('rolls back only the failing write of a group; the others are durable when they resolve', async () => {
    const db = await Sqlite.open(file);
    const first = db.write((tx) => tx.run("INSERT INTO t VALUES ('first', 1)"));
    // Queued while `first` holds the transaction: these three form the next group.
    const good = db.write((tx) => tx.run("INSERT INTO t VALUES ('good', 2)"));
    const bad = db.write(async (tx) => {
      await tx.run("INSERT INTO t VALUES ('half', 3)");
      throw new Error('refused after a statement');
    });
    const dup = db.write((tx) => tx.run("INSERT INTO t VALUES ('first', 4)"));
    const after = db.write((tx) => tx.run("INSERT INTO t VALUES ('after', 5)"));
    const settled = await Promise.allSettled([first, good, bad, dup, after]);
    expect(settled.map((s) => s.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toContain('refused after a statement');
    expect(String((settled[3] as PromiseRejectedResult).reason)).toContain('UNIQUE');
    await db.close();
    expect(await durableRows()).toEqual({ after: 5, first: 1, good: 2 });
  });

  it('keeps the order of writes: each sees what the writes queued before it wrote', async () => {
    const db = await Sqlite.open(file);
    await db.write((tx) => tx.run("INSERT INTO t VALUES ('n', 0)"));
    const seen = await Promise.all(
      Array.from({ length: 100 }, () =>
        db.write(async (tx) => {
          const row = await tx.get<{ v: number }>("SELECT v FROM t WHERE k = 'n'");
          await tx.run("UPDATE t SET v = v + 1 WHERE k = 'n'");
          return row?.v ?? -1;
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await db.close();
    expect(await durableRows()).toEqual({ n: 100 });
  });

  it('settles a lone failing write with its own error and leaves nothing of it', async () => {
    const db = await Sqlite.open(file);
    await expect(
      db.write(async (tx) => {
        await tx.run("INSERT INTO t VALUES ('lone', 1)");
        throw new Error('lone failure');
      }),
    ).rejects.toThrow('lone failure');
    await db.write((tx) => tx.run("INSERT INTO t VALUES ('next', 2)"));
    await db.close();
    expect(await durableRows()).toEqual({ next: 2 });
  });
});
