/**
 * The leak check (test/setup/) can fail: a child jest with the project's environment, global setup
 * and teardown runs the suites in test/fixtures/leaky-suites/, four of which leave something
 * behind on purpose. Each of those must fail naming what it left, the tidy one must pass, the run
 * must exit non-zero by itself (no --forceExit), and nothing may outlive it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/processes';

jest.setTimeout(120_000);

const FIXTURES = path.join(ROOT, 'test/fixtures/leaky-suites');

interface JestRun {
  readonly code: number | null;
  readonly output: string;
}

function childConfig(dir: string): string {
  const setup = (file: string): string => path.join(ROOT, 'test/setup', file);
  const config = {
    rootDir: FIXTURES,
    testMatch: ['<rootDir>/*.suite.ts'],
    testEnvironment: setup('leak-check-environment.ts'),
    globalSetup: setup('global-setup.ts'),
    globalTeardown: setup('global-teardown.ts'),
    transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: path.join(ROOT, 'tsconfig.json') }] },
    cacheDirectory: path.join(dir, 'jest-cache'),
  };
  const file = path.join(dir, 'jest.config.js');
  writeFileSync(file, `module.exports = ${JSON.stringify(config, null, 2)};\n`);
  return file;
}

/** Runs jest to its own exit; SIGKILL after 100 s, which the assertions then show as a null code. */
function runJest(config: string): Promise<JestRun> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'node_modules/jest/bin/jest.js'), '--config', config, '--runInBand', '--ci'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Live processes whose command line is exactly `argv`. */
function processesRunning(argv: readonly string[]): number[] {
  const wanted = argv.join('\0');
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0$/, '') === wanted;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('leak check', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convoy-leak-check-'));
  let run: JestRun;

  beforeAll(async () => {
    run = await runJest(childConfig(dir));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The report block jest printed for one suite file. */
  const reportOf = (file: string): string => {
    const start = run.output.indexOf(`FAIL ${path.relative(ROOT, path.join(FIXTURES, file))}`);
    return start < 0 ? '' : run.output.slice(start, start + 1500);
  };

  it('fails the run, which still exits by itself', () => {
    expect(run.code).toBe(1);
    expect(run.output).toMatch(/Test Suites: 3 failed, 2 passed, 5 total/);
    expect(run.output).toContain(`PASS ${path.relative(ROOT, path.join(FIXTURES, 'cleans-up.suite.ts'))}`);
  });

  it('names a file left in the suite’s temporary directory', () => {
    expect(reportOf('leaves-a-file.suite.ts')).toMatch(
      /leak check: \S*leaves-a-file\.suite\.ts left behind files in its temporary directory \S+convoy-test-\w+\/leaves-a-file-\w+ \(removed now\):\n\s+- forgotten-by-a-leaky-suite/,
    );
  });

  it('names and kills a detached grandchild that carries the suite’s marker', () => {
    expect(reportOf('leaves-a-process.suite.ts')).toMatch(
      /left behind processes still running \(killed now\):\n\s+- pid \d+: sleep 3001/,
    );
    expect(processesRunning(['sleep', '3001'])).toEqual([]);
  });

  it('names and closes a server left listening', () => {
    expect(reportOf('leaves-a-handle.suite.ts')).toMatch(
      /left behind open handles \(TCPServerWrap x1\), closed now:\n\s+- a server listening on 127\.0\.0\.1:\d+/,
    );
  });

  it('has the global teardown fail on a file in the run’s root, and remove the root', () => {
    expect(run.output).toMatch(
      /leak check: the test run left behind files in the run's temporary root \S+convoy-test-\w+ \(removed now\):\n\s+- beside-the-suites/,
    );
    // The child's root was made under this suite's directory, its TMPDIR.
    expect(readdirSync(os.tmpdir()).filter((f) => f.startsWith('convoy-test-'))).toEqual([]);
    expect(existsSync(path.join(dir, 'jest.config.js'))).toBe(true);
  });
});
