/**
 * `restore`: puts back the backup that the step `fromStep` took (found through its result's
 * `backupId` and `data.dir`). Everything is verified before anything on the host is touched: the
 * manifest's shape, the sha256 of the archive and of the dump, and, after extracting the archive
 * into a scratch directory, every entry against the manifest (nothing missing, nothing extra,
 * every file's sha256). Only then is the archive extracted over the original paths.
 *
 * Files created since the backup inside a restored directory are left in place; archived files
 * are replaced (tar unlinks before writing, so a symlink planted at an archived path is not
 * followed). A dump is loaded by `loadArgv` (the application's client, `mysql owncloud`), which
 * reads the verified dump on stdin, as `user` when given; without `loadArgv` it is verified only,
 * and `data.dump` names the file. Scratch space: the archive's size.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RestoreStep } from '../../shared/recipe/types';
import { ConvoyError } from '../../shared/errors';
import {
  ARCHIVE_FILE,
  compareEntries,
  DUMP_FILE,
  inspectArchive,
  MANIFEST_FILE,
  parseManifest,
  tarExtractArgv,
  type BackupManifest,
} from './backup-archive';
import { runArgv } from './exec';
import { sha256File } from './files';
import { settleStep, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

export const restoreExecutor: StepExecutor<RestoreStep> = {
  type: 'restore',
  contract: {
    checks: 'the manifest, the archive and dump sha256, and every archived file, before touching anything',
    changes: 'the backed-up paths, overwritten with their archived content',
    idempotent: true,
    interrupted: 'redo',
    rollback: 'none: restore is itself the rollback; a failed restore needs an operator',
  },
  run: (step, ctx) => settleStep(ctx, () => restoreBackup(step, ctx)),
};

async function restoreBackup(step: RestoreStep, ctx: StepContext): Promise<StepSuccess> {
  if (step.whenMissing === 'skip' && ctx.results.get(step.fromStep)?.ok !== true) {
    return {
      outputTail: `${step.fromStep} never completed: nothing was changed after it, nothing to restore\n`,
    };
  }
  const { backupId, dir } = findBackup(step, ctx);
  const manifest = await verifyBackup(ctx, dir, backupId, step.timeoutMs);
  if (manifest.archive !== undefined) {
    await runArgv(ctx, {
      argv: tarExtractArgv(path.join(dir, ARCHIVE_FILE), '/'),
      timeoutMs: step.timeoutMs,
    });
  }
  const loaded = await loadDump(step, ctx, manifest, dir, backupId);
  return {
    backupId,
    data: { dir, restored: manifest.paths, ...(manifest.dump ? { dump: path.join(dir, DUMP_FILE) } : {}) },
    outputTail: `restored backup ${backupId}: ${manifest.entries.length} entries\n${loaded}`,
  };
}

/** Feeds the verified dump to `loadArgv`; a step that asks for it on a backup without one fails. */
async function loadDump(
  step: RestoreStep,
  ctx: StepContext,
  manifest: BackupManifest,
  dir: string,
  backupId: string,
): Promise<string> {
  if (step.loadArgv === undefined) return '';
  if (manifest.dump === undefined)
    throw new ConvoyError('STEP_FAILED', `backup ${backupId} has no database dump to load`, {
      step: step.id,
    });
  const dump = await readFile(path.join(dir, DUMP_FILE), 'utf8');
  const ran = await runArgv(ctx, {
    argv: step.loadArgv,
    stdin: dump,
    user: step.user,
    timeoutMs: step.timeoutMs,
  });
  return `loaded the database dump with ${step.loadArgv[0] ?? ''}\n${ran.outputTail}`;
}

function findBackup(step: RestoreStep, ctx: StepContext): { backupId: string; dir: string } {
  const result = ctx.results.get(step.fromStep);
  const dir = result?.data?.['dir'];
  const backupId = result?.backupId;
  if (result === undefined || !result.ok || backupId === undefined || typeof dir !== 'string') {
    throw new ConvoyError('STEP_FAILED', `step ${step.fromStep} left no backup to restore`, {
      step: step.id,
    });
  }
  // The result may come from a journal on disk: its directory must be the backup it names.
  if (!path.isAbsolute(dir) || path.basename(dir) !== backupId) {
    throw new ConvoyError(
      'BACKUP_CORRUPT',
      `the result of ${step.fromStep} points at ${dir}, not at backup ${backupId}`,
    );
  }
  return { backupId, dir };
}

/** Every check restore makes before it writes anything; the manifest when all pass. */
export async function verifyBackup(
  ctx: StepContext,
  dir: string,
  backupId: string,
  timeoutMs: number,
): Promise<BackupManifest> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  } catch (err) {
    throw new ConvoyError(
      'BACKUP_CORRUPT',
      `backup ${backupId} has no readable manifest (interrupted?)`,
      {},
      { cause: err },
    );
  }
  const manifest = parseManifest(text, backupId);
  await checkDigest(path.join(dir, DUMP_FILE), manifest.dump, backupId);
  if (manifest.archive !== undefined) {
    const archive = path.join(dir, ARCHIVE_FILE);
    await checkDigest(archive, manifest.archive, backupId);
    const actual = await inspectArchive(ctx, archive, manifest.paths, dir, timeoutMs);
    const difference = compareEntries(manifest.entries, actual);
    if (difference !== null) throw new ConvoyError('BACKUP_CORRUPT', `backup ${backupId}: ${difference}`);
  }
  return manifest;
}

async function checkDigest(file: string, want: BackupManifest['dump'], backupId: string): Promise<void> {
  if (want === undefined) return;
  let got;
  try {
    got = await sha256File(file);
  } catch (err) {
    throw new ConvoyError(
      'BACKUP_CORRUPT',
      `backup ${backupId}: ${path.basename(file)} is unreadable`,
      {},
      { cause: err },
    );
  }
  if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
    throw new ConvoyError(
      'BACKUP_CORRUPT',
      `backup ${backupId}: ${path.basename(file)} does not match its sha256`,
    );
  }
}
