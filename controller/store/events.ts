/**
 * The append-only audit log: who did what and when. Each row's hash covers the previous row's
 * hash, so an edited or deleted row breaks the chain (`verifyEventChain`).
 */
import { createHash } from 'node:crypto';
import type { Tx } from './sqlite';

export interface NewEvent {
  readonly at: number;
  /** `operator`, `agent:<host id>`, `controller`. */
  readonly actor: string;
  readonly kind: string;
  readonly hostId?: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

const GENESIS = '0'.repeat(64);

/** Appends inside the caller's transaction so the event commits with the change it describes. */
export async function appendEvent(tx: Tx, event: NewEvent): Promise<void> {
  const last = await tx.get<{ hash: string }>('SELECT hash FROM events ORDER BY id DESC LIMIT 1');
  const prevHash = last?.hash ?? GENESIS;
  const dataJson = JSON.stringify(event.data ?? {});
  const hash = eventHash(prevHash, event.at, event.actor, event.kind, event.hostId ?? null, dataJson);
  await tx.run(
    'INSERT INTO events (at, actor, kind, host_id, data_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [event.at, event.actor, event.kind, event.hostId ?? null, dataJson, prevHash, hash],
  );
}

export function eventHash(
  prevHash: string,
  at: number,
  actor: string,
  kind: string,
  hostId: string | null,
  dataJson: string,
): string {
  return createHash('sha256')
    .update(JSON.stringify([prevHash, at, actor, kind, hostId, dataJson]))
    .digest('hex');
}

/** A row of `events` as stored. */
interface EventRow {
  id: number;
  at: number;
  actor: string;
  kind: string;
  host_id: string | null;
  data_json: string;
  prev_hash: string;
  hash: string;
}

/** The id of the first row whose hash or link is wrong, or null when the chain is intact. */
export async function verifyEventChain(tx: Tx): Promise<number | null> {
  const rows = await tx.all<EventRow>('SELECT * FROM events ORDER BY id');
  let prev = GENESIS;
  for (const r of rows) {
    if (r.prev_hash !== prev || eventHash(prev, r.at, r.actor, r.kind, r.host_id, r.data_json) !== r.hash)
      return r.id;
    prev = r.hash;
  }
  return null;
}

/** An audit event as `convoy events` shows it. */
export interface EventView {
  readonly id: number;
  readonly at: number;
  readonly actor: string;
  readonly kind: string;
  readonly hostId: string | null;
  readonly data: unknown;
  readonly hash: string;
}

/** The last `limit` events (of a rollout, of a host), oldest first. */
export async function listEventViews(
  db: Tx,
  filter: { rolloutId?: string; hostId?: string; limit: number },
): Promise<EventView[]> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (filter.rolloutId !== undefined) {
    where.push('rollout_id = ?');
    params.push(filter.rolloutId);
  }
  if (filter.hostId !== undefined) {
    where.push('host_id = ?');
    params.push(filter.hostId);
  }
  const rows = await db.all<Omit<EventRow, 'prev_hash'>>(
    `SELECT * FROM (SELECT id, at, actor, kind, host_id, data_json, hash FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id DESC LIMIT ?) ORDER BY id`,
    [...params, filter.limit],
  );
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    actor: r.actor,
    kind: r.kind,
    hostId: r.host_id,
    data: JSON.parse(r.data_json) as unknown,
    hash: r.hash,
  }));
}
