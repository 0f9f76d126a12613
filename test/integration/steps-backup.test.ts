/** backup and restore with real files and real GNU tar: round trip, tampering, dumps. */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { backupExecutor } from '../../agent/steps/backup';
import { restoreExecutor } from '../../agent/steps/restore';
import type { StepResult } from '../../agent/steps/step';
import type { BackupStep, RestoreStep } from '../../shared/recipe/types';
import { tempDir } from '../helpers/processes';
import { stepBase, stepContext } from '../helpers/step-context';

interface App {
  readonly root: string;
  readonly config: string;
  readonly data: string;
  readonly extra: string;
}

/** A little application: a config file and a data directory with a nested file and a symlink. */
function makeApp(): App {
  const root = tempDir('backup-app');
  const config = path.join(root, 'app.ini');
  const data = path.join(root, 'data');
  mkdirSync(path.join(data, 'nested'), { recursive: true });
  writeFileSync(config, '[app]\nversion=1.0.0\n', { mode: 0o640 });
  writeFileSync(path.join(data, 'nested', 'store.db'), Buffer.from([0, 1, 2, 3, 255]));
  symlinkSync('nested/store.db', path.join(data, 'current'));
  return { root, config, data, extra: path.join(root, 'not-backed-up.txt') };
}

function backupStep(app: App, extra: Partial<BackupStep> = {}): BackupStep {
  return { ...stepBase('backup'), type: 'backup', paths: [app.config, app.data], dest: 'backups', ...extra };
}

const restoreStep: RestoreStep = { ...stepBase('restore'), type: 'restore', fromStep: 'backup' };

async function backUp(
  app: App,
  extra: Partial<BackupStep> = {},
): Promise<{ result: StepResult; dir: string }> {
  const ctx = stepContext();
  const result = await backupExecutor.run(backupStep(app, extra), ctx);
  expect(result.error).toBeUndefined();
  return { result, dir: result.data?.['dir'] as string };
}

function vandalise(app: App): void {
  writeFileSync(app.config, '[app]\nversion=2.0.0\n');
  rmSync(path.join(app.data, 'nested', 'store.db'));
  writeFileSync(app.extra, 'left alone');
}

describe('backup step', () => {
  it('writes an archive and a manifest with the sha256 of the archive and every file', async () => {
    const app = makeApp();
    const { result, dir } = await backUp(app);
    expect(result.backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(path.basename(dir)).toBe(result.backupId);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.archive).toMatchObject({
      file: 'files.tar',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(manifest.entries).toEqual([
      { path: app.config, type: 'file', sha256: expect.any(String), bytes: 20 },
      { path: app.data, type: 'dir' },
      { path: path.join(app.data, 'current'), type: 'symlink', target: 'nested/store.db' },
      { path: path.join(app.data, 'nested'), type: 'dir' },
      { path: path.join(app.data, 'nested', 'store.db'), type: 'file', sha256: expect.any(String), bytes: 5 },
    ]);
  });

  it('saves the dump command stdout as dump.sql with its sha256', async () => {
    const app = makeApp();
    const dumpArgv = [process.execPath, '-e', 'console.log("CREATE TABLE t (id int);")'];
    const { dir } = await backUp(app, { dumpArgv });
    expect(readFileSync(path.join(dir, 'dump.sql'), 'utf8')).toBe('CREATE TABLE t (id int);\n');
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.dump).toMatchObject({ file: 'dump.sql', bytes: 25 });
  });

  it('fails when the dump command fails, and leaves no half-made backup', async () => {
    const app = makeApp();
    const ctx = stepContext();
    const result = await backupExecutor.run(backupStep(app, { dumpArgv: ['false'] }), ctx);
    expect(result.error?.code).toBe('STEP_FAILED');
    const backups = path.join(ctx.stateDir, 'backups');
    expect(existsSync(backups) ? readdirSync(backups) : []).toEqual([]);
  });

  it('fails on a missing path', async () => {
    const app = makeApp();
    const result = await backupExecutor.run(
      backupStep(app, { paths: [path.join(app.root, 'missing')] }),
      stepContext(),
    );
    expect(result.error?.code).toBe('STEP_FAILED');
  });
});

describe('restore step', () => {
  it('brings the backed-up files back after they changed', async () => {
    const app = makeApp();
    const { result } = await backUp(app);
    vandalise(app);
    const restored = await restoreExecutor.run(
      restoreStep,
      stepContext({ results: new Map([['backup', result]]) }),
    );
    expect(restored.error).toBeUndefined();
    expect(readFileSync(app.config, 'utf8')).toBe('[app]\nversion=1.0.0\n');
    expect(statSync(app.config).mode & 0o777).toBe(0o640);
    expect(readFileSync(path.join(app.data, 'current'))).toEqual(Buffer.from([0, 1, 2, 3, 255]));
    expect(readFileSync(app.extra, 'utf8')).toBe('left alone');
  });

  it('refuses a tampered archive before touching anything', async () => {
    const app = makeApp();
    const { result, dir } = await backUp(app);
    const archive = path.join(dir, 'files.tar');
    const bytes = readFileSync(archive);
    const at = bytes.indexOf('version=1.0.0');
    bytes[at + 8] = '9'.charCodeAt(0);
    writeFileSync(archive, bytes);
    vandalise(app);
    const restored = await restoreExecutor.run(
      restoreStep,
      stepContext({ results: new Map([['backup', result]]) }),
    );
    expect(restored.error).toEqual({
      code: 'BACKUP_CORRUPT',
      message: `backup ${result.backupId}: files.tar does not match its sha256`,
    });
    expect(readFileSync(app.config, 'utf8')).toBe('[app]\nversion=2.0.0\n');
  });

  it('refuses an archive whose own checksum was forged but whose files differ from the manifest', async () => {
    const app = makeApp();
    const { result, dir } = await backUp(app);
    const archive = path.join(dir, 'files.tar');
    const bytes = readFileSync(archive);
    const at = bytes.indexOf('version=1.0.0');
    bytes[at + 8] = '9'.charCodeAt(0);
    writeFileSync(archive, bytes);
    // Update the archive digest, as someone who knows the format would; tar does not check content.
    const manifestPath = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    manifest.archive.sha256 = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(manifestPath, JSON.stringify(manifest));
    vandalise(app);
    const restored = await restoreExecutor.run(
      restoreStep,
      stepContext({ results: new Map([['backup', result]]) }),
    );
    expect(restored.error).toEqual({
      code: 'BACKUP_CORRUPT',
      message: `backup ${result.backupId}: ${app.config} does not match its sha256`,
    });
    expect(readFileSync(app.config, 'utf8')).toBe('[app]\nversion=2.0.0\n');
  });

  it('refuses a tampered dump and a missing manifest', async () => {
    const app = makeApp();
    const { result, dir } = await backUp(app, { dumpArgv: ['echo', 'SELECT 1;'] });
    writeFileSync(path.join(dir, 'dump.sql'), 'DROP TABLE users;\n');
    const ctx = stepContext({ results: new Map([['backup', result]]) });
    expect((await restoreExecutor.run(restoreStep, ctx)).error?.message).toBe(
      `backup ${result.backupId}: dump.sql does not match its sha256`,
    );
    rmSync(path.join(dir, 'manifest.json'));
    expect((await restoreExecutor.run(restoreStep, ctx)).error?.code).toBe('BACKUP_CORRUPT');
  });

  it('fails clearly when the backup step left no result', async () => {
    const restored = await restoreExecutor.run(restoreStep, stepContext());
    expect(restored.error).toEqual({ code: 'STEP_FAILED', message: 'step backup left no backup to restore' });
  });
});
