/**
 * The phase runner with real executors and the real journal: order, `when`, retries, first
 * failure ends the phase, and the resume table after a crash recorded in the journal.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PhaseJournal, PHASE_JOURNAL_FILE } from '../../agent/phase/journal';
import { runPhase, type RunnerDeps } from '../../agent/phase/runner';
import { STEP_REGISTRY } from '../../agent/steps';
import { silentLogger } from '../../shared/logger';
import { compileRecipe } from '../../shared/recipe/compile';
import { tempDir } from '../helpers/processes';
import { runnerContext } from '../helpers/step-context';

function recipeText(dir: string, extraUpgrade = ''): string {
  const log = path.join(dir, 'ran.log');
  const append = (word: string): string => `argv: ['/bin/sh', '-c', 'echo ${word} >> ${log}']`;
  return `
name: demo
description: runner test
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
vars: { flag: ${path.join(dir, 'flag')} }
phases:
  upgrade:
    - { id: one, type: exec, source: test, ${append('one')} }
    - { id: core-only, type: exec, source: test, when: { role: core }, ${append('core')} }
    - { id: two, type: exec, source: test, onInterrupt: redo, ${append('two-{{target}}')} }
${extraUpgrade}
`;
}

function ran(dir: string): string[] {
  try {
    return readFileSync(path.join(dir, 'ran.log'), 'utf8').trim().split('\n');
  } catch {
    return [];
  }
}

function deps(stateDir: string): RunnerDeps {
  return {
    registry: STEP_REGISTRY,
    journal: PhaseJournal.open(stateDir),
    context: runnerContext({ stateDir }),
    log: silentLogger,
  };
}

describe('phase runner', () => {
  it('runs the steps for this host in order, substituting variables, and journals success', async () => {
    const dir = tempDir('runner');
    const recipe = compileRecipe(recipeText(dir), 'demo.yaml');
    const out = await runPhase(
      { recipe, phase: 'upgrade', roles: ['edge'], vars: { target: '4.1.2' } },
      deps(dir),
    );
    expect(out.ok).toBe(true);
    expect(out.steps.map((s) => [s.step.id, s.status])).toEqual([
      ['one', 'ran'],
      ['core-only', 'skipped'],
      ['two', 'ran'],
    ]);
    expect(ran(dir)).toEqual(['one', 'two-4.1.2']);
    const journal = JSON.parse(readFileSync(path.join(dir, PHASE_JOURNAL_FILE), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(journal).toMatchObject({ state: 'succeeded', current: null, phase: 'upgrade', recipe: 'demo' });
    expect(Object.keys(journal['completed'] as object)).toEqual(['one', 'two']);
  });

  it('reads the results of the runs it is told to (readRuns), but runs its own steps again', async () => {
    const dir = tempDir('runner-read-runs');
    const recipe = compileRecipe(recipeText(dir), 'demo.yaml');
    const first = await runPhase(
      { recipe, phase: 'upgrade', roles: [], vars: { target: '1.0.0' }, runId: 'r1-u' },
      deps(dir),
    );
    expect(first.ok).toBe(true);
    // Another run of the same rollout: the earlier results are readable by id, not "done before".
    const seen: string[] = [];
    const d = deps(dir);
    const reading = {
      ...d,
      registry: new Map([
        ...d.registry,
        [
          'exec',
          {
            ...d.registry.get('exec')!,
            run: async (step, ctx) => {
              seen.push(`${step.id}:${ctx.results.get('one')?.ok === true ? 'sees-one' : 'blind'}`);
              return d.registry.get('exec')!.run(step, ctx);
            },
          },
        ],
      ]),
    };
    const second = await runPhase(
      { recipe, phase: 'upgrade', roles: [], vars: { target: '1.0.0' }, runId: 'r1-v', readRuns: ['r1-u'] },
      reading,
    );
    expect(second.steps.map((s) => s.status)).toEqual(['ran', 'skipped', 'ran']);
    expect(seen).toEqual(['one:sees-one', 'two:sees-one']);
    expect(ran(dir)).toEqual(['one', 'two-1.0.0', 'one', 'two-1.0.0']);
    // Without readRuns, a run sees nothing of another's.
    seen.length = 0;
    await runPhase(
      { recipe, phase: 'upgrade', roles: [], vars: { target: '1.0.0' }, runId: 'r2-v' },
      reading,
    );
    expect(seen).toEqual(['one:blind', 'two:sees-one']);
  });

  it('stops at the first failed step, after its retries', async () => {
    const dir = tempDir('runner-fail');
    const fail = `    - { id: flaky, type: exec, source: test, retries: 2, argv: ['/bin/sh', '-c', 'echo try >> ${path.join(dir, 'ran.log')}; exit 3'] }
    - { id: never, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo never >> ${path.join(dir, 'ran.log')}'] }`;
    const recipe = compileRecipe(recipeText(dir, fail), 'demo.yaml');
    const out = await runPhase(
      { recipe, phase: 'upgrade', roles: ['core'], vars: { target: '1.0.0' } },
      deps(dir),
    );
    expect(out.ok).toBe(false);
    const flaky = out.steps.find((s) => s.step.id === 'flaky');
    expect(flaky?.attempts).toBe(3);
    expect(flaky?.result?.exitCode).toBe(3);
    expect(ran(dir)).toEqual(['one', 'core', 'two-1.0.0', 'try', 'try', 'try']);
    expect(PhaseJournal.open(dir).current?.state).toBe('failed');
  });

  it('fails a step whose placeholder has no value, without running it', async () => {
    const dir = tempDir('runner-var');
    const recipe = compileRecipe(recipeText(dir), 'demo.yaml');
    const out = await runPhase({ recipe, phase: 'upgrade', roles: [], vars: {} }, deps(dir));
    expect(out.ok).toBe(false);
    expect(out.steps.at(-1)?.result?.error?.code).toBe('RECIPE_INVALID');
    expect(ran(dir)).toEqual(['one']);
  });

  it('after a crash inside a redo step, runs it again and keeps the steps completed before', async () => {
    const dir = tempDir('runner-redo');
    const recipe = compileRecipe(recipeText(dir), 'demo.yaml');
    const journal = PhaseJournal.open(dir);
    journal.begin('run-1', 'demo', 'upgrade', false);
    journal.leave('one', { ok: true, durationMs: 1, outputTail: '' });
    journal.enter('two', 1, Date.now()); // the agent died here
    const out = await runPhase({ recipe, phase: 'upgrade', roles: [], vars: { target: '2.0.0' } }, deps(dir));
    expect(out.resumed).toMatchObject({ action: 'redo', stepId: 'two', runId: 'run-1' });
    expect(out.steps.map((s) => s.status)).toEqual(['done-before', 'skipped', 'ran']);
    expect(ran(dir)).toEqual(['two-2.0.0']);
    expect(out.ok).toBe(true);
  });

  it('after a crash inside a step that must not run twice, runs nothing and asks for rollback', async () => {
    const dir = tempDir('runner-rollback');
    const replace = `    - { id: swap, type: binary.replace, source: test, fromStep: stage, target: ${path.join(dir, 'bin')} }`;
    const text = recipeText(dir, replace).replace(
      'phases:\n',
      `phases:\n  download:\n    - { id: stage, type: artifact, source: test, url: 'http://127.0.0.1:1/x', name: x, maxBytes: 10, signatureUrl: 'http://127.0.0.1:1/x.sig' }\n`,
    );
    const recipe = compileRecipe(text, 'demo.yaml');
    const journal = PhaseJournal.open(dir);
    journal.begin('run-2', 'demo', 'upgrade', false);
    journal.enter('swap', 1, Date.now());
    writeFileSync(path.join(dir, 'untouched'), '');
    const out = await runPhase({ recipe, phase: 'upgrade', roles: [], vars: { target: '2.0.0' } }, deps(dir));
    expect(out.ok).toBe(false);
    expect(out.resumed).toMatchObject({ action: 'rollback', stepId: 'swap' });
    expect(out.steps).toEqual([]);
    expect(ran(dir)).toEqual([]);
  });

  it('after a crash inside an exec step not declared safe to repeat, asks for rollback', async () => {
    const dir = tempDir('runner-exec');
    const recipe = compileRecipe(recipeText(dir), 'demo.yaml');
    const journal = PhaseJournal.open(dir);
    journal.begin('run-3', 'demo', 'upgrade', false);
    journal.enter('one', 1, Date.now());
    const out = await runPhase({ recipe, phase: 'upgrade', roles: [], vars: { target: '2.0.0' } }, deps(dir));
    expect(out.resumed).toMatchObject({ action: 'rollback', stepId: 'one' });
    expect(ran(dir)).toEqual([]);
  });

  it('dry-runs without running anything or touching the journal', async () => {
    const dir = tempDir('runner-dry');
    const recipe = compileRecipe(recipeText(dir), 'demo.yaml');
    const out = await runPhase(
      { recipe, phase: 'upgrade', roles: ['core'], vars: { target: '3.0.0' }, dryRun: true },
      deps(dir),
    );
    expect(out.steps.map((s) => s.status)).toEqual(['dry-run', 'dry-run', 'dry-run']);
    expect(ran(dir)).toEqual([]);
    expect(PhaseJournal.open(dir).current).toBeNull();
  });
});
