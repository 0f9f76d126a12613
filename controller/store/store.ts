/**
 * The controller's durable state behind one module, so that a server database can replace
 * SQLite when a fleet outgrows one controller. Parameterized SQL only; every write goes through
 * Sqlite.write (BEGIN IMMEDIATE under a mutex).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ConvoyError } from '../../shared/errors';
import type { Labels } from '../../shared/labels';
import { appendEvent } from './events';
import { migrate } from './migrations';
import { Sqlite, type Tx } from './sqlite';
import { rowToHost, type HostFactsRecord, type HostRecord, type HostRow, type HostState } from './host-row';

export type { HostFactsRecord, HostRecord, HostState } from './host-row';

export interface NewToken {
  readonly id: string;
  readonly secretSha256: Uint8Array;
  readonly nowMs: number;
  readonly expiresAtMs: number;
  readonly uses: number;
  readonly labels: Labels;
  readonly requireApproval: boolean;
}

export interface Enrollment {
  readonly tokenId: string;
  readonly secret: string;
  readonly hostId: string;
  readonly publicKey: Uint8Array;
  readonly keyId: string;
  readonly facts: HostFactsRecord;
  readonly nowMs: number;
  /** The controller runs with --require-approval: every new host starts pending. */
  readonly requireApproval: boolean;
}

/** A command whose sequence number is already durable, ready to send. */
export interface IssuedCommand {
  readonly hostId: string;
  readonly seq: number;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

export type CommandSigner = (hostId: string, seq: number) => { payload: Uint8Array; signature: Uint8Array };

/** Rows per multi-row INSERT: 5 parameters each stays far below SQLite's variable limit. */
const INSERT_CHUNK = 400;

export class Store {
  private constructor(readonly db: Sqlite) {}

  /** Opens the store, checks it, and brings its schema up to date. */
  static async open(path: string): Promise<Store> {
    const db = await Sqlite.open(path);
    try {
      await db.quickCheck();
      await migrate(db);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new Store(db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async createToken(token: NewToken, actor: string): Promise<void> {
    await this.db.write(async (tx) => {
      await tx.run(
        `INSERT INTO tokens (id, secret_sha256, created_at, expires_at, uses_total, uses_left, labels_json,
           require_approval) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          token.id,
          Buffer.from(token.secretSha256),
          token.nowMs,
          token.expiresAtMs,
          token.uses,
          token.uses,
          JSON.stringify(token.labels),
          token.requireApproval ? 1 : 0,
        ],
      );
      await appendEvent(tx, { at: token.nowMs, actor, kind: 'token.created', data: { tokenId: token.id } });
    });
  }

  /** Spends one use of the token and records the new host, in one transaction. */
  async enrollHost(e: Enrollment): Promise<HostRecord> {
    return this.db.write(async (tx) => {
      const token = await tx.get<{
        secret_sha256: Buffer;
        expires_at: number;
        uses_left: number;
        labels_json: string;
        require_approval: number;
      }>(
        'SELECT secret_sha256, expires_at, uses_left, labels_json, require_approval FROM tokens WHERE id = ?',
        [e.tokenId],
      );
      const presented = createHash('sha256').update(e.secret, 'utf8').digest();
      if (token === undefined || !timingSafeEqual(presented, token.secret_sha256)) {
        throw new ConvoyError('TOKEN_UNKNOWN', 'enrollment token is unknown');
      }
      if (token.expires_at <= e.nowMs) throw new ConvoyError('TOKEN_EXPIRED', 'enrollment token has expired');
      if (token.uses_left <= 0) throw new ConvoyError('TOKEN_USED_UP', 'enrollment token has no uses left');
      const known = await tx.get('SELECT id FROM hosts WHERE key_id = ?', [e.keyId]);
      if (known !== undefined)
        throw new ConvoyError('ALREADY_ENROLLED', 'this agent key is already enrolled');
      await tx.run('UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?', [e.tokenId]);
      const state: HostState = token.require_approval || e.requireApproval ? 'pending' : 'active';
      await tx.run(
        `INSERT INTO hosts (id, hostname, public_key, key_id, state, labels_json, facts_json, agent_version,
           enrolled_at, last_seen_at, token_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          e.hostId,
          e.facts.hostname,
          Buffer.from(e.publicKey),
          e.keyId,
          state,
          token.labels_json,
          JSON.stringify(e.facts),
          e.facts.agentVersion,
          e.nowMs,
          e.nowMs,
          e.tokenId,
        ],
      );
      await appendEvent(tx, {
        at: e.nowMs,
        actor: `agent:${e.hostId}`,
        kind: 'host.enrolled',
        hostId: e.hostId,
        data: { state, tokenId: e.tokenId },
      });
      return mustGetHost(tx, e.hostId);
    });
  }

  async getHost(id: string): Promise<HostRecord | undefined> {
    const row = await this.db.get<HostRow>('SELECT * FROM hosts WHERE id = ?', [id]);
    return row === undefined ? undefined : rowToHost(row);
  }

  /** Every host in a stable order (enrollment time, then id). */
  async listHosts(): Promise<HostRecord[]> {
    const rows = await this.db.all<HostRow>('SELECT * FROM hosts ORDER BY enrolled_at, id');
    return rows.map(rowToHost);
  }

  async setHostState(id: string, state: HostState, actor: string, nowMs: number): Promise<HostRecord> {
    return this.db.write(async (tx) => {
      const found = await tx.get<{ state: HostState }>('SELECT state FROM hosts WHERE id = ?', [id]);
      if (found === undefined) throw new ConvoyError('HOST_UNKNOWN', `no host with id ${id}`, { hostId: id });
      if (found.state === 'revoked' && state !== 'revoked') {
        throw new ConvoyError('HOST_REVOKED', `host ${id} is revoked; enroll it again`, { hostId: id });
      }
      if (found.state !== state) {
        await tx.run('UPDATE hosts SET state = ? WHERE id = ?', [state, id]);
        await appendEvent(tx, {
          at: nowMs,
          actor,
          kind: `host.${state}`,
          hostId: id,
          data: { from: found.state },
        });
      }
      return mustGetHost(tx, id);
    });
  }

  /**
   * Revokes a host for good and forgets what the controller knew of its applications, in one
   * transaction: a machine enrolled again gets a new id and starts from nothing (Salt
   * CVE-2016-9639). The host row stays, revoked, for the audit trail and the event chain.
   */
  async decommissionHost(id: string, actor: string, nowMs: number): Promise<HostRecord> {
    return this.db.write(async (tx) => {
      const found = await tx.get<{ state: HostState }>('SELECT state FROM hosts WHERE id = ?', [id]);
      if (found === undefined) throw new ConvoyError('HOST_UNKNOWN', `no host with id ${id}`, { hostId: id });
      if (found.state !== 'revoked') await tx.run("UPDATE hosts SET state = 'revoked' WHERE id = ?", [id]);
      const purged = await tx.run('DELETE FROM host_app WHERE host_id = ?', [id]);
      await appendEvent(tx, {
        at: nowMs,
        actor,
        kind: 'host.decommissioned',
        hostId: id,
        data: { from: found.state, appRowsRemoved: purged.changes },
      });
      return mustGetHost(tx, id);
    });
  }

  /** Records what an agent said about itself when it connected. */
  async recordConnection(id: string, facts: HostFactsRecord, nowMs: number): Promise<void> {
    await this.db.write((tx) =>
      tx.run(
        'UPDATE hosts SET hostname = ?, facts_json = ?, agent_version = ?, last_seen_at = ? WHERE id = ?',
        [facts.hostname, JSON.stringify(facts), facts.agentVersion, nowMs, id],
      ),
    );
  }

  /** Flushes last-seen times collected in memory, in one transaction. */
  async touchLastSeen(seen: ReadonlyMap<string, number>): Promise<void> {
    if (seen.size === 0) return;
    await this.db.write(async (tx) => {
      for (const [id, at] of seen) {
        await tx.run('UPDATE hosts SET last_seen_at = MAX(last_seen_at, ?) WHERE id = ?', [at, id]);
      }
    });
  }

  /**
   * Allocates the next sequence number of every host and records each signed command, all in one
   * transaction, before anything is sent: a restarted controller never reuses a sequence number.
   */
  async issueCommands(
    hostIds: readonly string[],
    type: string,
    sign: CommandSigner,
    nowMs: number,
  ): Promise<IssuedCommand[]> {
    if (hostIds.length === 0) return [];
    // Set-based: one UPDATE for every host and multi-row INSERTs. Statement by statement, a
    // 1,000-host fan-out spent ~250 ms here before the first command could leave.
    return this.db.write(async (tx) => {
      const rows = await tx.all<{ id: string; last_seq: number }>(
        'UPDATE hosts SET last_seq = last_seq + 1 WHERE id IN (SELECT value FROM json_each(?)) RETURNING id, last_seq',
        [JSON.stringify(hostIds)],
      );
      const seqById = new Map(rows.map((r) => [r.id, r.last_seq]));
      const issued = hostIds.map((hostId) => {
        const seq = seqById.get(hostId);
        if (seq === undefined) throw new ConvoyError('HOST_UNKNOWN', `no host with id ${hostId}`, { hostId });
        return { hostId, seq, ...sign(hostId, seq) };
      });
      for (let start = 0; start < issued.length; start += INSERT_CHUNK) {
        const chunk = issued.slice(start, start + INSERT_CHUNK);
        await tx.run(
          `INSERT INTO commands (host_id, seq, type, payload, created_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flatMap((c) => [c.hostId, c.seq, type, Buffer.from(c.payload), nowMs]),
        );
      }
      return issued;
    });
  }

  /** Records how a batch of commands ended, in one statement for a whole fan-out. */
  async finishCommands(
    outcomes: readonly { hostId: string; seq: number; outcome: string; result: unknown }[],
    nowMs: number,
  ): Promise<void> {
    if (outcomes.length === 0) return;
    const rows = outcomes.map((o) => ({
      h: o.hostId,
      s: o.seq,
      o: o.outcome,
      r: JSON.stringify(o.result ?? null),
    }));
    await this.db.write((tx) =>
      tx.run(
        `UPDATE commands SET outcome = j.o, result_json = j.r, finished_at = ?
           FROM (SELECT value ->> '$.h' AS h, value ->> '$.s' AS s, value ->> '$.o' AS o, value ->> '$.r' AS r
                   FROM json_each(?)) AS j
          WHERE commands.host_id = j.h AND commands.seq = j.s`,
        [nowMs, JSON.stringify(rows)],
      ),
    );
  }

  async getCommand(
    hostId: string,
    seq: number,
  ): Promise<{ type: string; outcome: string | null } | undefined> {
    return this.db.get('SELECT type, outcome FROM commands WHERE host_id = ? AND seq = ?', [hostId, seq]);
  }
}

async function mustGetHost(tx: Tx, id: string): Promise<HostRecord> {
  const row = await tx.get<HostRow>('SELECT * FROM hosts WHERE id = ?', [id]);
  if (row === undefined) throw new Error(`host ${id} vanished inside its own transaction`);
  return rowToHost(row);
}
