/** Reads a controller's SQLite store from a test, read-only, while the controller keeps writing. */
import path from 'node:path';
import sqlite3 from 'sqlite3';

export function queryStore<T>(stateDir: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path.join(stateDir, 'convoy.db'), sqlite3.OPEN_READONLY, (openErr) => {
      if (openErr) return reject(openErr);
      db.all(sql, params, (err, rows) => {
        db.close();
        if (err) reject(err);
        else resolve(rows as T[]);
      });
    });
  });
}
