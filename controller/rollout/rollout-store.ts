/**
 * Rollout rows in SQLite: every change is one transaction that also appends its audit event, so
 * the store never holds a transition without the event that explains it (or the reverse).
 */
import { ConvoyError } from '../../shared/errors';
import { appendEvent } from '../store/events';
import type { Sqlite, SqlValue, Tx } from '../store/sqlite';
import type { HostState, RolloutHostRecord, RolloutRecord, RolloutSpec, RolloutState } from './model';
import { FINISHED_ROLLOUT_STATES } from './model';

interface RolloutRow {
  id: string;
  deployment: string;
  spec_json: string;
  state: string;
  reason: string;
  paused: number;
  pause_until: number | null;
  released_batch: number;
  tolerated_failures: number;
  finalize_resends: number;
  stage_at: number;
  staged_at: number | null;
  window_opened_at: number | null;
  finalize_state: string | null;
  finalize_host: string | null;
  created_by: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

interface HostRow {
  rollout_id: string;
  host_id: string;
  position: number;
  batch: number;
  role: string;
  vars_json: string;
  state: string;
  phase: string | null;
  phase_run_id: string | null;
  installed: string;
  staged: string;
  unknown: number;
  reason: string;
  started_at: number | null;
  finished_at: number | null;
  downtime_ms: number | null;
  resends: number;
}

function toRollout(r: RolloutRow): RolloutRecord {
  return {
    id: r.id,
    deployment: r.deployment,
    spec: JSON.parse(r.spec_json) as RolloutSpec,
    state: r.state as RolloutState,
    reason: r.reason,
    paused: r.paused === 1,
    pauseUntil: r.pause_until,
    releasedBatch: r.released_batch,
    toleratedFailures: r.tolerated_failures,
    finalizeResends: r.finalize_resends,
    stageAt: r.stage_at,
    stagedAt: r.staged_at,
    windowOpenedAt: r.window_opened_at,
    finalizeState: r.finalize_state as RolloutRecord['finalizeState'],
    finalizeHost: r.finalize_host,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

function toHost(r: HostRow): RolloutHostRecord {
  return {
    rolloutId: r.rollout_id,
    hostId: r.host_id,
    position: r.position,
    batch: r.batch,
    role: r.role,
    vars: JSON.parse(r.vars_json) as Record<string, string>,
    state: r.state as HostState,
    phase: r.phase,
    phaseRunId: r.phase_run_id,
    installed: r.installed,
    staged: r.staged,
    unknown: r.unknown === 1,
    reason: r.reason,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    downtimeMs: r.downtime_ms,
    resends: r.resends,
  };
}

export interface NewRollout {
  readonly id: string;
  readonly spec: RolloutSpec;
  readonly stageAt: number;
  readonly createdBy: string;
  readonly nowMs: number;
}

/** Stores a new rollout and its hosts; refuses when the deployment has an unfinished one. */
export async function insertRollout(db: Sqlite, r: NewRollout): Promise<void> {
  await db.write(async (tx) => {
    const open = await unfinishedRollout(tx, r.spec.deployment);
    if (open !== undefined) {
      throw new ConvoyError(
        'ROLLOUT_EXISTS',
        `deployment ${r.spec.deployment} already has rollout ${open.id} (${open.state}); one at a time`,
      );
    }
    await tx.run(
      `INSERT INTO rollouts (id, deployment, spec_json, state, stage_at, created_by, created_at, updated_at)
         VALUES (?, ?, ?, 'scheduled', ?, ?, ?, ?)`,
      [r.id, r.spec.deployment, JSON.stringify(r.spec), r.stageAt, r.createdBy, r.nowMs, r.nowMs],
    );
    for (const [position, h] of r.spec.hosts.entries()) {
      const current = h.batch < 0;
      await tx.run(
        `INSERT INTO rollout_hosts (rollout_id, host_id, position, batch, role, vars_json, state, installed)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          r.id,
          h.hostId,
          position,
          h.batch,
          h.role,
          JSON.stringify(h.vars),
          current ? 'current' : 'pending',
          h.installed,
        ],
      );
    }
    await appendEvent(tx, {
      at: r.nowMs,
      actor: r.createdBy,
      kind: 'rollout.created',
      data: {
        rolloutId: r.id,
        deployment: r.spec.deployment,
        target: r.spec.target,
        hosts: r.spec.hosts.length,
        approved: r.spec.approved,
        stageAt: r.stageAt,
      },
    });
    // The acknowledgement is part of the audit log, with the text the operator acknowledged.
    const cautions = r.spec.cautions ?? [];
    if (cautions.length > 0)
      await appendEvent(tx, {
        at: r.nowMs,
        actor: r.createdBy,
        kind: 'rollout.cautions.acknowledged',
        data: { rolloutId: r.id, deployment: r.spec.deployment, target: r.spec.target, cautions },
      });
  });
}

async function unfinishedRollout(
  tx: Tx,
  deployment: string,
): Promise<{ id: string; state: string } | undefined> {
  return tx.get<{ id: string; state: string }>(
    `SELECT id, state FROM rollouts WHERE deployment = ? AND state NOT IN (${FINISHED_ROLLOUT_STATES.map(() => '?').join(', ')})`,
    [deployment, ...FINISHED_ROLLOUT_STATES],
  );
}

export async function getRollout(db: Tx, id: string): Promise<RolloutRecord> {
  const row = await db.get<RolloutRow>('SELECT * FROM rollouts WHERE id = ?', [id]);
  if (row === undefined) throw new ConvoyError('ROLLOUT_UNKNOWN', `no rollout with id ${id}`);
  return toRollout(row);
}

export async function listRollouts(
  db: Tx,
  opts: { unfinishedOnly?: boolean; deployment?: string } = {},
): Promise<RolloutRecord[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (opts.unfinishedOnly === true) {
    where.push(`state NOT IN (${FINISHED_ROLLOUT_STATES.map(() => '?').join(', ')})`);
    params.push(...FINISHED_ROLLOUT_STATES);
  }
  if (opts.deployment !== undefined) {
    where.push('deployment = ?');
    params.push(opts.deployment);
  }
  const rows = await db.all<RolloutRow>(
    `SELECT * FROM rollouts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`,
    params,
  );
  return rows.map(toRollout);
}

export async function rolloutHosts(db: Tx, rolloutId: string): Promise<RolloutHostRecord[]> {
  const rows = await db.all<HostRow>('SELECT * FROM rollout_hosts WHERE rollout_id = ? ORDER BY position', [
    rolloutId,
  ]);
  return rows.map(toHost);
}

/** The unfinished rollouts that have `hostId` among their hosts (a `phase run` must not go around them). */
export async function rolloutsHoldingHost(
  db: Tx,
  hostId: string,
): Promise<{ rolloutId: string; deployment: string; state: string }[]> {
  return db.all<{ rolloutId: string; deployment: string; state: string }>(
    `SELECT r.id AS rolloutId, r.deployment AS deployment, r.state AS state
       FROM rollouts r JOIN rollout_hosts h ON h.rollout_id = r.id
      WHERE h.host_id = ? AND r.state NOT IN (${FINISHED_ROLLOUT_STATES.map(() => '?').join(', ')})
      ORDER BY r.created_at, r.id`,
    [hostId, ...FINISHED_ROLLOUT_STATES],
  );
}

/**
 * Whether rollout `r` is still in the state (and pause) it was read in. The engine decides from a
 * read made before its write, and an operator's abort, pause or resume may be written in between:
 * that must win, so a transition decided from the older read is dropped.
 */
export async function rolloutUnchanged(
  tx: Tx,
  r: Pick<RolloutRecord, 'id' | 'state' | 'paused'>,
): Promise<boolean> {
  const row = await tx.get<{ state: string; paused: number }>(
    'SELECT state, paused FROM rollouts WHERE id = ?',
    [r.id],
  );
  return row !== undefined && row.state === r.state && row.paused === (r.paused ? 1 : 0);
}

export type RolloutPatch = Partial<{
  state: RolloutState;
  reason: string;
  paused: boolean;
  pauseUntil: number | null;
  releasedBatch: number;
  toleratedFailures: number;
  stagedAt: number;
  windowOpenedAt: number;
  finalizeState: 'sent' | 'succeeded' | 'failed' | null;
  finalizeHost: string;
  finishedAt: number;
  finalizeResends: number;
}>;

export type HostPatch = Partial<{
  state: HostState;
  phase: string | null;
  phaseRunId: string | null;
  installed: string;
  staged: string;
  unknown: boolean;
  reason: string;
  startedAt: number;
  finishedAt: number | null;
  downtimeMs: number;
  resends: number;
}>;

const ROLLOUT_COLUMNS: Record<keyof RolloutPatch, string> = {
  state: 'state',
  reason: 'reason',
  paused: 'paused',
  pauseUntil: 'pause_until',
  releasedBatch: 'released_batch',
  toleratedFailures: 'tolerated_failures',
  stagedAt: 'staged_at',
  windowOpenedAt: 'window_opened_at',
  finalizeState: 'finalize_state',
  finalizeHost: 'finalize_host',
  finishedAt: 'finished_at',
  finalizeResends: 'finalize_resends',
};

const HOST_COLUMNS: Record<keyof HostPatch, string> = {
  state: 'state',
  phase: 'phase',
  phaseRunId: 'phase_run_id',
  installed: 'installed',
  staged: 'staged',
  unknown: 'unknown',
  reason: 'reason',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  downtimeMs: 'downtime_ms',
  resends: 'resends',
};

function assignments<P extends object>(
  patch: P,
  columns: Record<keyof P, string>,
): { sql: string; values: SqlValue[] } {
  const keys = (Object.keys(patch) as (keyof P)[]).filter((k) => patch[k] !== undefined);
  const values = keys.map((k) => {
    const v = patch[k];
    return typeof v === 'boolean' ? (v ? 1 : 0) : (v as SqlValue);
  });
  return { sql: keys.map((k) => `${columns[k]} = ?`).join(', '), values };
}

export async function patchRollout(tx: Tx, id: string, patch: RolloutPatch, nowMs: number): Promise<void> {
  const { sql, values } = assignments(patch, ROLLOUT_COLUMNS);
  await tx.run(`UPDATE rollouts SET ${sql ? `${sql}, ` : ''}updated_at = ? WHERE id = ?`, [
    ...values,
    nowMs,
    id,
  ]);
}

export async function patchHost(tx: Tx, rolloutId: string, hostId: string, patch: HostPatch): Promise<void> {
  const { sql, values } = assignments(patch, HOST_COLUMNS);
  if (sql === '') return;
  await tx.run(`UPDATE rollout_hosts SET ${sql} WHERE rollout_id = ? AND host_id = ?`, [
    ...values,
    rolloutId,
    hostId,
  ]);
}

/**
 * What `convoy status` shows per host and deployment about its application; written as rollouts
 * learn it. One row per (host, deployment): two deployments on one host each keep their own.
 */
export type HostAppPatch = Partial<{
  installed: string;
  staged: string;
  maintenance: boolean;
  lastBackupId: string;
  lastHealth: string;
  lastHealthAt: number;
  rolloutId: string | null;
}>;

const HOST_APP_COLUMNS: Record<keyof HostAppPatch, string> = {
  installed: 'installed',
  staged: 'staged',
  maintenance: 'maintenance',
  lastBackupId: 'last_backup_id',
  lastHealth: 'last_health',
  lastHealthAt: 'last_health_at',
  rolloutId: 'rollout_id',
};

export async function patchHostApp(
  tx: Tx,
  hostId: string,
  app: { deployment: string; application: string },
  patch: HostAppPatch,
  nowMs: number,
): Promise<void> {
  await tx.run(
    `INSERT INTO host_app (host_id, deployment, application, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (host_id, deployment) DO UPDATE SET application = excluded.application`,
    [hostId, app.deployment, app.application, nowMs],
  );
  const { sql, values } = assignments(patch, HOST_APP_COLUMNS);
  await tx.run(
    `UPDATE host_app SET ${sql ? `${sql}, ` : ''}updated_at = ? WHERE host_id = ? AND deployment = ?`,
    [...values, nowMs, hostId, app.deployment],
  );
}

export interface HostAppRecord {
  readonly hostId: string;
  readonly deployment: string;
  readonly application: string;
  readonly installed: string;
  readonly staged: string;
  readonly maintenance: boolean;
  readonly lastBackupId: string;
  readonly lastHealth: string;
  readonly lastHealthAt: number | null;
  readonly rolloutId: string | null;
}

/** Every host's application rows, by host id, in deployment order. */
export async function hostApps(db: Tx): Promise<Map<string, HostAppRecord[]>> {
  const rows = await db.all<{
    host_id: string;
    deployment: string;
    application: string;
    installed: string;
    staged: string;
    maintenance: number;
    last_backup_id: string;
    last_health: string;
    last_health_at: number | null;
    rollout_id: string | null;
  }>('SELECT * FROM host_app ORDER BY host_id, deployment');
  const byHost = new Map<string, HostAppRecord[]>();
  for (const r of rows) {
    const list = byHost.get(r.host_id) ?? [];
    byHost.set(r.host_id, list);
    list.push({
      hostId: r.host_id,
      deployment: r.deployment,
      application: r.application,
      installed: r.installed,
      staged: r.staged,
      maintenance: r.maintenance === 1,
      lastBackupId: r.last_backup_id,
      lastHealth: r.last_health,
      lastHealthAt: r.last_health_at,
      rolloutId: r.rollout_id,
    });
  }
  return byHost;
}
