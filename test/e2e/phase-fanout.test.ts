/**
 * `convoy phase run --select`: one phase on every matching host at once. Each host's run is a
 * run of its own (its own phase run row, sequence and signed command), so the checks are per
 * host: which agents ran the step (each step records its agent's pid), what the store holds,
 * and what the operator is told when one host cannot run it.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet';
import { queryStore } from '../helpers/store-query';

jest.setTimeout(60_000);

interface FanoutJson {
  results: {
    hostId: string;
    hostname: string;
    ok: boolean;
    report: { ok: boolean; runId: string; steps: { stepId: string; ok: boolean }[] } | null;
    error?: { code: string; message: string };
  }[];
  ok: number;
  total: number;
}

describe('phase run on every matching host', () => {
  const fleet = new TestFleet();
  const ids: Record<string, string> = {};
  let marks = '';
  let recipeFile = '';

  beforeAll(async () => {
    await fleet.startController();
    const web = fleet.createToken('--uses', '2', '--labels', 'role=web');
    ids['a'] = fleet.enrollOk('a', web);
    ids['b'] = fleet.enrollOk('b', web);
    ids['c'] = fleet.enrollOk('c', fleet.createToken('--labels', 'role=db'));
    for (const name of ['a', 'b', 'c']) fleet.startAgent(name);
    await fleet.waitOnline(3);
    marks = path.join(fleet.root, 'marks');
    mkdirSync(marks);
    recipeFile = path.join(fleet.root, 'check.yaml');
    // $PPID of the step's shell is the agent that ran it: one file per agent and step.
    writeFileSync(
      recipeFile,
      `name: three-checks
description: fan-out test
versions: { installed: { argv: [/bin/echo, '1.0.0'], pattern: '([0-9.]+)' } }
phases:
  check:
    - { id: one, type: exec, source: test, argv: ['/bin/sh', '-c', 'touch ${marks}/one.$PPID'] }
    - { id: two, type: exec, source: test, argv: ['/bin/sh', '-c', 'touch ${marks}/two.$PPID'] }
    - { id: three, type: exec, source: test, argv: ['/bin/sh', '-c', 'touch ${marks}/three.$PPID'] }
`,
    );
  });

  afterAll(async () => {
    await fleet.stop();
  });

  const pidOf = (name: string): number => fleet.agents.get(name)?.pid ?? -1;

  it('runs the phase on exactly the selected hosts and records one run per host', async () => {
    const r = fleet.cli(
      'phase',
      'run',
      '--select',
      'role=web',
      '--recipe',
      recipeFile,
      '--phase',
      'check',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as FanoutJson;
    expect(out).toMatchObject({ ok: 2, total: 2 });
    expect(out.results.map((x) => x.hostId).sort()).toEqual([ids['a'], ids['b']].sort());
    for (const x of out.results)
      expect(x.report?.steps.map((s) => [s.stepId, s.ok])).toEqual([
        ['one', true],
        ['two', true],
        ['three', true],
      ]);
    const expected = ['a', 'b'].flatMap((n) => ['one', 'two', 'three'].map((s) => `${s}.${pidOf(n)}`));
    expect(readdirSync(marks).sort()).toEqual(expected.sort());

    const runs = await queryStore<{ host_id: string; state: string; run_id: string }>(
      fleet.stateDir,
      "SELECT host_id, state, run_id FROM phase_runs WHERE phase = 'check'",
    );
    expect(runs.map((x) => x.host_id).sort()).toEqual([ids['a'], ids['b']].sort());
    expect(runs.every((x) => x.state === 'succeeded')).toBe(true);
    expect(new Set(runs.map((x) => x.run_id)).size).toBe(2);
  });

  it('prints a line per host and a total on a terminal-less run', () => {
    const r = fleet.cli('phase', 'run', '--select', '', '--recipe', recipeFile, '--phase', 'check');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const n of ['a', 'b', 'c']) expect(r.stdout).toContain(`(${ids[n]}): 3 steps`);
    expect(lines[3]).toBe('3/3 hosts ok');
  });

  it('reports an offline host with its reason, runs the others, and exits 1', async () => {
    await fleet.agents.get('b')?.stop();
    await fleet.waitHost(ids['b'] ?? '', false);
    rmSync(marks, { recursive: true });
    mkdirSync(marks);
    const r = fleet.cli(
      'phase',
      'run',
      '--select',
      'role=web',
      '--recipe',
      recipeFile,
      '--phase',
      'check',
      '--json',
    );
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as FanoutJson;
    expect(out).toMatchObject({ ok: 1, total: 2 });
    const b = out.results.find((x) => x.hostId === ids['b']);
    expect(b).toMatchObject({ ok: false, report: null, error: { code: 'HOST_OFFLINE' } });
    expect(readdirSync(marks).sort()).toEqual(['one', 'three', 'two'].map((s) => `${s}.${pidOf('a')}`));
  });

  it.each([
    [['--host', 'h1', '--select', 'role=web'], /exactly one of --host ID or --select/],
    [[], /exactly one of --host ID or --select/],
    [['--select', 'role=web', '--run', 'r1'], /--run continues one host's run/],
    [['--select', 'role=web', '--parallel', '0'], /--parallel "0": must be a whole number from 1 to 4096/],
    [['--select', 'role'], /--select: /],
  ])('refuses %j as usage (exit 2) before connecting', (args, why) => {
    const r = fleet.cli('phase', 'run', ...args, '--recipe', recipeFile, '--phase', 'check');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(why);
  });

  it('says when no active host matches (exit 1)', () => {
    const r = fleet.cli(
      'phase',
      'run',
      '--select',
      'role=nothing',
      '--recipe',
      recipeFile,
      '--phase',
      'check',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('HOST_UNKNOWN: --select "role=nothing": no active host matches');
  });
});
