/**
 * `convoy-agent phase run` killed with -9 in the middle of a step, then run again: the journal
 * names the step, the resume table decides, and completed steps are not run twice.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AGENT_BIN, Daemon, run, tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(30_000);

function recipe(dir: string): string {
  const log = path.join(dir, 'ran.log');
  return `
name: slow
description: a download that can be interrupted
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
phases:
  download:
    - { id: first, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo first >> ${log}'] }
    - { id: fetch, type: exec, source: test, onInterrupt: redo, argv: ['/bin/sh', '-c', 'echo $$ > ${dir}/fetch.pid; echo fetch-start >> ${log}; [ -e ${dir}/go ] || exec sleep 30; echo fetch-done >> ${log}'] }
    - { id: last, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo last >> ${log}'] }
`;
}

const lines = (dir: string): string[] => {
  try {
    return readFileSync(path.join(dir, 'ran.log'), 'utf8').trim().split('\n');
  } catch {
    return [];
  }
};

describe('convoy-agent phase run after kill -9', () => {
  it('redoes the interrupted download step and does not repeat the completed one', async () => {
    const dir = tempDir('resume');
    const file = path.join(dir, 'slow.yaml');
    writeFileSync(file, recipe(dir));
    const state = path.join(dir, 'state');
    const args = ['phase', 'run', '--recipe', file, '--phase', 'download', '--state-dir', state];
    const first = new Daemon(AGENT_BIN, args);
    await waitFor('the fetch step to start', () => lines(dir).includes('fetch-start'));
    const journal = JSON.parse(readFileSync(path.join(state, 'phase-journal.json'), 'utf8')) as {
      current: { stepId: string } | null;
      state: string;
    };
    expect(journal).toMatchObject({ state: 'running', current: { stepId: 'fetch' } });
    await first.kill9();
    // kill -9 spares the step the agent was running, as a crash would: it must not outlive the test.
    process.kill(Number(readFileSync(path.join(dir, 'fetch.pid'), 'utf8')), 'SIGKILL');

    writeFileSync(path.join(dir, 'go'), '');
    const again = run(AGENT_BIN, args);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('resumed: interrupted inside fetch (exec): its contract says redo');
    expect(again.stdout).toContain('done before first');
    expect(lines(dir)).toEqual(['first', 'fetch-start', 'fetch-start', 'fetch-done', 'last']);
  });

  it('prints each step and exits 1 when one fails', () => {
    const dir = tempDir('failing');
    const file = path.join(dir, 'f.yaml');
    writeFileSync(
      file,
      `name: f\ndescription: d\nversions: { installed: { argv: [/bin/true], pattern: '(.*)' } }\nphases:\n  check:\n    - { id: boom, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo broken >&2; exit 4'] }\n`,
    );
    const r = run(AGENT_BIN, [
      'phase',
      'run',
      '--recipe',
      file,
      '--phase',
      'check',
      '--state-dir',
      path.join(dir, 's'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('▶ boom (exec)  test');
    expect(r.stdout).toMatch(/✗ boom .*STEP_FAILED/);
    expect(r.stdout).toContain('broken');
    expect(r.stdout).toContain('phase check: FAILED');
  });

  it('dry-runs a built-in recipe with its variables substituted', () => {
    const r = run(AGENT_BIN, [
      'phase',
      'run',
      '--recipe',
      path.resolve(__dirname, '../../recipes/bluemind.yaml'),
      '--phase',
      'upgrade',
      '--dry-run',
      '--var',
      'target=4.1.2',
      '--var',
      'configDir=/srv/etc',
      '--state-dir',
      tempDir('dry'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'would run backup-system (backup): {"timeoutMs":1800000,"retries":0,"paths":["/srv/etc",',
    );
    expect(r.stdout).toContain('would run apply-packages (apt)');
  });

  it('refuses an unknown phase and an undeclared var with exit 2', () => {
    const recipeFile = path.resolve(__dirname, '../../recipes/passbolt.yaml');
    const bad = run(AGENT_BIN, ['phase', 'run', '--recipe', recipeFile, '--phase', 'deploy']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      '--phase "deploy": use one of check, download, upgrade, finalize, verify, rollback',
    );
    const badVar = run(AGENT_BIN, [
      'phase',
      'run',
      '--recipe',
      recipeFile,
      '--phase',
      'check',
      '--var',
      'nope=1',
    ]);
    expect(badVar.code).toBe(2);
    expect(badVar.stderr).toContain('--var nope: the recipe declares no such var');
  });
});
