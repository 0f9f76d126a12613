/**
 * A phase run through the controller: the signed `phase` command reaches the agent process,
 * which compiles the recipe again, runs it with its journal and answers with every step's
 * result; the controller stores the run before sending and the step results after.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet';
import { queryStore as query } from '../helpers/store-query';
import { CONVOY_BIN, runAsync } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

describe('phase run through the controller', () => {
  const fleet = new TestFleet();
  let hostId = '';
  let work = '';
  let recipeFile = '';

  beforeAll(async () => {
    await fleet.startController();
    hostId = fleet.enrollOk('a', fleet.createToken('--labels', 'role=core'));
    fleet.startAgent('a');
    await fleet.waitOnline(1);
    work = path.join(fleet.root, 'work');
    recipeFile = path.join(fleet.root, 'demo.yaml');
    const log = path.join(fleet.root, 'ran.log');
    writeFileSync(
      recipeFile,
      `name: demo
description: remote phase test
versions:
  installed: { argv: ['/bin/sh', '-c', 'cat {{var.dir}}/version 2>/dev/null || echo 1.0.0'], pattern: '^([0-9.]+)' }
  available: { argv: [/bin/echo, 'v1.0.0 v2.0.0 v2.1.0'], pattern: 'v([0-9.]+)' }
vars: { dir: /nonexistent }
phases:
  upgrade:
    - { id: mark, type: exec, source: test, argv: ['/bin/sh', '-c', 'mkdir -p {{var.dir}} && echo {{target}} > {{var.dir}}/version && echo mark >> ${log}'] }
    - { id: core-only, type: exec, source: test, when: { role: core }, argv: ['/bin/sh', '-c', 'echo core >> ${log}'] }
  check:
    - { id: look, type: exec, source: test, argv: ['/bin/true'] }
  verify:
    - { id: broken, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo not healthy; exit 7'] }
  download:
    - { id: early, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo staged early'] }
    - { id: slow, type: exec, source: test, argv: ['/bin/sh', '-c', 'while [ ! -e ${fleet.root}/go ]; do sleep 0.1; done'] }
`,
    );
  });

  afterAll(async () => {
    await fleet.stop();
  });

  it('runs the phase on the agent and stores the run and every step result', async () => {
    const r = fleet.cli(
      'phase',
      'run',
      '--host',
      hostId,
      '--recipe',
      recipeFile,
      '--phase',
      'upgrade',
      '--target',
      '2.0.0',
      '--var',
      `dir=${work}`,
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      runId: string;
      phaseRunId: string;
      steps: { stepId: string; status: string; ok: boolean }[];
    };
    expect(report.ok).toBe(true);
    expect(report.steps.map((s) => [s.stepId, s.status, s.ok])).toEqual([
      ['mark', 'ran', true],
      ['core-only', 'ran', true],
    ]);
    expect(readFileSync(path.join(work, 'version'), 'utf8').trim()).toBe('2.0.0');
    const runs = await query<{ state: string; host_id: string; phase: string }>(
      fleet.stateDir,
      'SELECT * FROM phase_runs WHERE run_id = ?',
      [report.runId],
    );
    expect(runs).toEqual([
      expect.objectContaining({ state: 'succeeded', host_id: hostId, phase: 'upgrade' }),
    ]);
    const steps = await query<{ step_id: string; ok: number; exit_code: number }>(
      fleet.stateDir,
      'SELECT step_id, ok, exit_code FROM step_results WHERE phase_run_id = ? ORDER BY step_id',
      [report.phaseRunId],
    );
    expect(steps).toEqual([
      { step_id: 'core-only', ok: 1, exit_code: 0 },
      { step_id: 'mark', ok: 1, exit_code: 0 },
    ]);
  });

  it('reads the installed and available versions with the recipe probes', () => {
    const r = fleet.cliJson<{ installed: string; available: string[] }>(
      'phase',
      'run',
      '--host',
      hostId,
      '--recipe',
      recipeFile,
      '--phase',
      'check',
      '--var',
      `dir=${work}`,
    );
    expect(r.installed).toBe('2.0.0'); // written by the upgrade test before
    expect(r.available).toEqual(['1.0.0', '2.0.0', '2.1.0']);
  });

  it('reports a failed step with its code, exit code and output, and exits 1', async () => {
    const r = fleet.cli('phase', 'run', '--host', hostId, '--recipe', recipeFile, '--phase', 'verify');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ broken \(exec\) .*STEP_FAILED/);
    expect(r.stdout).toContain('not healthy');
    const rows = await query<{ error_code: string; exit_code: number; output_tail: string }>(
      fleet.stateDir,
      "SELECT error_code, exit_code, output_tail FROM step_results WHERE step_id = 'broken'",
    );
    expect(rows).toEqual([expect.objectContaining({ error_code: 'STEP_FAILED', exit_code: 7 })]);
    expect(rows[0]?.output_tail).toContain('not healthy');
  });

  it('keeps answering pings during a long phase, and refuses a second phase meanwhile', async () => {
    const long = runAsync(CONVOY_BIN, [
      'phase',
      'run',
      '--host',
      hostId,
      '--recipe',
      recipeFile,
      '--phase',
      'download',
      '--state-dir',
      fleet.stateDir,
    ]);
    await waitFor('the long phase to start', async () => {
      const runs = await query<{ n: number }>(
        fleet.stateDir,
        "SELECT COUNT(*) AS n FROM phase_runs WHERE phase = 'download'",
      );
      return (runs[0]?.n ?? 0) > 0;
    });
    await new Promise((r) => setTimeout(r, 300));
    const ping = fleet.cliJson<{ ok: number }>('ping', '--timeout', '3s');
    expect(ping.ok).toBe(1);
    const live = fleet.cliJson<{ agent: { phaseJournal: { phase: string; state: string; step: string } } }>(
      'hosts',
      'show',
      hostId,
      '--live',
    );
    expect(live.agent.phaseJournal).toMatchObject({ phase: 'download', state: 'running', step: 'slow' });
    // Streamed: the step that finished is in the store while its phase still runs.
    const early = await query<{ ok: number; output_tail: string }>(
      fleet.stateDir,
      "SELECT ok, output_tail FROM step_results WHERE step_id = 'early'",
    );
    expect(early).toEqual([{ ok: 1, output_tail: 'staged early\n' }]);
    const second = fleet.cli(
      'phase',
      'run',
      '--host',
      hostId,
      '--recipe',
      recipeFile,
      '--phase',
      'upgrade',
      '--var',
      `dir=${work}`,
    );
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('PHASE_BUSY');
    writeFileSync(path.join(fleet.root, 'go'), '');
    const done = await long;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('demo download on');
  });

  it('keeps a secret given on stdin out of the output, the store (WAL included) and the logs', async () => {
    const canary = `canary-${process.pid}-Zx81`;
    const secretsFile = path.join(fleet.root, 'secrets.json');
    writeFileSync(secretsFile, JSON.stringify({ dbPassword: canary }), { mode: 0o600 });
    const configFile = path.join(fleet.agentDir('s'), 'agent.yaml');
    const sid = fleet.enrollOk('s', fleet.createToken('--labels', 'role=secret-test'));
    const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, JSON.stringify({ ...config, secretsFile }), { mode: 0o600 });
    const agent = fleet.startAgent('s');
    await fleet.waitHost(sid, true);
    const recipe = path.join(fleet.root, 'secret.yaml');
    writeFileSync(
      recipe,
      `name: secretive
description: uses a secret
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
secrets: [dbPassword]
phases:
  upgrade:
    - { id: leak-attempt, type: exec, source: test, stdinSecret: dbPassword, argv: ['/bin/sh', '-c', 'read p; echo "got $p"; echo "err $p" >&2; exit 3'] }
`,
    );
    const r = fleet.cli('phase', 'run', '--host', sid, '--recipe', recipe, '--phase', 'upgrade', '--json');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('got [redacted]');
    const everything = [
      r.stdout,
      r.stderr,
      agent.stderr,
      fleet.controller?.stderr ?? '',
      JSON.stringify(await query(fleet.stateDir, 'SELECT * FROM step_results')),
      JSON.stringify(await query(fleet.stateDir, 'SELECT result_json FROM commands')),
      JSON.stringify(await query(fleet.stateDir, 'SELECT * FROM events')),
    ].join('\n');
    expect(everything).not.toContain(canary);
    for (const file of ['convoy.db', 'convoy.db-wal']) {
      const bytes = existsSync(path.join(fleet.stateDir, file))
        ? readFileSync(path.join(fleet.stateDir, file))
        : Buffer.alloc(0);
      expect(bytes.includes(Buffer.from(canary))).toBe(false);
    }
  });

  it('lets a rollback of the same run restore the backup its upgrade took', () => {
    const conf = path.join(fleet.root, 'conf');
    const recipe = path.join(fleet.root, 'backup.yaml');
    writeFileSync(
      recipe,
      `name: backedup
description: backup then rollback
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
phases:
  upgrade:
    - { id: keep, type: backup, source: test, paths: ['${conf}'], dest: '${fleet.root}/backups' }
    - { id: change, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo new > ${conf}/app.conf'] }
  rollback:
    - { id: put-back, type: restore, source: test, fromStep: keep }
`,
    );
    execFileSync('mkdir', ['-p', conf]);
    writeFileSync(path.join(conf, 'app.conf'), 'old\n');
    const up = fleet.cliJson<{ runId: string; ok: boolean; steps: { backupId: string }[] }>(
      'phase',
      'run',
      '--host',
      hostId,
      '--recipe',
      recipe,
      '--phase',
      'upgrade',
    );
    expect(up.ok).toBe(true);
    expect(up.steps[0]?.backupId).not.toBe('');
    expect(readFileSync(path.join(conf, 'app.conf'), 'utf8')).toBe('new\n');
    const alone = fleet.cli('phase', 'run', '--host', hostId, '--recipe', recipe, '--phase', 'rollback');
    expect(alone.code).toBe(1); // a new run has no backup to restore
    const back = fleet.cliJson<{ ok: boolean }>(
      'phase',
      'run',
      '--host',
      hostId,
      '--recipe',
      recipe,
      '--phase',
      'rollback',
      '--run',
      up.runId,
    );
    expect(back.ok).toBe(true);
    expect(readFileSync(path.join(conf, 'app.conf'), 'utf8')).toBe('old\n');
  });

  it('refuses a recipe with problems before anything is sent', async () => {
    const bad = path.join(fleet.root, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nphases: { upgrade: [ { id: x, type: teleport, source: s } ] }\n');
    const before = await query<{ n: number }>(fleet.stateDir, 'SELECT COUNT(*) AS n FROM phase_runs');
    const r = fleet.cli('phase', 'run', '--host', hostId, '--recipe', bad, '--phase', 'upgrade');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('RECIPE_INVALID');
    expect(r.stderr).toContain('phases.upgrade[0].type');
    expect(await query<{ n: number }>(fleet.stateDir, 'SELECT COUNT(*) AS n FROM phase_runs')).toEqual(
      before,
    );
    expect(existsSync(path.join(fleet.agentDir('a'), 'phase', 'staging', 'x'))).toBe(false);
  });
});
