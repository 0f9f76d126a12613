/**
 * jest's node environment plus a leak check per test file. Before the file runs: a temporary
 * directory of its own under the run's root, exported as TMPDIR (os.tmpdir() reads it on each call,
 * and every child inherits it), and CONVOY_TEST_SUITE=<its id> in the environment of everything
 * it starts. After the file's last afterAll hook, the directories its helpers made to last the
 * file (temp-dirs.ts) are removed; then the file fails if its directory is still not empty,
 * if a process carrying its id is still alive, or if it left a handle open (leaks.ts, handles.ts);
 * what it left is reported, then killed, closed and removed, so that one leaking file neither
 * hangs the run nor blames the next.
 *
 * Why an environment and not an afterAll in a setupFilesAfterEnv file: jest-circus runs the
 * afterAll hooks of one block in the order they were added, and a setup file adds its hooks before
 * the test file does, so such a check would run before the file's own cleanup (measured on jest
 * 30). The environment sees `run_finish`, after every hook. And the sandbox's `process.env` is a
 * copy: TMPDIR set there reaches neither os.tmpdir() nor a spawned child, so the real one is set.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';
import { closeNewHandles, extraResources, handleBaseline, type HandleBaseline } from './handles';
import { bulletList, killAll, leftoverFiles, markedProcesses, RUN_MARKER, SUITE_MARKER } from './leaks';
import { takeRegisteredDirs } from './temp-dirs';

/** How long a file's cleanup may take to settle (a SIGTERMed child exiting, a socket closing). */
const SETTLE_MS = 5000;

interface Leaks {
  readonly processes: ReturnType<typeof markedProcesses>;
  readonly files: string[];
  readonly resources: string[];
}

export default class LeakCheckEnvironment extends TestEnvironment {
  private readonly suiteId: string;
  private readonly suiteDir: string;
  /** A root of its own when jest runs without global-setup.ts (another config); removed at teardown. */
  private readonly ownRoot: string | undefined;
  private readonly savedEnv: Readonly<Record<string, string | undefined>>;
  private readonly testPath: string;
  private baseline: HandleBaseline | undefined;
  private checked = false;

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    const runRoot = process.env[RUN_MARKER];
    const ownRoot = runRoot === undefined ? mkdtempSync(path.join(os.tmpdir(), 'convoy-test-')) : undefined;
    const name = path.basename(context.testPath).replace(/(\.test|\.suite)?\.[jt]s$/, '');
    const suiteId = `${name.slice(0, 40)}-${randomBytes(3).toString('hex')}`;
    const suiteDir = path.join(runRoot ?? ownRoot ?? os.tmpdir(), suiteId);
    mkdirSync(suiteDir);
    const savedEnv = { TMPDIR: process.env['TMPDIR'], [SUITE_MARKER]: process.env[SUITE_MARKER] };
    // Set before super(): the sandbox's process.env is a copy taken there.
    process.env['TMPDIR'] = suiteDir;
    process.env[SUITE_MARKER] = suiteId;
    super(config, context);
    Object.assign(this.global.process.env, { TMPDIR: suiteDir, [SUITE_MARKER]: suiteId });
    this.suiteId = suiteId;
    this.suiteDir = suiteDir;
    this.ownRoot = ownRoot;
    this.savedEnv = savedEnv;
    this.testPath = context.testPath;
  }

  override async setup(): Promise<void> {
    await super.setup();
    this.baseline = handleBaseline();
  }

  async handleTestEvent(event: Circus.Event, state: Circus.State): Promise<void> {
    if (event.name !== 'run_finish') return;
    this.checked = true;
    for (const dir of takeRegisteredDirs(this.global)) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // A mount still on it (EBUSY): the check below reports what stays.
      }
    }
    const report = await this.checkAndClean();
    if (report === undefined) return;
    const err = new Error(report);
    // One made-up frame: jest prints the lines above a frame as the message, and a frame in this
    // file would point at the check, not at the test file that leaked.
    err.stack = `Error: ${report}\n    at leak-check-environment:0:0`;
    state.unhandledErrors.push(err);
  }

  override async teardown(): Promise<void> {
    try {
      // A file that failed to load never reaches run_finish: clean up after it all the same.
      if (!this.checked) {
        const report = await this.checkAndClean(0);
        if (report !== undefined) process.stderr.write(`${report}\n`);
      }
      rmSync(this.suiteDir, { recursive: true, force: true });
      if (this.ownRoot !== undefined) rmSync(this.ownRoot, { recursive: true, force: true });
    } finally {
      for (const [k, v] of Object.entries(this.savedEnv)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await super.teardown();
    }
  }

  private leaks(): Leaks {
    let files: string[];
    try {
      files = readdirSync(this.suiteDir).length === 0 ? [] : leftoverFiles(this.suiteDir);
    } catch {
      files = [];
    }
    return {
      processes: markedProcesses(SUITE_MARKER, this.suiteId, new Set([process.pid])),
      files,
      resources: this.baseline === undefined ? [] : extraResources(this.baseline),
    };
  }

  /** Waits up to `settleMs` for the file's leftovers to go; reports and removes what stays. */
  private async checkAndClean(settleMs = SETTLE_MS): Promise<string | undefined> {
    const deadline = Date.now() + settleMs;
    let leaks = this.leaks();
    while (isLeaking(leaks) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      leaks = this.leaks();
    }
    if (!isLeaking(leaks)) return undefined;
    const parts: string[] = [];
    if (leaks.processes.length > 0) {
      killAll(leaks.processes);
      const list = leaks.processes.map((p) => `pid ${p.pid}: ${p.command}`);
      parts.push(`processes still running (killed now):\n${bulletList(list)}`);
    }
    if (leaks.resources.length > 0) {
      const handles = this.baseline === undefined ? [] : closeNewHandles(this.baseline);
      const what = handles.length > 0 ? `:\n${bulletList(handles)}` : ' (timers cannot be closed from here)';
      parts.push(`open handles (${leaks.resources.join(', ')}), closed now${what}`);
    }
    if (leaks.files.length > 0) {
      parts.push(
        `files in its temporary directory ${this.suiteDir} (removed now):\n${bulletList(leaks.files)}`,
      );
      try {
        rmSync(this.suiteDir, { recursive: true, force: true });
      } catch (err) {
        parts.push(`and removing them failed: ${String(err)}`);
      }
    }
    const file = path.relative(process.cwd(), this.testPath);
    return `leak check: ${file} left behind ${parts.join('; and ')}`;
  }
}

function isLeaking(l: Leaks): boolean {
  return l.processes.length > 0 || l.files.length > 0 || l.resources.length > 0;
}
