/**
 * `binary.replace`: installs the binary that the artifact step `fromStep` staged (and verified)
 * over `target`, refusing a rollback attack.
 *
 * Versions: the installed version is `vars.installed`, the new one `vars.target`, ordered by
 * classifyUpgrade. A downgrade, or a pair that cannot be ordered, is refused unless a downgrade
 * permit names it: `STATE/staging/<name>.permit` holds the JSON `{"name": "<artifact name>",
 * "version": "<target>"}` (optionally `"sha256"` binding it to the exact bytes), and
 * `<name>.permit.sig` its detached Ed25519 signature by a pinned release key (raw, hex or base64).
 * The signature is checked over the exact file bytes before the JSON is parsed. Release managers
 * sign permits offline with the release key; an operator places the two files in staging.
 *
 * Order of the swap, and why: copy to `target.new` in the target's directory (same file system,
 * so the rename is atomic); check its sha256 against what the artifact step verified; give it the
 * old owner and mode; `setcap` it (chown would clear capabilities, and a copy never has them);
 * hard-link the old binary as `target.previous` (same inode, so it keeps its capabilities and the
 * target never goes missing); rename `.new` over the target; fsync the directory.
 *
 * Rollback (`rollbackBinaryReplace`) renames `.previous` back over the target, but only when this
 * step's replacement is what is installed, so a stale `.previous` is never resurrected.
 */
import { constants } from 'node:fs';
import { chmod, chown, copyFile, link, lstat, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { verifyDetached } from '../../shared/ed25519';
import { ConvoyError } from '../../shared/errors';
import type { BinaryReplaceStep } from '../../shared/recipe/types';
import { classifyUpgrade } from '../../shared/semver-policy';
import { parseSignature, STAGING_DIR, stagedPath } from './artifact';
import { runArgv } from './exec';
import { fsyncDir, sha256File } from './files';
import { settleStep, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor, StepResult } from './step';

interface StagedBinary {
  readonly path: string;
  readonly name: string;
  readonly sha256: string;
}

export const binaryReplaceExecutor: StepExecutor<BinaryReplaceStep> & {
  rollback(step: BinaryReplaceStep, ctx: StepContext): Promise<StepResult>;
} = {
  type: 'binary.replace',
  contract: {
    checks: 'staged sha256, no downgrade without a signed permit, setcap succeeds; all before the rename',
    changes: 'target (atomic rename), target.previous (hard link to the old binary)',
    idempotent: true,
    interrupted: 'rollback',
    rollback: 'rename target.previous back over target, when this step’s binary is the one installed',
  },
  run: (step, ctx) => settleStep(ctx, () => replaceBinary(step, ctx)),
  rollback: (step, ctx) => settleStep(ctx, () => rollbackBinaryReplace(step, ctx)),
};

async function replaceBinary(step: BinaryReplaceStep, ctx: StepContext): Promise<StepSuccess> {
  const staged = findStaged(step, ctx);
  const target = checkedTarget(step);
  const previous = `${target}.previous`;
  const old = await lstat(target);
  if (!old.isFile()) throw new ConvoyError('STEP_FAILED', `${target} is not a regular file (a symlink?)`);
  if ((await sha256File(target)).sha256 === staged.sha256) {
    return {
      data: { target, previous, sha256: staged.sha256, replaced: false },
      outputTail: 'already installed\n',
    };
  }
  await checkVersionOrder(ctx, staged);
  const fresh = `${target}.new`;
  await rm(fresh, { force: true });
  try {
    await copyFile(staged.path, fresh, constants.COPYFILE_EXCL);
    if ((await sha256File(fresh)).sha256 !== staged.sha256) {
      throw new ConvoyError(
        'ARTIFACT_REJECTED',
        `${staged.name} no longer matches the sha256 verified when it was staged`,
      );
    }
    await chown(fresh, old.uid, old.gid);
    await chmod(fresh, old.mode & 0o7777);
    if (step.setcap !== undefined) {
      await runArgv(ctx, { argv: ['setcap', checkedCaps(step.setcap), fresh], timeoutMs: step.timeoutMs });
    }
    await syncFile(fresh);
    await rm(previous, { force: true });
    await link(target, previous);
    await rename(fresh, target);
    await fsyncDir(path.dirname(target));
  } catch (err) {
    await rm(fresh, { force: true });
    throw err;
  }
  return {
    data: { target, previous, sha256: staged.sha256, replaced: true },
    outputTail: `replaced ${target}\n`,
  };
}

/** Undoes replaceBinary; idempotent (a second call finds no `.previous` and does nothing). */
export async function rollbackBinaryReplace(step: BinaryReplaceStep, ctx: StepContext): Promise<StepSuccess> {
  const target = checkedTarget(step);
  const previous = `${target}.previous`;
  await rm(`${target}.new`, { force: true });
  const exists = await lstat(previous).then(
    () => true,
    () => false,
  );
  const own = ctx.results.get(step.id);
  // Without a finished result (the agent died mid-step), the installed bytes tell whether the swap happened.
  const swapped =
    own?.ok === true ? own.data?.['replaced'] === true : await installedIs(target, stagedSha(step, ctx));
  if (!exists || !swapped) return { data: { target, restored: false }, outputTail: 'nothing to undo\n' };
  await rename(previous, target);
  await fsyncDir(path.dirname(target));
  return { data: { target, restored: true }, outputTail: `restored the previous ${target}\n` };
}

function findStaged(step: BinaryReplaceStep, ctx: StepContext): StagedBinary {
  const result = ctx.results.get(step.fromStep);
  const file = result?.data?.['path'];
  const sha256 = result?.data?.['sha256'];
  if (result?.ok !== true || typeof file !== 'string' || typeof sha256 !== 'string') {
    throw new ConvoyError('STEP_FAILED', `step ${step.fromStep} staged no artifact`, { step: step.id });
  }
  // Results can come back from a journal on disk: the path must still be a staged name.
  const name = path.basename(file);
  if (stagedPath(path.join(ctx.stateDir, STAGING_DIR), name) !== path.resolve(file)) {
    throw new ConvoyError('ARTIFACT_REJECTED', `${file} is not inside the staging directory`);
  }
  return { path: path.resolve(file), name, sha256 };
}

function stagedSha(step: BinaryReplaceStep, ctx: StepContext): string | undefined {
  const sha = ctx.results.get(step.fromStep)?.data?.['sha256'];
  return typeof sha === 'string' ? sha : undefined;
}

async function installedIs(target: string, sha256: string | undefined): Promise<boolean> {
  if (sha256 === undefined) return false;
  return (await sha256File(target)).sha256 === sha256;
}

function checkedTarget(step: BinaryReplaceStep): string {
  if (!path.isAbsolute(step.target)) {
    throw new ConvoyError(
      'STEP_FAILED',
      `binary.replace target ${JSON.stringify(step.target)} is not absolute`,
    );
  }
  return path.resolve(step.target);
}

/**
 * A capability text for setcap(8) (`cap_a,cap_b=+ep`, clauses separated by spaces), starting with
 * a capability name, so that setcap can never read it as an option.
 */
function checkedCaps(caps: string): string {
  const clause = '[a-z0-9_]+(?:,[a-z0-9_]+)*(?:[=+-][eip]*)+';
  if (!new RegExp(`^${clause}(?:\\s+${clause})*$`, 'i').test(caps)) {
    throw new ConvoyError('STEP_FAILED', `setcap ${JSON.stringify(caps)} is not a capability text`);
  }
  return caps;
}

async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Refuses a downgrade (or an unorderable pair) unless a signed permit names this exact release. */
async function checkVersionOrder(ctx: StepContext, staged: StagedBinary): Promise<void> {
  const installed = ctx.vars['installed'] ?? '';
  const target = ctx.vars['target'] ?? '';
  const kind = classifyUpgrade(installed, target);
  if (kind !== 'downgrade' && kind !== 'invalid') return;
  const what =
    kind === 'downgrade'
      ? `${installed} -> ${target} is a downgrade`
      : `cannot order installed ${JSON.stringify(installed)} and target ${JSON.stringify(target)}`;
  const permit = await readPermit(ctx, staged);
  if (permit === null) throw new ConvoyError('DOWNGRADE_REFUSED', `${what} and no signed permit names it`);
  if (permit.name !== staged.name || permit.version !== target) {
    throw new ConvoyError(
      'DOWNGRADE_REFUSED',
      `${what} and the permit names ${permit.name} ${permit.version}`,
    );
  }
  if (permit.sha256 !== undefined && permit.sha256 !== staged.sha256) {
    throw new ConvoyError('DOWNGRADE_REFUSED', `${what} and the permit is for other bytes`);
  }
}

interface DowngradePermit {
  readonly name: string;
  readonly version: string;
  readonly sha256?: string;
}

/** The verified permit, or null when there is none; a bad signature or shape is a refusal. */
async function readPermit(ctx: StepContext, staged: StagedBinary): Promise<DowngradePermit | null> {
  const file = `${staged.path}.permit`;
  let bytes: Buffer;
  let sig: Buffer;
  try {
    bytes = await readFile(file);
    sig = await readFile(`${file}.sig`);
  } catch {
    return null;
  }
  let signature: Uint8Array;
  try {
    signature = parseSignature(sig);
  } catch {
    throw new ConvoyError('DOWNGRADE_REFUSED', 'the downgrade permit signature is malformed');
  }
  if (!ctx.releaseKeys.some((key) => verifyDetached(bytes, signature, key))) {
    throw new ConvoyError('DOWNGRADE_REFUSED', 'the downgrade permit is not signed by a pinned release key');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ConvoyError('DOWNGRADE_REFUSED', 'the downgrade permit is not JSON');
  }
  const p = parsed as Partial<DowngradePermit> | null;
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.name !== 'string' ||
    typeof p.version !== 'string' ||
    (p.sha256 !== undefined && typeof p.sha256 !== 'string')
  ) {
    throw new ConvoyError(
      'DOWNGRADE_REFUSED',
      'the downgrade permit must be {"name", "version"[, "sha256"]}',
    );
  }
  return { name: p.name, version: p.version, ...(p.sha256 === undefined ? {} : { sha256: p.sha256 }) };
}
