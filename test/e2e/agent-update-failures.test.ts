/**
 * The agent's self-update when it must not go through, on a real controller and agent (loopback):
 * a release signed by a key the agent does not pin is never staged, and an agent that nothing
 * would restart refuses to exit, so the rollback phase puts the previous bundle back.
 *
 * The agent runs by hand (`convoy-agent run`, no supervisor); the recipe's `bundle` var points at
 * a copy of the 0.1.0 bundle in a temp dir, so the swap happens there and nowhere else.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { HttpRepoProcess } from '../../scripts/fixtures/http-repo-process';
import { fleetFile } from '../helpers/app-fleets';
import { isResting } from '../helpers/rollout-probe';
import { TestFleet } from '../helpers/fleet';
import { CONVOY_BIN, ROOT, run, tempDir } from '../helpers/processes';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';

jest.setTimeout(90_000);

const BUILD_AGENT = path.join(ROOT, 'dist/scripts/build-agent.js');

interface StepRow {
  step_id: string;
  ok: number | null;
  error_code: string | null;
  output_tail: string;
}

describe('agent self-update that must not go through', () => {
  const fleet = new TestFleet({ heartbeatInterval: '500ms', heartbeatTimeout: '10s' });
  const dir = tempDir('agent-update-failures');
  const releases = path.join(dir, 'releases');
  const bundle = path.join(dir, 'host/convoy-agent.js');
  const bundleA = path.join(ROOT, 'dist/bundle/convoy-agent.js');
  let repo: HttpRepoProcess;
  let hostId = '';

  function key(name: string): string {
    const r = run(CONVOY_BIN, ['release', 'keygen', '--out', path.join(dir, `${name}.key`)]);
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  }

  function release(version: string, keyName: string): void {
    const r = run(BUILD_AGENT, [
      '--out',
      path.join(releases, version, 'convoy-agent.js'),
      '--version',
      version,
      '--sign-key',
      path.join(dir, `${keyName}.key`),
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
  }

  async function rollOut(version: string): Promise<RolloutView> {
    const file = path.join(dir, `agents-${version}.yaml`);
    writeFileSync(
      file,
      fleetFile({
        name: 'agents',
        recipe: path.join(ROOT, 'recipes/convoy-agent.yaml'),
        target: version,
        hosts: [{ id: hostId, vars: { releaseUrl: repo.url, node: process.execPath, bundle } }],
      }),
    );
    expect(fleet.cli('apply', file).code).toBe(0);
    const started = fleet.cliJson<RolloutView>('rollout', 'start', 'agents', '--stage-now');
    return waitFor(
      `rollout ${started.id} to stop`,
      () => {
        const doc = fleet.cliJson<RolloutView>('rollout', 'status', started.id);
        return isResting(doc) ? doc : undefined;
      },
      60_000,
      200,
    );
  }

  const stepRows = (rolloutId: string): Promise<StepRow[]> =>
    queryStore<StepRow>(
      fleet.stateDir,
      `SELECT s.step_id, s.ok, s.error_code, s.output_tail FROM step_results s
         JOIN phase_runs p ON s.phase_run_id = p.id WHERE p.run_id LIKE ? ORDER BY p.started_at, s.rowid`,
      [`${rolloutId}-%`],
    );

  beforeAll(async () => {
    expect(existsSync(bundleA)).toBe(true);
    const trusted = key('trusted');
    key('stranger');
    release('0.1.1', 'stranger');
    release('0.1.2', 'trusted');
    mkdirSync(path.dirname(bundle), { recursive: true });
    copyFileSync(bundleA, bundle);
    repo = new HttpRepoProcess({ root: releases });
    await repo.start();
    await fleet.startController();
    hostId = fleet.enrollOk('a', fleet.createToken(), '--release-key', trusted, '--hostname', 'update-host');
    fleet.startAgent('a');
    await fleet.waitOnline(1);
  });

  afterAll(async () => {
    for (const agent of fleet.agents.values()) await agent.stop();
    await fleet.controller?.stop();
    await repo?.stop();
  });

  it('never stages a release signed by a key the agent does not pin; the bundle stays', async () => {
    const doc = await rollOut('0.1.1');
    expect(doc.state).toBe('halted');
    const rows = await stepRows(doc.id);
    expect(rows.find((r) => r.step_id === 'stage-bundle')).toMatchObject({
      ok: 0,
      error_code: 'ARTIFACT_REJECTED',
    });
    expect(rows.some((r) => r.step_id === 'replace-bundle')).toBe(false);
    expect(readFileSync(bundle).equals(readFileSync(bundleA))).toBe(true);
    expect(existsSync(`${bundle}.previous`)).toBe(false);
    expect(fleet.cli('rollout', 'abort', doc.id).code).toBe(0);
    await waitFor(
      'the rollout aborted',
      () => fleet.cliJson<RolloutView>('rollout', 'status', doc.id).state === 'aborted',
      20_000,
    );
  });

  it('refuses to restart an agent nothing would start again, and puts the previous bundle back', async () => {
    const pid = fleet.agents.get('a')?.pid;
    const doc = await rollOut('0.1.2');
    expect(['halted', 'held']).toContain(doc.state);
    expect(doc.hosts[0]?.state).toBe('rolled-back');
    const rows = await stepRows(doc.id);
    expect(rows.find((r) => r.step_id === 'replace-bundle')).toMatchObject({ ok: 1 });
    expect(rows.find((r) => r.step_id === 'restart-agent')).toMatchObject({
      ok: 0,
      error_code: 'AGENT_NOT_SUPERVISED',
    });
    expect(rows.find((r) => r.step_id === 'restore-bundle')?.output_tail).toContain('restored the previous');
    // The file is 0.1.0 again, and the agent never left: same process, still online, still 0.1.0.
    expect(readFileSync(bundle).equals(readFileSync(bundleA))).toBe(true);
    expect(existsSync(`${bundle}.previous`)).toBe(false);
    expect(fleet.agents.get('a')?.pid).toBe(pid);
    expect(fleet.agents.get('a')?.child.exitCode).toBeNull();
    const host = fleet.status().find((h) => h.id === hostId);
    expect(host).toMatchObject({ online: true, agentVersion: '0.1.0' });
  });
});
