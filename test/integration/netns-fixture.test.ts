/**
 * The network-namespace fixture the multi-host end-to-end tests stand on: hosts reach the
 * controller's namespace over TCP, the root namespace keeps its links and addresses, a partition
 * cuts one host off and heal brings it back, and destroy leaves nothing behind.
 *
 * Every connection runs inside namespaces: the root namespace never dials 10.200.0.x.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import {
  createNetns,
  netnsUnavailableReason,
  uniqueNetnsPrefix,
  type Netns,
  type NetnsHost,
} from '../../scripts/fixtures/netns';
import { skipReason } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const unavailable = skipReason('netns fixture', ['ip'], netnsUnavailableReason);
const describeNetns = unavailable === undefined ? describe : describe.skip;

/** A TCP echo server on the controller's bridge address; prints its port. */
const ECHO_SERVER = `
require('net').createServer((s) => s.pipe(s)).listen(0, process.argv[1], function () {
  process.stdout.write('listening ' + this.address().port + '\\n');
});`;

/** Sends argv[3] to argv[1]:argv[2] and prints the echo; exit 2 with the error code on failure. */
const ECHO_CLIENT = `
const [host, port, message] = process.argv.slice(1);
const s = require('net').connect({ host, port: Number(port) }, () => s.end(message));
let got = '';
s.setTimeout(3000, () => { process.stderr.write('ETIMEDOUT'); process.exit(3); });
s.on('data', (d) => (got += d));
s.on('end', () => process.stdout.write(got));
s.on('error', (e) => { process.stderr.write(String(e.code)); process.exit(2); });`;

/** What the root namespace looks like, minus the guard routes fixtures add while they run. */
function rootSnapshot(): { links: string; addresses: string; routes: string } {
  const ipOut = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
  return {
    links: ipOut('-o', 'link', 'show'),
    addresses: ipOut('-o', 'addr', 'show'),
    routes: ipOut('route', 'show')
      .split('\n')
      .filter((l) => !l.startsWith('unreachable 10.200.0.0/16 metric '))
      .join('\n'),
  };
}

function namespaceList(): string {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
}

function listeningPort(child: ChildProcess): Promise<number> {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  return waitFor('echo server to listen', () => {
    const m = /listening (\d+)/.exec(out);
    return m?.[1] === undefined ? undefined : Number(m[1]);
  });
}

describeNetns('netns fixture', () => {
  const before = unavailable === undefined ? rootSnapshot() : undefined;
  let netns: Netns;
  let echo: ChildProcess;
  let port: number;

  const echoFrom = (host: NetnsHost, message: string) =>
    netns.execIn(host, process.execPath, ['-e', ECHO_CLIENT, netns.ctl.address, String(port), message], {
      timeoutMs: 10_000,
    });

  beforeAll(async () => {
    netns = await createNetns(uniqueNetnsPrefix(), 2);
    echo = netns.spawnIn(netns.ctl, process.execPath, ['-e', ECHO_SERVER, netns.ctl.address], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    port = await listeningPort(echo);
  });
  afterAll(async () => {
    await netns?.destroy();
  });

  it('gives the controller 10.200.0.1 and host i 10.200.0.(10+i)', async () => {
    expect(netns.ctl).toEqual({ name: `${netns.prefix}ctl`, address: '10.200.0.1' });
    expect(netns.hosts).toEqual([
      { name: `${netns.prefix}h0`, address: '10.200.0.10' },
      { name: `${netns.prefix}h1`, address: '10.200.0.11' },
    ]);
    const eth0 = await netns.execIn(netns.hosts[1]!, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(eth0.stdout).toContain('inet 10.200.0.11/24');
  });

  it('lets both hosts reach a TCP server in the controller namespace', async () => {
    for (const [i, host] of netns.hosts.entries()) {
      const r = await echoFrom(host, `hello from h${i}`);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: `hello from h${i}` });
    }
  });

  it('leaves the root namespace untouched but for its own guard route', () => {
    const during = rootSnapshot();
    expect(during).toEqual(before);
    const routes = execFileSync('ip', ['route', 'show'], { encoding: 'utf8' });
    expect(routes.split('\n').map((l) => l.trim())).toContain(netns.guardRoute);
  });

  it('partition cuts one host off and heal brings it back', async () => {
    await netns.partition(0);
    const cut = await echoFrom(netns.hosts[0]!, 'during partition');
    expect(cut.code).not.toBe(0);
    expect(cut.stderr).toMatch(/ENETUNREACH|EHOSTUNREACH|ETIMEDOUT/);
    expect((await echoFrom(netns.hosts[1]!, 'other host')).stdout).toBe('other host');

    await netns.heal(0);
    await waitFor('host 0 to reach the controller again', async () => {
      const r = await echoFrom(netns.hosts[0]!, 'healed');
      return r.code === 0 && r.stdout === 'healed';
    });
  });

  it('destroy kills what runs inside, deletes every namespace and the guard route, and can run twice', async () => {
    const guard = netns.guardRoute;
    const exited = new Promise((resolve) => echo.once('exit', (_code, signal) => resolve(signal)));
    await netns.destroy();
    await netns.destroy();
    await expect(exited).resolves.toBe('SIGTERM');
    expect(namespaceList()).not.toContain(netns.prefix);
    const routes = execFileSync('ip', ['route', 'show'], { encoding: 'utf8' });
    expect(routes).not.toContain(guard);
    expect(rootSnapshot()).toEqual(before);
  });
});
