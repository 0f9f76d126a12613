/**
 * A small promise face over node-sqlite3 with the durability settings Convoy relies on.
 *
 * node-sqlite3 runs every statement of one connection on one queue, so two async callers that
 * each issue BEGIN ... COMMIT interleave their statements inside one transaction (node-sqlite3
 * issue 1761). All writes therefore go through `write()`, one writer at a time, inside
 * `BEGIN IMMEDIATE ... COMMIT`; reads outside it see the last committed state.
 *
 * Group commit: writes that queue up while a transaction is open are run together in the next
 * one, each inside its own SAVEPOINT, and share its one fsync. A write whose function fails is
 * rolled back to its savepoint alone; every caller's promise still settles only after COMMIT, so
 * "resolved" keeps meaning "durable". A hundred hosts' concurrent step results cost a few commits
 * instead of a hundred.
 */
import sqlite3 from 'sqlite3';
import { ConvoyError } from '../../shared/errors';

export type SqlValue = string | number | bigint | Buffer | Uint8Array | null;
export type Row = Record<string, unknown>;

/** The statements available inside a write transaction. */
export interface Tx {
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number; lastID: number }>;
  get<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  all<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
}

interface PendingWrite {
  fn: (tx: Tx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

/** At most this many writes share one transaction, so one commit never waits on an unbounded queue. */
const MAX_GROUP = 256;

export class Sqlite implements Tx {
  private readonly queue: PendingWrite[] = [];
  private draining = false;

  private constructor(
    private readonly db: sqlite3.Database,
    readonly path: string,
  ) {}

  /** Opens (creating if needed) and applies WAL, synchronous=FULL, busy timeout and foreign keys. */
  static async open(path: string, busyTimeoutMs = 5000): Promise<Sqlite> {
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const handle = new sqlite3.Database(path, (err) => (err ? reject(err) : resolve(handle)));
    });
    const store = new Sqlite(db, path);
    db.configure('busyTimeout', busyTimeoutMs);
    const mode = await store.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL');
    if (mode?.journal_mode !== 'wal') {
      await store.close();
      throw new ConvoyError('STORE_CORRUPT', `${path}: could not switch to WAL (got ${mode?.journal_mode})`);
    }
    await store.exec('PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;');
    return store;
  }

  /** PRAGMA quick_check; throws STORE_CORRUPT with SQLite's first complaint. */
  async quickCheck(): Promise<void> {
    const rows = await this.all<{ quick_check: string }>('PRAGMA quick_check');
    const first = rows[0]?.quick_check;
    if (first !== 'ok') throw new ConvoyError('STORE_CORRUPT', `${this.path}: quick_check says ${first}`);
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number; lastID: number }> {
    return new Promise((resolve, reject) => {
      this.db.run(sql, params, function onRun(this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  get<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      this.db.get(sql, params, (err: Error | null, row: T | undefined) => (err ? reject(err) : resolve(row)));
    });
  }

  all<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.db.all(sql, params, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows)));
    });
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, one writer at a time, and settles once the
   * transaction is durable (or rolled back). Never await network I/O inside `fn`: the write lock
   * would be held across it, and so would every write grouped with it.
   */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) await this.commitGroup(this.queue.splice(0, MAX_GROUP));
    } finally {
      this.draining = false;
    }
  }

  private async commitGroup(group: PendingWrite[]): Promise<void> {
    try {
      await this.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    const outcomes: Outcome[] = [];
    if (group.length === 1) {
      outcomes.push(await this.attempt(group[0] as PendingWrite));
    } else {
      for (const w of group) {
        await this.exec('SAVEPOINT convoy_write');
        const outcome = await this.attempt(w);
        if (outcome.ok) {
          await this.exec('RELEASE convoy_write');
        } else {
          try {
            await this.exec('ROLLBACK TO convoy_write; RELEASE convoy_write');
          } catch {
            // SQLite itself rolled the whole transaction back (disk full, I/O error): nothing
            // of this group is stored, so every caller hears the failure.
            for (const other of group) other.reject(outcome.err);
            return;
          }
        }
        outcomes.push(outcome);
      }
    }
    if (group.length === 1 && outcomes[0]?.ok === false) {
      await this.exec('ROLLBACK').catch(() => undefined);
      group[0]?.reject(outcomes[0].err);
      return;
    }
    try {
      await this.exec('COMMIT');
    } catch (err) {
      await this.exec('ROLLBACK').catch(() => undefined);
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => {
      const o = outcomes[i] as Outcome;
      if (o.ok) w.resolve(o.value);
      else w.reject(o.err);
    });
  }

  private async attempt(w: PendingWrite): Promise<Outcome> {
    try {
      return { ok: true, value: await w.fn(this) };
    } catch (err) {
      return { ok: false, err };
    }
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}
