/**
 * One temporary root for the whole run, `convoy-test-*` under the machine's temporary directory:
 * exported as TMPDIR, so that os.tmpdir() in jest's workers and in every process a test starts
 * lands in it, and as CONVOY_TEST_RUN, which marks every process the run starts. Each test file
 * gets a directory of its own under it (leak-check-environment.ts); global-teardown.ts removes it.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RUN_MARKER, RUN_ROOT_PREFIX } from './leaks';

export default function globalSetup(): void {
  const root = mkdtempSync(path.join(os.tmpdir(), RUN_ROOT_PREFIX));
  process.env[RUN_MARKER] = root;
  process.env['TMPDIR'] = root;
}
