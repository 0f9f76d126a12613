/**
 * The git step against real git: a bare repository with annotated release tags and clones of it,
 * as a passbolt host has. Checks the tree and HEAD, not just the step's result.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gitExecutor } from '../../agent/steps/git';
import type { GitStep } from '../../shared/recipe/types';
import { createGitAppRepo, type GitAppRepo } from '../fixtures/git-repo';
import { runStep, stepBase } from '../helpers/step-context';

const step = (action: GitStep['action'], dir: string, tagPattern = 'v*'): GitStep => ({
  ...stepBase(`git-${action}`),
  type: 'git',
  action,
  dir,
  tagPattern,
});

function run(s: GitStep, target?: string) {
  return runStep(gitExecutor, s, { vars: target === undefined ? {} : { target } });
}

describe('git step', () => {
  let repo: GitAppRepo;
  /** Cloned when only v2.0.2 and v2.0.3 existed: fetchTags must bring the later ones. */
  let earlyClone: string;
  const head = async (dir: string) => (await repo.git(dir, ['rev-parse', 'HEAD'])).trim();
  const version = (dir: string) => readFileSync(path.join(dir, 'VERSION'), 'utf8').trim();

  beforeAll(async () => {
    repo = await createGitAppRepo(['2.0.2', '2.0.3']);
    earlyClone = await repo.cloneAt('v2.0.3');
    await repo.publish('2.1.0');
    await repo.publish('3.0.0');
  });
  afterAll(() => repo.cleanup());

  it('fetches new tags, then checks out v2.1.0 over v2.0.3 despite git-ignored runtime files', async () => {
    const dir = earlyClone;
    expect(await repo.git(dir, ['tag', '-l'])).not.toContain('v2.1.0');

    const fetched = await run(step('fetchTags', dir));
    expect(fetched).toMatchObject({ ok: true, versions: ['3.0.0', '2.1.0', '2.0.3', '2.0.2'] });

    // The app's own runtime state (tmp/, ignored) must not count as local changes.
    execFileSync(path.join(dir, 'bin/cake'), ['passbolt', 'migrate', '--backup']);
    expect(readFileSync(path.join(dir, 'tmp/migrations.applied'), 'utf8')).toContain('2.0.3.sh');

    const result = await run(step('checkoutTag', dir), '2.1.0');
    expect(result).toMatchObject({ ok: true, versions: ['2.0.3', '2.1.0'], data: { changed: true } });
    expect(version(dir)).toBe('2.1.0');
    expect(await head(dir)).toBe((await repo.git(dir, ['rev-parse', 'v2.1.0^{commit}'])).trim());
  });

  it('refuses a dirty tree and leaves it as it was', async () => {
    const dir = await repo.cloneAt('v2.0.3');
    writeFileSync(path.join(dir, 'VERSION'), '2.0.3-patched\n');
    const before = await head(dir);

    const result = await run(step('checkoutTag', dir), '2.1.0');
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('DIRTY_TREE');
    expect(result.error?.message).toContain('VERSION');
    expect(await head(dir)).toBe(before);
    expect(version(dir)).toBe('2.0.3-patched');
  });

  it('counts an untracked file as dirty', async () => {
    const dir = await repo.cloneAt('v2.0.3');
    writeFileSync(path.join(dir, 'local-hack.php'), '<?php\n');
    const result = await run(step('checkoutTag', dir), '2.1.0');
    expect(result.error?.code).toBe('DIRTY_TREE');
    expect(result.error?.message).toContain('local-hack.php');
  });

  it('refuses a downgrade, which git itself would do', async () => {
    const dir = await repo.cloneAt('v2.1.0');
    const before = await head(dir);
    const result = await run(step('checkoutTag', dir), '2.0.3');
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('DOWNGRADE_REFUSED');
    expect(result.error?.message).toContain('v2.0.3 is older than the checked-out v2.1.0');
    expect(await head(dir)).toBe(before);
    expect(version(dir)).toBe('2.1.0');
  });

  it('is ok and changes nothing when already at the target', async () => {
    const dir = await repo.cloneAt('v2.1.0');
    const before = await head(dir);
    const result = await run(step('checkoutTag', dir), 'v2.1.0');
    expect(result).toMatchObject({ ok: true, versions: ['2.1.0', '2.1.0'], data: { changed: false } });
    expect(await head(dir)).toBe(before);
    expect(await repo.git(dir, ['status', '--porcelain'])).toBe('');
  });

  it('fails clearly on a tag that does not exist or does not match the pattern', async () => {
    const dir = await repo.cloneAt('v2.0.3');
    const missing = await run(step('checkoutTag', dir), '9.9.9');
    expect(missing.error).toEqual({
      code: 'STEP_FAILED',
      message: `tag v9.9.9 does not exist in ${dir} (run fetchTags first)`,
    });
    const outside = await run(step('checkoutTag', dir, 'v2.*'), '3.0.0');
    expect(outside.error?.message).toBe("tag v3.0.0 does not match the step's tagPattern v2.*");
    const none = await run(step('checkoutTag', dir));
    expect(none.error?.message).toBe('checkoutTag needs a target version and none was given');
    expect(version(dir)).toBe('2.0.3');
  });
});
