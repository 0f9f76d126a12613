/**
 * Disk space for `apt` downloadOnly: a free-space preflight before anything is fetched, and a
 * clean failure when the disk fills anyway.
 *
 * apt-get checks the archive cache's free space itself ("You don't have enough free space in
 * DIR"), aptitude does not: on a full disk it streams into `archives/partial/NAME.deb` until
 * ENOSPC, exits 255 and leaves that partial file behind (verified on a 1 MiB tmpfs). So the step
 * compares what the simulated upgrade says it will fetch ("Need to get 3164 kB of archives") with
 * the free space of the cache, and, should the download still run out of space (something else
 * filled the disk meanwhile), removes the partial downloads and reports DISK_FULL, never a
 * generic STEP_FAILED.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AptStep } from '../../shared/recipe/types';
import { runArgv } from './exec';
import { StepFailure } from './outcome';
import type { StepContext } from './step';

/** apt-get's own preflight refusal, and a write that hit ENOSPC (errno 28) under either front end. */
export const DISK_FULL_OUTPUT = /You don't have enough free space in|No space left on device|\(28: /;

/** apt's SizeToStr units: powers of 1000. */
const UNITS: Readonly<Record<string, number>> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/**
 * Bytes still to fetch, from "Need to get 3164 kB of archives" or "Need to get 1,2 MB/3164 kB of
 * archives" (the first figure is what is not cached yet); undefined when the output has no such line.
 */
export function parseNeedToGet(output: string): number | undefined {
  const m = /Need to get ([\d.,]+) ([kMGT]?B)(?:\/[\d.,]+ [kMGT]?B)? of archives/.exec(output);
  if (m?.[1] === undefined || m[2] === undefined) return undefined;
  const value = Number(m[1].replace(',', '.'));
  const unit = UNITS[m[2]];
  return Number.isFinite(value) && unit !== undefined ? Math.ceil(value * unit) : undefined;
}

/** The archive cache apt downloads into, as the host's apt configuration (APT_CONFIG included) says. */
export async function archiveCacheDir(ctx: StepContext, step: AptStep): Promise<string> {
  const ran = await runArgv(ctx, {
    argv: ['apt-config', 'shell', 'ARCHIVES', 'Dir::Cache::archives/d'],
    env: { LC_ALL: 'C.UTF-8' },
    timeoutMs: step.timeoutMs,
    fullStdoutBytes: 64 * 1024,
  });
  const m = /^ARCHIVES='(.+)'$/m.exec(ran.stdout);
  if (m?.[1] === undefined) {
    throw new StepFailure('STEP_FAILED', 'apt-config did not name the archive cache directory', {
      outputTail: ran.outputTail,
    });
  }
  return m[1];
}

/**
 * After a download that ran out of space: removes what apt left in `partial/` (incomplete files
 * only; complete .debs staged earlier stay) and returns the DISK_FULL failure to throw.
 */
export async function diskFullAfterDownload(dir: string, failure: StepFailure): Promise<StepFailure> {
  const partial = path.join(dir, 'partial');
  const left = await readdir(partial, { withFileTypes: true }).catch(() => []);
  for (const entry of left) if (entry.isFile()) await rm(path.join(partial, entry.name), { force: true });
  return new StepFailure(
    'DISK_FULL',
    `the disk holding ${dir} filled up during the download (no space left on device); ` +
      `the partial download was removed and nothing was staged`,
    failure.detail,
    { cause: failure },
  );
}
