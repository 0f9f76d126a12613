/**
 * The on-disk form of a backup, shared by the backup and restore steps:
 *
 *   DEST/<backupId>/files.tar      the archived paths (GNU tar, members relative to /)
 *   DEST/<backupId>/dump.sql       stdout of the dump command, when the step has one
 *   DEST/<backupId>/manifest.json  sha256 of the archive, of the dump and of every archived file
 *
 * The manifest is written last, atomically: a directory without one is an interrupted backup and
 * is never restored. Entries are computed from the archive itself (extracted into a scratch
 * directory), not from the live files, so a file changing while tar reads it cannot make the
 * manifest describe something the archive does not hold; restore repeats exactly that inspection.
 */
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { ConvoyError } from '../../shared/errors';
import { runArgv } from './exec';
import { sha256File, type FileDigest } from './files';
import type { StepContext } from './step';

export const ARCHIVE_FILE = 'files.tar';
export const DUMP_FILE = 'dump.sql';
export const MANIFEST_FILE = 'manifest.json';

/** One archived path, as restore will recreate it. */
export interface ManifestEntry {
  /** Absolute path on the host. */
  readonly path: string;
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly sha256?: string;
  readonly bytes?: number;
  /** Symlink target. */
  readonly target?: string;
}

export interface BackupManifest {
  readonly format: 1;
  readonly backupId: string;
  readonly stepId: string;
  readonly createdAt: string;
  readonly paths: readonly string[];
  /** Absent when the step backs up only a dump. */
  readonly archive?: FileDigest & { readonly file: string };
  readonly dump?: FileDigest & { readonly file: string };
  readonly entries: readonly ManifestEntry[];
}

// xattrs carry file capabilities (security.capability): a restored binary keeps its setcap.
const TAR_COMMON = ['--numeric-owner', '--xattrs', '--xattrs-include=*'] as const;

/** Archives absolute paths relative to `/`, so extracting with `--directory /` puts them back. */
export function tarCreateArgv(archive: string, paths: readonly string[]): string[] {
  return [
    'tar',
    '--create',
    '--file',
    archive,
    '--directory',
    '/',
    ...TAR_COMMON,
    '--',
    ...paths.map(relativeToRoot),
  ];
}

/** Extracts over whatever is at `root`, replacing files (not following symlinks found there). */
export function tarExtractArgv(archive: string, root: string): string[] {
  return [
    'tar',
    '--extract',
    '--file',
    archive,
    '--directory',
    root,
    ...TAR_COMMON,
    '--same-permissions',
    '--same-owner',
  ];
}

function relativeToRoot(p: string): string {
  return path.relative('/', p);
}

/**
 * Extracts the archive into a scratch directory inside `workDir` and lists what it holds; fails
 * when it holds anything besides the backed-up paths (and the directories leading to them).
 */
export async function inspectArchive(
  ctx: StepContext,
  archive: string,
  paths: readonly string[],
  workDir: string,
  timeoutMs: number,
): Promise<ManifestEntry[]> {
  const scratch = await mkdtemp(path.join(workDir, '.inspect-'));
  try {
    await runArgv(ctx, { argv: tarExtractArgv(archive, scratch), timeoutMs });
    const entries: ManifestEntry[] = [];
    await walk(scratch, '/', paths, entries);
    return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function walk(
  realDir: string,
  shownDir: string,
  roots: readonly string[],
  out: ManifestEntry[],
): Promise<void> {
  for (const name of (await readdir(realDir)).sort()) {
    const real = path.join(realDir, name);
    const shown = path.join(shownDir, name);
    const underRoot = roots.some((r) => shown === r || shown.startsWith(`${r}/`));
    const aboveRoot = roots.some((r) => r.startsWith(`${shown}/`));
    if (!underRoot && !aboveRoot) {
      throw new ConvoyError('BACKUP_CORRUPT', `the archive holds ${shown}, which is not a backed-up path`);
    }
    const stat = await lstat(real);
    if (aboveRoot && !underRoot) {
      if (!stat.isDirectory())
        throw new ConvoyError('BACKUP_CORRUPT', `the archive holds ${shown} as a non-directory`);
      await walk(real, shown, roots, out);
    } else if (stat.isDirectory()) {
      out.push({ path: shown, type: 'dir' });
      await walk(real, shown, roots, out);
    } else if (stat.isFile()) {
      out.push({ path: shown, type: 'file', ...(await sha256File(real)) });
    } else if (stat.isSymbolicLink()) {
      out.push({ path: shown, type: 'symlink', target: await readlink(real) });
    } else {
      out.push({ path: shown, type: 'other' });
    }
  }
}

/** The first difference between what the manifest promises and what the archive holds, or null. */
export function compareEntries(
  expected: readonly ManifestEntry[],
  actual: readonly ManifestEntry[],
): string | null {
  const byPath = new Map(actual.map((e) => [e.path, e]));
  for (const want of expected) {
    const got = byPath.get(want.path);
    if (got === undefined) return `${want.path} is missing from the archive`;
    if (got.type !== want.type) return `${want.path} is a ${got.type} in the archive, not a ${want.type}`;
    if (got.sha256 !== want.sha256) return `${want.path} does not match its sha256`;
    if (got.target !== want.target) return `${want.path} points elsewhere than recorded`;
    byPath.delete(want.path);
  }
  const extra = byPath.keys().next();
  return extra.done === true ? null : `the archive holds ${extra.value}, which the manifest does not list`;
}

function isEntryShape(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const entry = e as Record<string, unknown>;
  return typeof entry['path'] === 'string' && typeof entry['type'] === 'string';
}

/** Parses manifest bytes; any shape problem is BACKUP_CORRUPT. */
export function parseManifest(text: string, backupId: string): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConvoyError('BACKUP_CORRUPT', `backup ${backupId}: manifest.json is not JSON`);
  }
  const m = raw as Partial<BackupManifest> | null;
  const digestOk = (d: unknown): boolean =>
    typeof d === 'object' &&
    d !== null &&
    typeof (d as FileDigest).sha256 === 'string' &&
    typeof (d as FileDigest).bytes === 'number';
  const ok =
    m !== null &&
    typeof m === 'object' &&
    m.format === 1 &&
    m.backupId === backupId &&
    Array.isArray(m.paths) &&
    m.paths.every((p) => typeof p === 'string' && path.isAbsolute(p)) &&
    Array.isArray(m.entries) &&
    (m.entries as unknown[]).every(isEntryShape) &&
    (m.archive === undefined || digestOk(m.archive)) &&
    (m.dump === undefined || digestOk(m.dump));
  if (!ok)
    throw new ConvoyError(
      'BACKUP_CORRUPT',
      `backup ${backupId}: manifest.json is malformed or names another backup`,
    );
  return m as BackupManifest;
}
