/**
 * The embedded default: a controller on SQLite plus three local agents, enrolled over loopback
 * with a one-time token, then `convoy status` and a signed `convoy ping`. Everything runs as the
 * real executables; the state lives in a temp directory (or --state-dir) and is removed at the
 * end unless --keep is given. The last line is one JSON summary for scripts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const CONVOY = path.join(ROOT, 'bin/convoy.js');
const AGENT = path.join(ROOT, 'bin/convoy-agent.js');
const AGENTS = 3;

interface Args {
  keep: boolean;
  dir: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { keep: false, dir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--keep') args.keep = true;
    else if (a === '--state-dir') args.dir = argv[++i];
    else if (a === '--help') {
      process.stdout.write('usage: npm run demo [-- --keep] [-- --state-dir DIR]\n');
      process.exit(0);
    } else {
      process.stderr.write(`demo: unknown argument ${a ?? ''}\n`);
      process.exit(2);
    }
  }
  return args;
}

function step(text: string): void {
  process.stdout.write(`\n==> ${text}\n`);
}

/** Runs a CLI, echoing its output, and fails the demo when it fails. */
function cli(bin: string, args: readonly string[], quiet = false, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  if (!quiet) process.stdout.write(r.stdout);
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args[0] ?? ''} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern.source} within ${timeoutMs} ms:\n${seen}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = pattern.exec(seen);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`controller exited with ${code}:\n${seen}`)));
  });
}

async function waitOnline(stateDir: string, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = cli(CONVOY, ['status', '--state-dir', stateDir, '--json'], true);
    const hosts = (JSON.parse(out) as { hosts: { online: boolean }[] }).hosts;
    if (hosts.filter((h) => h.online).length === count) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`fewer than ${count} agents online after ${timeoutMs} ms`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = args.dir ?? mkdtempSync(path.join(os.tmpdir(), 'convoy-demo-'));
  const stateDir = path.join(root, 'controller');
  const children: ChildProcess[] = [];
  const stopAll = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  process.on('SIGINT', () => {
    stopAll();
    process.exit(130);
  });
  try {
    step(`starting the controller (state in ${stateDir})`);
    const controller = spawn(
      process.execPath,
      [CONVOY, 'controller', 'start', '--state-dir', stateDir, '--listen', '127.0.0.1:0'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    children.push(controller);
    const [, address = '', key = ''] = await waitForLine(controller, /agents on (\S+); key (\S+)/, 20_000);
    process.stdout.write(`controller on ${address}, key ${key}\n`);

    step(`creating a one-time token for ${AGENTS} agents`);
    const token = cli(
      CONVOY,
      [
        'token',
        'create',
        '--state-dir',
        stateDir,
        '--ttl',
        '10m',
        '--uses',
        String(AGENTS),
        '--labels',
        'env=demo',
      ],
      true,
    ).trim();
    process.stdout.write(`token ${token.split('.')[0] ?? ''}.<secret>\n`);

    step(`enrolling and starting ${AGENTS} agents`);
    for (let i = 1; i <= AGENTS; i++) {
      const dir = path.join(root, `agent-${i}`);
      // The token travels in the environment, not on argv where `ps` would show it.
      const args = [
        'enroll',
        '--controller',
        address,
        '--controller-key',
        key,
        '--state-dir',
        dir,
        '--hostname',
        `demo-host-${i}`,
      ];
      cli(AGENT, args, false, { CONVOY_ENROLL_TOKEN: token });
      children.push(spawn(process.execPath, [AGENT, 'run', '--state-dir', dir], { stdio: 'ignore' }));
    }
    await waitOnline(stateDir, AGENTS, 20_000);

    step('convoy status');
    cli(CONVOY, ['status', '--state-dir', stateDir]);

    step('convoy ping (a signed no-op to every agent, round trip per host)');
    cli(CONVOY, ['ping', '--state-dir', stateDir]);

    const status = JSON.parse(cli(CONVOY, ['status', '--state-dir', stateDir, '--json'], true)) as {
      hosts: { online: boolean }[];
    };
    const online = status.hosts.filter((h) => h.online).length;
    if (args.keep) {
      step(`leaving it running: convoy status --state-dir ${stateDir}  (Ctrl-C stops everything)`);
      process.stdout.write(
        JSON.stringify({ demo: 'ok', hosts: status.hosts.length, online, stateDir }) + '\n',
      );
      await new Promise(() => undefined);
    }
    process.stdout.write(JSON.stringify({ demo: 'ok', hosts: status.hosts.length, online }) + '\n');
  } finally {
    stopAll();
    if (!args.keep && args.dir === undefined) rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
