/**
 * A small promise face over node-sqlite3 with the durability settings Convoy relies on.
 *
 * node-sqlite3 runs every statement of one connection on one queue, so two async callers that
 * each issue BEGIN ... COMMIT interleave their statements inside one transaction (node-sqlite3
 * issue 1761). All writes therefore go through `write()`, which holds a mutex around
 * `BEGIN IMMEDIATE ... COMMIT`; reads outside it see the last committed state.
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

export class Sqlite implements Tx {
  private tail: Promise<unknown> = Promise.resolve();

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
   * Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, one writer at a time. Never await network I/O
   * inside `fn`: the write lock would be held across it.
   */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const result = this.tail.then(async () => {
      await this.exec('BEGIN IMMEDIATE');
      try {
        const value = await fn(this);
        await this.exec('COMMIT');
        return value;
      } catch (err) {
        await this.exec('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}
