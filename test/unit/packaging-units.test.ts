/**
 * The systemd units in packaging/systemd/. The agent's must equal agentUnit(), so that SSH
 * enrollment and the .deb install the same unit. Both must pass `systemd-analyze verify`, which
 * works offline (systemd need not be PID 1): it loads the unit with the host's systemd, checks every
 * directive and its dependencies, and checks that ExecStart's binary is executable. It only warns
 * on an unknown directive or a bad value unless `--recursive-errors=no` turns the unit's own
 * warnings into a failure; `--man=no` because a host without man pages is no fault of the unit.
 *
 * The controller also starts under strace, and every system call it makes must be allowed by its
 * unit's SystemCallFilter: a denied call would fail with EPERM only on a real host. Without
 * systemd-analyze or strace these fail under CI and are skipped elsewhere (require-tool.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentUnit } from '../../agent/install/systemd-unit';
import { itWithTools } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait';

const ROOT = path.resolve(__dirname, '../..');
const UNITS = ['convoy-agent.service', 'convoy-controller.service'] as const;
const unitPath = (name: string): string => path.join(ROOT, 'packaging/systemd', name);

interface Verdict {
  readonly code: number | null;
  readonly out: string;
}

/**
 * Verifies a copy in a temp dir (same file name: verify derives the unit name from it). The units
 * run /usr/bin/node, which the nodejs package provides; a test machine with node elsewhere gets a
 * copy that names its own node, so that only the ExecStart check sees a difference.
 */
function verifyUnit(name: string, text = readFileSync(unitPath(name), 'utf8')): Verdict {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convoy-unit-'));
  try {
    const file = path.join(dir, name);
    const node = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
    writeFileSync(file, text.replaceAll('ExecStart=/usr/bin/node ', `ExecStart=${node} `));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', '--recursive-errors=no', file], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('packaging/systemd units', () => {
  it('ships the agent unit that SSH enrollment writes', () => {
    expect(readFileSync(unitPath('convoy-agent.service'), 'utf8')).toBe(agentUnit());
  });

  it('never lets the controller map W+X memory off, which V8 needs', () => {
    expect(readFileSync(unitPath('convoy-controller.service'), 'utf8')).not.toMatch(
      /^MemoryDenyWriteExecute=/m,
    );
  });

  describe('systemd-analyze verify', () => {
    const itAnalyze = itWithTools('systemd-analyze verify', ['systemd-analyze']);

    itAnalyze.each(UNITS)('accepts %s without a warning', (name) => {
      expect(verifyUnit(name)).toEqual({ code: 0, out: '' });
    });

    // Proves the check can fail: systemd only warns on these, and the options make it fail.
    itAnalyze.each([
      ['a misspelt directive', 'ProtectSystem=strict', 'ProtectSytem=strict'],
      ['a bad value', 'Restart=on-failure', 'Restart=sometimes'],
      ['a missing binary', 'ExecStart=/usr/bin/node ', 'ExecStart=/nonexistent/node '],
    ])('rejects a controller unit with %s', (_what, from, to) => {
      const text = readFileSync(unitPath('convoy-controller.service'), 'utf8');
      expect(text).toContain(from);
      const verdict = verifyUnit('convoy-controller.service', text.replace(from, to));
      expect(verdict.code).not.toBe(0);
      expect(verdict.out).not.toBe('');
    });
  });

  itWithTools('the SystemCallFilter check', ['strace', 'prlimit', 'systemd-analyze'])(
    "allows every system call the controller makes starting and stopping (the unit's SystemCallFilter)",
    async () => {
      const allowed = filterAllows(readFileSync(unitPath('convoy-controller.service'), 'utf8'));
      const used = await controllerSyscalls();
      expect(used.size).toBeGreaterThan(20);
      // SQLite hands its journal and WAL files to the database's owner only when euid is 0; the
      // unit runs as convoy, so that fchown is ours to expect only when this test runs as root.
      if (process.getuid?.() === 0) used.delete('fchown');
      expect([...used].filter((s) => !allowed.has(s))).toEqual([]);
    },
    60_000,
  );
});

/** Allowed system calls: the union of the allow lines minus the union of the `~` lines. */
function filterAllows(unit: string): Set<string> {
  const allow = new Set<string>();
  const deny = new Set<string>();
  for (const [, value] of unit.matchAll(/^SystemCallFilter=(.*)$/gm)) {
    const line = value ?? '';
    const target = line.startsWith('~') ? deny : allow;
    for (const item of line.replace(/^~/, '').split(/\s+/).filter(Boolean))
      for (const call of expandSyscalls(item)) target.add(call);
  }
  return new Set([...allow].filter((s) => !deny.has(s)));
}

/** `@group` -> its system calls, through systemd-analyze's own tables (groups nest). */
function expandSyscalls(item: string, seen = new Set<string>()): string[] {
  if (!item.startsWith('@')) return [item];
  if (seen.has(item)) return [];
  seen.add(item);
  const r = spawnSync('systemd-analyze', ['syscall-filter', item], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`systemd-analyze syscall-filter ${item}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .flatMap((l) => expandSyscalls(l, seen));
}

/**
 * Names of the system calls `convoy controller start` makes until it listens, then until SIGTERM
 * stops it. A low open-files soft limit makes Node raise it, as it does under systemd (1024).
 */
async function controllerSyscalls(): Promise<Set<string>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convoy-strace-'));
  const trace = path.join(dir, 'trace');
  const stateDir = path.join(dir, 'state');
  const args = ['-f', '-qq', '-o', trace, 'prlimit', '--nofile=1024:4096', '--'];
  const child = spawn('strace', [
    ...args,
    process.execPath,
    path.join(ROOT, 'bin/convoy.js'),
    'controller',
    'start',
    '--state-dir',
    stateDir,
    '--listen',
    '127.0.0.1:0',
  ]);
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitFor('the controller to listen', () => output.includes('controller listening'), 20_000).catch(
      (err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}\n${output}`);
      },
    );
    const pid = Number(readFileSync(path.join(stateDir, 'controller.pid'), 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    await exited;
    const calls = new Set<string>();
    for (const [, name] of readFileSync(trace, 'utf8').matchAll(/^\d+ +([a-z0-9_]+)\(/gm))
      if (name !== undefined) calls.add(name);
    return calls;
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
