/**
 * Versioned schema migrations. `PRAGMA user_version` holds the number of migrations applied;
 * each runs with the version bump inside one BEGIN IMMEDIATE, so a crash leaves the store
 * either before or after a migration, never half-way. Append only: never edit a shipped entry.
 */
import { ConvoyError } from '../../shared/errors';
import type { Sqlite } from './sqlite';

export const MIGRATIONS: readonly string[] = [
  // 1: hosts, enrollment tokens, commands (write-ahead intent) and the audit chain.
  `
  CREATE TABLE hosts (
    id             TEXT PRIMARY KEY,
    hostname       TEXT NOT NULL,
    public_key     BLOB NOT NULL,
    key_id         TEXT NOT NULL UNIQUE,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'active', 'revoked')),
    labels_json    TEXT NOT NULL DEFAULT '{}',
    facts_json     TEXT NOT NULL DEFAULT '{}',
    agent_version  TEXT NOT NULL DEFAULT '',
    enrolled_at    INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL DEFAULT 0,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    token_id       TEXT
  );
  CREATE TABLE tokens (
    id                TEXT PRIMARY KEY,
    secret_sha256     BLOB NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    uses_total        INTEGER NOT NULL CHECK (uses_total > 0),
    uses_left         INTEGER NOT NULL CHECK (uses_left >= 0),
    labels_json       TEXT NOT NULL DEFAULT '{}',
    require_approval  INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE commands (
    host_id      TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    type         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    outcome      TEXT,
    result_json  TEXT,
    finished_at  INTEGER,
    PRIMARY KEY (host_id, seq)
  );
  CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    host_id    TEXT,
    data_json  TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
  );
  `,
  // 2: phase runs (recorded before the command is sent) and the results of their steps.
  // `run_id` is the agent's journal run: the phases of one rollout share it, so that a
  // rollback finds the backup its upgrade took; `id` names one phase command.
  `
  CREATE TABLE phase_runs (
    id            TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    host_id       TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    recipe        TEXT NOT NULL,
    digest        TEXT NOT NULL,
    phase         TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('sent', 'succeeded', 'failed', 'lost')),
    seq           INTEGER,
    resumed_json  TEXT,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER
  );
  CREATE INDEX phase_runs_by_host ON phase_runs (host_id, started_at);
  CREATE INDEX phase_runs_by_run ON phase_runs (run_id);
  CREATE TABLE step_results (
    phase_run_id   TEXT NOT NULL REFERENCES phase_runs(id) ON DELETE CASCADE,
    step_id        TEXT NOT NULL,
    type           TEXT NOT NULL,
    status         TEXT NOT NULL,
    attempts       INTEGER NOT NULL,
    ok             INTEGER,
    exit_code      INTEGER,
    duration_ms    REAL NOT NULL,
    output_tail    TEXT NOT NULL,
    backup_id      TEXT,
    versions_json  TEXT NOT NULL,
    error_code     TEXT,
    error_message  TEXT,
    PRIMARY KEY (phase_run_id, step_id)
  );
  `,
  // 3: deployments (what `convoy apply` stored), rollouts (spec frozen at start, status apart),
  // each rollout's hosts with the phase in flight (write-ahead), and what is known per host of
  // its application. At most one unfinished rollout per deployment, enforced by the store.
  `
  CREATE TABLE deployments (
    name         TEXT PRIMARY KEY,
    spec_json    TEXT NOT NULL,
    recipe_yaml  TEXT NOT NULL,
    digest       TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
  );
  CREATE TABLE rollouts (
    id                TEXT PRIMARY KEY,
    deployment        TEXT NOT NULL,
    spec_json         TEXT NOT NULL,
    state             TEXT NOT NULL,
    reason            TEXT NOT NULL DEFAULT '',
    paused            INTEGER NOT NULL DEFAULT 0,
    pause_until       INTEGER,
    released_batch    INTEGER NOT NULL DEFAULT 0,
    stage_at          INTEGER NOT NULL,
    staged_at         INTEGER,
    window_opened_at  INTEGER,
    finalize_state    TEXT,
    finalize_host     TEXT,
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER
  );
  CREATE UNIQUE INDEX rollouts_one_unfinished ON rollouts (deployment)
    WHERE state NOT IN ('succeeded', 'aborted', 'rolled-back', 'failed');
  CREATE TABLE rollout_hosts (
    rollout_id    TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
    host_id       TEXT NOT NULL,
    position      INTEGER NOT NULL,
    batch         INTEGER NOT NULL,
    role          TEXT NOT NULL DEFAULT '',
    vars_json     TEXT NOT NULL DEFAULT '{}',
    state         TEXT NOT NULL,
    phase         TEXT,
    phase_run_id  TEXT,
    installed     TEXT NOT NULL DEFAULT '',
    staged        TEXT NOT NULL DEFAULT '',
    unknown       INTEGER NOT NULL DEFAULT 0,
    reason        TEXT NOT NULL DEFAULT '',
    started_at    INTEGER,
    finished_at   INTEGER,
    downtime_ms   INTEGER,
    PRIMARY KEY (rollout_id, host_id)
  );
  CREATE TABLE host_app (
    host_id         TEXT PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
    deployment      TEXT NOT NULL,
    application     TEXT NOT NULL,
    installed       TEXT NOT NULL DEFAULT '',
    staged          TEXT NOT NULL DEFAULT '',
    maintenance     INTEGER NOT NULL DEFAULT 0,
    last_backup_id  TEXT NOT NULL DEFAULT '',
    last_health     TEXT NOT NULL DEFAULT '',
    last_health_at  INTEGER,
    rollout_id      TEXT,
    updated_at      INTEGER NOT NULL
  );
  ALTER TABLE events ADD COLUMN rollout_id TEXT
    GENERATED ALWAYS AS (json_extract(data_json, '$.rolloutId')) VIRTUAL;
  CREATE INDEX events_by_rollout ON events (rollout_id);
  `,
  // 2: what a resumed halt tolerates is the rollout's status; its spec_json is never edited.
  `
  ALTER TABLE rollouts ADD COLUMN tolerated_failures INTEGER NOT NULL DEFAULT 0;
  `,
  // 3 (rails): an application's state is kept per host and deployment (two deployments on one host
  // no longer overwrite each other's row), and the loop guard counts re-sends of a phase.
  `
  CREATE TABLE host_app_by_deployment (
    host_id         TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    deployment      TEXT NOT NULL,
    application     TEXT NOT NULL,
    installed       TEXT NOT NULL DEFAULT '',
    staged          TEXT NOT NULL DEFAULT '',
    maintenance     INTEGER NOT NULL DEFAULT 0,
    last_backup_id  TEXT NOT NULL DEFAULT '',
    last_health     TEXT NOT NULL DEFAULT '',
    last_health_at  INTEGER,
    rollout_id      TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (host_id, deployment)
  );
  INSERT INTO host_app_by_deployment
    SELECT host_id, deployment, application, installed, staged, maintenance, last_backup_id,
           last_health, last_health_at, rollout_id, updated_at FROM host_app;
  DROP TABLE host_app;
  ALTER TABLE host_app_by_deployment RENAME TO host_app;
  ALTER TABLE rollout_hosts ADD COLUMN resends INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE rollouts ADD COLUMN finalize_resends INTEGER NOT NULL DEFAULT 0;
  `,
];

/** Applies pending migrations; refuses a store written by a newer Convoy. */
export async function migrate(db: Sqlite): Promise<number> {
  const row = await db.get<{ user_version: number }>('PRAGMA user_version');
  const current = row?.user_version ?? 0;
  if (current > MIGRATIONS.length) {
    throw new ConvoyError(
      'STORE_TOO_NEW',
      `${db.path}: schema version ${current} is newer than this build knows (${MIGRATIONS.length})`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    const sql = MIGRATIONS[version] ?? '';
    await db.write(async () => {
      // exec runs the multi-statement script inside the open transaction.
      await db.exec(sql);
      // user_version takes no bound parameter; the value is our own integer.
      await db.exec(`PRAGMA user_version = ${version + 1}`);
    });
  }
  return MIGRATIONS.length;
}
