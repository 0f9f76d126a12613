/**
 * `git`: applications deployed as a git working tree at a release tag (passbolt: `git fetch
 * --tags`, `git checkout tags/vX`, then the app's own migrations in later steps).
 *
 *   fetchTags    `git fetch --tags`; reports the versions of the tags matching tagPattern
 *   checkoutTag  `git checkout tags/v{{target}}`, after refusing what git itself would not:
 *                a dirty tree (DIRTY_TREE; git-ignored runtime files do not count) and a tag older
 *                than the one checked out (DOWNGRADE_REFUSED, semver order); already there is ok
 *                and changes nothing
 *
 * git does not refuse a downgrade, and with local changes it either fails half-way or carries
 * them over: both checks are ours, made before anything moves. A checkout killed half-way leaves
 * HEAD on the old tag and a tree that differs from it, so the redo refuses (DIRTY_TREE) rather than
 * guessing, and the phase's rollback takes over.
 */
import { ConvoyError } from '../../shared/errors';
import type { GitStep } from '../../shared/recipe/types';
import { classifyUpgrade } from '../../shared/semver-policy';
import { runArgv } from './exec';
import { settleStep, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

// Never wait for credentials on a terminal nobody watches; messages are parsed in English.
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C.UTF-8' };
const LIST_BYTES = 4 * 1024 * 1024;

export const gitExecutor: StepExecutor<GitStep> = {
  type: 'git',
  contract: {
    checks:
      'fetchTags: the fetch succeeds; checkoutTag: the tag for the target exists and matches tagPattern, ' +
      'the tree is clean, the target is not older than the tag checked out, and HEAD is the tag afterwards',
    changes:
      'fetchTags: refs and objects under .git; checkoutTag: the tracked files and HEAD (detached at the tag)',
    idempotent: true,
    interrupted: 'redo',
    rollback:
      'none of its own: this step refuses downgrades, so the rollback phase returns to the previous tag ' +
      'with its own steps (restore a backup, then an exec `git checkout tags/v{{installed}}`)',
  },
  run: (step, ctx) =>
    settleStep(ctx, () => (step.action === 'fetchTags' ? fetchTags(ctx, step) : checkoutTag(ctx, step))),
};

async function fetchTags(ctx: StepContext, step: GitStep): Promise<StepSuccess> {
  const ran = await git(ctx, step, ['fetch', '--tags']);
  const tags = await listTags(ctx, step);
  return {
    outputTail: ran.outputTail,
    exitCode: ran.exitCode,
    versions: tags.map(tagVersion),
    data: { tags },
  };
}

async function checkoutTag(ctx: StepContext, step: GitStep): Promise<StepSuccess> {
  const tag = targetTag(step, ctx.vars['target']);
  const exists = await git(ctx, step, ['rev-parse', '-q', '--verify', `refs/tags/${tag}^{commit}`], [0, 1]);
  if (exists.exitCode !== 0) {
    throw failure('STEP_FAILED', step, `tag ${tag} does not exist in ${step.dir} (run fetchTags first)`);
  }
  const current = await currentTag(ctx, step);
  const kind = classifyUpgrade(current, tag);
  const versions = [tagVersion(current), tagVersion(tag)];
  // Already there: nothing would move, so there is nothing to refuse either.
  if (kind === 'same') {
    return {
      outputTail: `already at ${current}\n`,
      versions,
      data: { from: current, to: tag, changed: false },
    };
  }
  if (kind === 'downgrade') {
    throw failure(
      'DOWNGRADE_REFUSED',
      step,
      `${tag} is older than the checked-out ${current}; refusing to downgrade`,
    );
  }
  if (kind === 'invalid') {
    throw failure(
      'STEP_FAILED',
      step,
      `cannot order ${current} and ${tag} as versions; refusing to check out`,
    );
  }
  await refuseDirtyTree(ctx, step, tag);
  const ran = await git(ctx, step, ['-c', 'advice.detachedHead=false', 'checkout', `tags/${tag}`]);
  const head = (await git(ctx, step, ['rev-parse', 'HEAD'])).stdout.trim();
  const want = (await git(ctx, step, ['rev-parse', `refs/tags/${tag}^{commit}`])).stdout.trim();
  if (head !== want)
    throw failure('STEP_FAILED', step, `HEAD is ${head}, not ${tag} (${want}), after checkout`);
  return {
    outputTail: ran.outputTail,
    exitCode: ran.exitCode,
    versions,
    data: { from: current, to: tag, changed: true },
  };
}

/** Uncommitted changes and untracked files refuse; `status` leaves git-ignored files out by default. */
async function refuseDirtyTree(ctx: StepContext, step: GitStep, tag: string): Promise<void> {
  const status = await git(ctx, step, ['status', '--porcelain'], [0], LIST_BYTES);
  const entries = status.stdout.split('\n').filter((line) => line.trim() !== '');
  if (entries.length === 0) return;
  // Porcelain lines are `XY PATH`: two status columns (either may be a space), a space, the path.
  const shown = entries
    .slice(0, 5)
    .map((line) => line.slice(3))
    .join(', ');
  const more = entries.length > 5 ? ` and ${entries.length - 5} more` : '';
  throw failure(
    'DIRTY_TREE',
    step,
    `${step.dir} has local changes (${shown}${more}); refusing to check out ${tag}`,
  );
}

/** `v` + target, unless the target already names the tag; it must match the step's tagPattern. */
export function targetTag(step: GitStep, target: string | undefined): string {
  if (target === undefined || target.trim() === '') {
    throw failure('STEP_FAILED', step, 'checkoutTag needs a target version and none was given');
  }
  const tag = /^[vV]/.test(target) ? target.trim() : `v${target.trim()}`;
  if (!globToRegExp(step.tagPattern).test(tag)) {
    throw failure('STEP_FAILED', step, `tag ${tag} does not match the step's tagPattern ${step.tagPattern}`);
  }
  return tag;
}

/** The newest tag matching tagPattern on HEAD itself, else the nearest one HEAD descends from. */
async function currentTag(ctx: StepContext, step: GitStep): Promise<string> {
  const onHead = await git(ctx, step, [
    'tag',
    '--points-at',
    'HEAD',
    '-l',
    step.tagPattern,
    '--sort=-v:refname',
  ]);
  const exact = onHead.stdout.split('\n').find((t) => t.trim() !== '');
  if (exact !== undefined) return exact.trim();
  const described = await git(
    ctx,
    step,
    ['describe', '--tags', '--abbrev=0', '--match', step.tagPattern],
    [0, 128],
  );
  const nearest = described.stdout.trim();
  if (described.exitCode !== 0 || nearest === '') {
    throw failure(
      'STEP_FAILED',
      step,
      `no tag matching ${step.tagPattern} reaches HEAD; cannot tell the version checked out`,
    );
  }
  return nearest;
}

async function listTags(ctx: StepContext, step: GitStep): Promise<string[]> {
  const listed = await git(ctx, step, ['tag', '-l', step.tagPattern, '--sort=-v:refname'], [0], LIST_BYTES);
  return listed.stdout.split('\n').filter((t) => t.trim() !== '');
}

function git(
  ctx: StepContext,
  step: GitStep,
  args: readonly string[],
  acceptExitCodes: readonly number[] = [0],
  fullStdoutBytes = 64 * 1024,
): ReturnType<typeof runArgv> {
  return runArgv(ctx, {
    argv: ['git', ...args],
    env: GIT_ENV,
    cwd: step.dir,
    timeoutMs: step.timeoutMs,
    acceptExitCodes,
    fullStdoutBytes,
  });
}

function tagVersion(tag: string): string {
  return tag.replace(/^[vV]/, '');
}

/** git's tag globs as used here: `*` and `?`, everything else literal. */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function failure(
  code: 'STEP_FAILED' | 'DIRTY_TREE' | 'DOWNGRADE_REFUSED',
  step: GitStep,
  message: string,
): ConvoyError {
  return new ConvoyError(code, message, { step: step.id });
}
