/** A controller restart leaves no phase run `sent` forever, but keeps those a rollout reconciles. */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { markOrphanedPhaseRunsLost } from '../../controller/store/phase-runs';
import { Store } from '../../controller/store/store';
import { tempDir } from '../helpers/processes';

it('marks orphaned phase runs lost, except those of an unfinished rollout', async () => {
  const dir = tempDir('orphans');
  const store = await Store.open(path.join(dir, 'convoy.db'));
  try {
    await store.db.write(async (tx) => {
      await tx.run(
        `INSERT INTO hosts (id, hostname, public_key, key_id, state, enrolled_at) VALUES ('h1', 'h1', x'00', 'k1', 'active', 1)`,
      );
      for (const [id, runId] of [
        ['p1', 'plan-1234'],
        ['p2', 'r-aaaa-u'],
        ['p3', 'r-bbbb-u'],
      ] as const) {
        await tx.run(
          `INSERT INTO phase_runs (id, run_id, host_id, recipe, digest, phase, state, started_at)
             VALUES (?, ?, 'h1', 'bluemind', 'd', 'upgrade', 'sent', 1)`,
          [id, runId],
        );
      }
      await tx.run(
        `INSERT INTO rollouts (id, deployment, spec_json, state, stage_at, created_by, created_at, updated_at)
           VALUES ('r-aaaa', 'mail', '{}', 'upgrading', 0, 'operator', 1, 1),
                  ('r-bbbb', 'mail2', '{}', 'succeeded', 0, 'operator', 1, 1)`,
      );
    });
    expect(await markOrphanedPhaseRunsLost(store.db, 99)).toBe(2);
    const rows = await store.db.all<{ id: string; state: string }>(
      'SELECT id, state FROM phase_runs ORDER BY id',
    );
    expect(rows).toEqual([
      { id: 'p1', state: 'lost' },
      { id: 'p2', state: 'sent' },
      { id: 'p3', state: 'lost' },
    ]);
    const events = await store.db.all<{ kind: string; data_json: string }>(
      "SELECT kind, data_json FROM events WHERE kind = 'phase.orphans-lost'",
    );
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]?.data_json ?? '{}')).toMatchObject({ count: 2 });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
