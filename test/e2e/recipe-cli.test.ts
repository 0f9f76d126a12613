/**
 * `convoy recipe validate` and `convoy recipe show` as an operator meets them (the built CLI from
 * dist/, no controller): one line per problem with its path, exit codes, --json, built-in names.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CONVOY_BIN, run, tempDir } from '../helpers/processes';

jest.setTimeout(30_000);

const GOOD = `
name: tiny
description: A tiny application
versions:
  installed: { argv: [tiny, --version], pattern: 'tiny ([0-9.]+)' }
cautions:
  - { from: 1.x, to: '>=2.0.0', message: Read the 2.0 notes first. }
secrets: [adminPassword]
vars: { root: /opt/tiny }
phases:
  check:
    - { id: version, type: exec, argv: ['{{var.root}}/bin/tiny', --version], source: 'doc, "Checking"' }
  upgrade:
    - { id: stop, type: service, action: stop, name: tiny, timeout: 90s, source: 'doc, "Upgrading" step 1' }
    - { id: swap, type: exec, argv: [tiny-upgrade, '{{target}}'], retries: 2, when: { role: web }, source: 'doc, "Upgrading" step 2' }
  finalize:
    role: core
    steps:
      - id: setup
        type: http
        action: request
        method: POST
        url: 'http://127.0.0.1:1/setup'
        basicAuth: { user: admin, passwordSecret: adminPassword }
        source: 'doc, "Finalizing"'
`;

const BAD = `
name: broken
versions:
  installed: { argv: [], pattern: 'x(' }
phases:
  upgrade:
    - { id: a, type: exec, argv: [x], timeout: soon, source: s }
    - { id: a, type: teleport, source: s }
`;

const dir = tempDir('recipe-cli');
const good = path.join(dir, 'tiny.yaml');
const bad = path.join(dir, 'broken.yaml');
writeFileSync(good, GOOD);
writeFileSync(bad, BAD);

describe('convoy recipe validate', () => {
  it('prints ok with the name and step count, and exits 0', () => {
    const r = run(CONVOY_BIN, ['recipe', 'validate', good]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`ok ${good} (tiny, 4 steps)\n`);
    expect(r.code).toBe(0);
  });

  it('prints every problem of every file, one per line with its path, and exits 1', () => {
    const missing = path.join(dir, 'nope.yaml');
    const r = run(CONVOY_BIN, ['recipe', 'validate', good, bad, missing]);
    expect(r.code).toBe(1);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      `ok ${good} (tiny, 4 steps)`,
      `${bad}: versions.installed.argv: must have at least 1 item`,
      expect.stringMatching(
        new RegExp(`^${bad}: versions.installed.pattern: must be a valid regular expression`),
      ),
      `${bad}: phases.upgrade[0].timeout: must be a positive duration such as 30s, 10m or 1h (got "soon")`,
      expect.stringMatching(
        new RegExp(`^${bad}: phases.upgrade\\[1\\].type: unknown type "teleport" \\(one of exec,`),
      ),
      `${bad}: phases.upgrade[1].id: duplicate id "a" (first at phases.upgrade[0].id)`,
      `${missing}: cannot read (ENOENT)`,
    ]);
    expect(r.stderr).toBe('convoy: RECIPE_INVALID: 2 of 3 recipe files invalid (listed above)\n');
  });

  it('prints JSON with --json', () => {
    const r = run(CONVOY_BIN, ['recipe', 'validate', '--json', good, bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('convoy: RECIPE_INVALID: 1 of 2 recipe files invalid (in the JSON)\n');
    const out = JSON.parse(r.stdout) as {
      files: { file: string; ok: boolean; problems?: { path: string }[] }[];
    };
    expect(out.files[0]).toEqual({ file: good, ok: true, name: 'tiny', steps: 4 });
    expect(out.files[1]).toMatchObject({ file: bad, ok: false });
    expect(out.files[1]?.problems?.map((p) => p.path)).toEqual([
      'versions.installed.argv',
      'versions.installed.pattern',
      'phases.upgrade[0].timeout',
      'phases.upgrade[1].type',
      'phases.upgrade[1].id',
    ]);
  });

  it('needs at least one file (exit 2)', () => {
    const r = run(CONVOY_BIN, ['recipe', 'validate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument/);
  });
});

describe('convoy recipe show', () => {
  it('prints the phases, steps, timeouts, sources and cautions of a file', () => {
    const r = run(CONVOY_BIN, ['recipe', 'show', good]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('tiny: A tiny application');
    expect(r.stdout).toContain('secrets: adminPassword');
    expect(r.stdout).toMatch(/^upgrade \(2 steps\)$/m);
    expect(r.stdout).toMatch(/^stop +service +1m30s +0 +- +doc, "Upgrading" step 1$/m);
    expect(r.stdout).toMatch(/^swap +exec +10m +2 +role web +doc, "Upgrading" step 2$/m);
    expect(r.stdout).toMatch(/^finalize \(1 step, once, on the host with role core\)$/m);
    expect(r.stdout).toContain('  1.x -> >=2.0.0: Read the 2.0 notes first.');
  });

  it('prints the compiled recipe with --json', () => {
    const r = run(CONVOY_BIN, ['recipe', 'show', '--json', good]);
    expect(r.code).toBe(0);
    const recipe = JSON.parse(r.stdout) as { phases: { upgrade: unknown[] } };
    expect(recipe.phases.upgrade[0]).toEqual({
      id: 'stop',
      type: 'service',
      action: 'stop',
      name: 'tiny',
      timeoutMs: 90_000,
      retries: 0,
      source: 'doc, "Upgrading" step 1',
    });
  });

  it('finds a built-in recipe by name in CONVOY_RECIPES_DIR', () => {
    const recipes = tempDir('recipes-dir');
    mkdirSync(recipes, { recursive: true });
    writeFileSync(path.join(recipes, 'tiny.yaml'), GOOD);
    const r = run(CONVOY_BIN, ['recipe', 'show', 'tiny'], { CONVOY_RECIPES_DIR: recipes });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('tiny: A tiny application');
    const unknown = run(CONVOY_BIN, ['recipe', 'show', 'nosuch'], { CONVOY_RECIPES_DIR: recipes });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      `convoy: INVALID_ARGUMENT: no built-in recipe "nosuch" in ${recipes} (available: tiny); give a path for a file\n`,
    );
  });

  it('refuses an invalid recipe in one line with exit 1', () => {
    const r = run(CONVOY_BIN, ['recipe', 'show', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      new RegExp(`^convoy: RECIPE_INVALID: ${bad}: versions.installed.argv: must have at least 1 item; `),
    );
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('prints the failure as JSON with --json', () => {
    const r = run(CONVOY_BIN, ['recipe', 'show', '--json', path.join(dir, 'nope.yaml')]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'RECIPE_INVALID', message: `${path.join(dir, 'nope.yaml')}: cannot read (ENOENT)` },
    });
  });
});
