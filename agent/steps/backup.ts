/**
 * `backup`: archives the step's paths with tar into `DEST/<backupId>/files.tar`, saves the stdout
 * of `dumpArgv` (when given) as `dump.sql`, and writes `manifest.json` with the sha256 of the
 * archive, of the dump and of every archived file (layout in backup-archive.ts). The result's
 * `backupId` and `data.dir` are what a restore step finds it by.
 *
 * The dump is read through the exec buffer, so it is bounded (DUMP_MAX_BYTES) and must be text,
 * as `pg_dump`/`mysqldump` write by default; a larger dump fails the step rather than being cut.
 * A relative `dest` is taken below the agent's state directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BackupStep } from '../../shared/recipe/types';
import { ConvoyError } from '../../shared/errors';
import {
  ARCHIVE_FILE,
  DUMP_FILE,
  inspectArchive,
  MANIFEST_FILE,
  tarCreateArgv,
  type BackupManifest,
} from './backup-archive';
import { runArgv } from './exec';
import { isInside, sha256File, writeFileAtomic } from './files';
import { settleStep, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

/** Largest database dump kept, bytes; it passes through memory. */
export const DUMP_MAX_BYTES = 256 * 1024 * 1024;

export const backupExecutor: StepExecutor<BackupStep> = {
  type: 'backup',
  contract: {
    checks: 'every path exists and archives cleanly; the dump command exits 0',
    changes: 'only a new directory DEST/<backupId>/ (mode 0700); the backed-up paths are only read',
    idempotent: true,
    interrupted: 'redo',
    rollback: 'none: a backup changes nothing on the application; old backups are kept',
  },
  run: (step, ctx) => settleStep(ctx, () => takeBackup(step, ctx)),
};

/** `20240131T235959Z-1a2b3c4d`: sortable by time, unique by the random part. */
export function newBackupId(nowMs: number): string {
  const stamp = new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

async function takeBackup(step: BackupStep, ctx: StepContext): Promise<StepSuccess> {
  const paths = checkedPaths(step);
  const dest = path.resolve(ctx.stateDir, step.dest);
  const blocking = paths.find((p) => isInside(p, dest));
  if (blocking !== undefined) {
    throw new ConvoyError(
      'STEP_FAILED',
      `backup destination ${dest} lies inside the backed-up path ${blocking}`,
    );
  }
  const backupId = newBackupId(ctx.now());
  const dir = path.join(dest, backupId);
  await mkdir(dest, { recursive: true, mode: 0o700 });
  await mkdir(dir, { mode: 0o700 });
  try {
    const manifest = await writeBackup(step, ctx, paths, backupId, dir);
    return {
      backupId,
      data: {
        dir,
        ...(manifest.archive ? { archive: path.join(dir, ARCHIVE_FILE) } : {}),
        ...(manifest.dump ? { dump: path.join(dir, DUMP_FILE) } : {}),
      },
      outputTail: `backup ${backupId}: ${manifest.entries.length} entries${manifest.dump ? ' and a dump' : ''}\n`,
    };
  } catch (err) {
    // A half-made backup is useless and could be mistaken for a whole one.
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function writeBackup(
  step: BackupStep,
  ctx: StepContext,
  paths: readonly string[],
  backupId: string,
  dir: string,
): Promise<BackupManifest> {
  let archive: BackupManifest['archive'];
  let entries: BackupManifest['entries'] = [];
  if (paths.length > 0) {
    const archivePath = path.join(dir, ARCHIVE_FILE);
    await runArgv(ctx, { argv: tarCreateArgv(archivePath, paths), timeoutMs: step.timeoutMs });
    entries = await inspectArchive(ctx, archivePath, paths, dir, step.timeoutMs);
    archive = { file: ARCHIVE_FILE, ...(await sha256File(archivePath)) };
  }
  let dump: BackupManifest['dump'];
  if (step.dumpArgv !== undefined) {
    const ran = await runArgv(ctx, {
      argv: step.dumpArgv,
      timeoutMs: step.timeoutMs,
      fullStdoutBytes: DUMP_MAX_BYTES,
    });
    const dumpPath = path.join(dir, DUMP_FILE);
    await writeFileAtomic(dumpPath, ran.stdout);
    dump = { file: DUMP_FILE, ...(await sha256File(dumpPath)) };
  }
  const manifest: BackupManifest = {
    format: 1,
    backupId,
    stepId: step.id,
    createdAt: new Date(ctx.now()).toISOString(),
    paths,
    ...(archive ? { archive } : {}),
    ...(dump ? { dump } : {}),
    entries,
  };
  await writeFileAtomic(path.join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Absolute, normalised, not `/` itself: tar archives members relative to `/`. */
function checkedPaths(step: BackupStep): string[] {
  if (step.paths.length === 0 && step.dumpArgv === undefined) {
    throw new ConvoyError('STEP_FAILED', 'a backup step needs paths, a dump command, or both');
  }
  return step.paths.map((p) => {
    if (!path.isAbsolute(p))
      throw new ConvoyError('STEP_FAILED', `backup path ${JSON.stringify(p)} is not absolute`);
    const normal = path.resolve(p);
    if (normal === '/') throw new ConvoyError('STEP_FAILED', 'backing up / as a whole is refused');
    return normal;
  });
}
