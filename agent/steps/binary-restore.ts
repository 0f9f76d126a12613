/**
 * `binary.restore`: the rollback-phase step that undoes a `binary.replace` (`fromStep`), renaming
 * `target.previous` back over `target`, but only when the bytes installed are the ones that step
 * put there. When the agent died inside the replace and left no result, the installed bytes are
 * compared with every artifact this run staged: a stale `.previous` from an older release is
 * never resurrected over a binary this run did not install.
 */
import { lstat, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ConvoyError } from '../../shared/errors';
import type { BinaryRestoreStep } from '../../shared/recipe/types';
import { fsyncDir, sha256File } from './files';
import { settleStep, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

export const binaryRestoreExecutor: StepExecutor<BinaryRestoreStep> = {
  type: 'binary.restore',
  contract: {
    checks: 'the installed bytes are the ones the binary.replace step (or an artifact of this run) put there',
    changes: 'target (atomic rename of target.previous over it)',
    idempotent: true,
    interrupted: 'redo',
    rollback: 'none: it is the rollback',
  },
  run: (step, ctx) => settleStep(ctx, () => restore(step, ctx)),
};

async function restore(step: BinaryRestoreStep, ctx: StepContext): Promise<StepSuccess> {
  if (!path.isAbsolute(step.target)) {
    throw new ConvoyError(
      'STEP_FAILED',
      `binary.restore target ${JSON.stringify(step.target)} is not absolute`,
    );
  }
  const target = path.resolve(step.target);
  const previous = `${target}.previous`;
  await rm(`${target}.new`, { force: true });
  const hasPrevious = await lstat(previous).then(
    () => true,
    () => false,
  );
  if (!hasPrevious) return { data: { target, restored: false }, outputTail: 'nothing to undo\n' };
  const installed = (await sha256File(target)).sha256;
  const replaced = ctx.results.get(step.fromStep);
  const ours =
    replaced?.ok === true
      ? replaced.data?.['replaced'] === true && replaced.data['sha256'] === installed
      : stagedThisRun(ctx).has(installed);
  if (!ours)
    return { data: { target, restored: false }, outputTail: 'the installed binary is not ours to undo\n' };
  await rename(previous, target);
  await fsyncDir(path.dirname(target));
  return { data: { target, restored: true }, outputTail: `restored the previous ${target}\n` };
}

/** sha256 of every artifact staged by the steps this run knows the results of. */
function stagedThisRun(ctx: StepContext): Set<string> {
  const out = new Set<string>();
  for (const r of ctx.results.values()) {
    const sha = r.data?.['sha256'];
    if (r.ok && typeof sha === 'string' && typeof r.data?.['path'] === 'string') out.add(sha);
  }
  return out;
}
