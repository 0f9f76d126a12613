/**
 * The OpenSSH fixture SSH enrollment's end-to-end tests stand on: a real sshd that a client
 * checking the host key by fingerprint can log into as root, run commands on and upload to over
 * SFTP, whose sessions see the test's directories mounted over host paths (and only they do), and
 * that runs inside a host's network namespace too.
 *
 * Every connection to 10.200.0.x runs inside a namespace: the root namespace only dials loopback.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'ssh2';
import {
  createNetns,
  netnsUnavailableReason,
  uniqueNetnsPrefix,
  type Netns,
} from '../../scripts/fixtures/netns';
import { generateSshKey, startSshd, type SshKey, type SshdServer } from '../../scripts/fixtures/sshd';
import { waitFor } from '../helpers/wait';
import { tempDir } from '../helpers/processes';
import { skipReason } from '../helpers/require-tool';

jest.setTimeout(30_000);
const run = promisify(execFile);

type Ssh2Client = Client;

/** Computed here, not by the fixture, so that a wrong fixture fingerprint fails the test. */
function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

function connect(server: SshdServer, key: SshKey, expectedFingerprint: string): Promise<Ssh2Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('connection closed before ready')));
    client.connect({
      host: server.host,
      port: server.port,
      username: 'root',
      privateKey: readFileSync(key.privateKeyFile),
      hostVerifier: (hostKey: Buffer) => fingerprintOf(hostKey) === expectedFingerprint,
      readyTimeout: 10_000,
    });
  });
}

function execOver(
  client: Ssh2Client,
  command: string,
): Promise<{ code: unknown; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      stream.on('data', (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      stream.once('close', (code: unknown) => resolve({ code, stdout, stderr }));
    });
  });
}

function uploadOver(client: Ssh2Client, remotePath: string, data: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.sftp((err, sftp) => {
      if (err) return reject(err);
      sftp.writeFile(remotePath, data, (writeErr) => {
        sftp.end();
        if (writeErr) reject(writeErr);
        else resolve();
      });
    });
  });
}

async function keygenFingerprint(publicKeyFile: string): Promise<string | undefined> {
  const { stdout } = await run('ssh-keygen', ['-lf', publicKeyFile]);
  return stdout.split(' ')[1];
}

const dir = tempDir('sshd-fixture');
// A host path that exists nowhere else: sessions must see the mount, the shared filesystem must not.
const target = path.join(os.tmpdir(), `convoy-sshd-mnt-${randomBytes(4).toString('hex')}`);
let clientKey: SshKey;

beforeAll(async () => {
  clientKey = await generateSshKey(dir, 'client');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  // The fixture leaves the (empty) mount point behind; rmdir fails loudly if anything leaked into it.
  if (existsSync(target)) rmdirSync(target);
});

const noSshd = skipReason('sshd fixture', ['/usr/sbin/sshd', 'ssh-keygen', 'unshare']);
const describeSshd = noSshd === undefined ? describe : describe.skip;

describeSshd('sshd fixture › on loopback', () => {
  const source = path.join(dir, 'lo-source');
  let server: SshdServer;

  beforeAll(async () => {
    mkdirSync(source);
    writeFileSync(path.join(source, 'marker'), 'seen through the loopback mount\n');
    server = await startSshd({
      dir: path.join(dir, 'lo'),
      authorizedKeys: [clientKey.publicKeyLine],
      bindMounts: [{ source, target }],
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('listens on loopback and reports the fingerprints ssh-keygen -lf prints', async () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(clientKey.fingerprint).toBe(await keygenFingerprint(clientKey.publicKeyFile));
    const hostPub = path.join(dir, 'lo', 'ssh_host_ed25519_key.pub');
    expect(server.hostKeyFingerprint).toBe(await keygenFingerprint(hostPub));
    expect(server.hostPublicKeyLine).toBe(readFileSync(hostPub, 'utf8').split(' ').slice(0, 2).join(' '));
    expect(server.knownHostsLine('127.0.0.1')).toBe(`[127.0.0.1]:${server.port} ${server.hostPublicKeyLine}`);
  });

  it('lets a client that checks the host key run commands that see the bind-mounted source', async () => {
    const client = await connect(server, clientKey, server.hostKeyFingerprint);
    try {
      const r = await execOver(client, `cat ${target}/marker`);
      expect(r).toEqual({ code: 0, stdout: 'seen through the loopback mount\n', stderr: '' });
    } finally {
      client.end();
    }
    // The mount lives only in sshd's namespace: the shared filesystem keeps an empty mount point.
    expect(readdirSync(target)).toEqual([]);
  });

  it('puts a file uploaded over SFTP into the target in the source directory', async () => {
    const client = await connect(server, clientKey, server.hostKeyFingerprint);
    try {
      await uploadOver(client, `${target}/uploaded.txt`, 'uploaded over sftp');
    } finally {
      client.end();
    }
    expect(readFileSync(path.join(source, 'uploaded.txt'), 'utf8')).toBe('uploaded over sftp');
  });

  it('refuses, before authentication, a host key whose fingerprint is not the expected one', async () => {
    const accepted = (): number =>
      readFileSync(server.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('Accepted publickey')).length;
    const acceptedBefore = accepted();
    const presented: string[] = [];
    const client = new Client();
    const outcome = new Promise<string>((resolve) => {
      client.once('ready', () => resolve('ready'));
      client.once('error', (err: Error) => resolve(`error: ${err.message}`));
    });
    client.connect({
      host: server.host,
      port: server.port,
      username: 'root',
      privateKey: readFileSync(clientKey.privateKeyFile),
      hostVerifier: (hostKey: Buffer) => {
        presented.push(fingerprintOf(hostKey));
        return fingerprintOf(hostKey) === clientKey.fingerprint;
      },
      readyTimeout: 10_000,
    });
    await expect(outcome).resolves.toMatch(/^error: .*verification failed/i);
    client.end();
    expect(presented).toEqual([server.hostKeyFingerprint]);
    expect(accepted()).toBe(acceptedBefore);
  });

  it('stop ends sshd and what runs under it, can run twice, and refuses connections afterwards', async () => {
    const client = await connect(server, clientKey, server.hostKeyFingerprint);
    const started = await execOver(client, 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!');
    client.end();
    const orphan = Number(started.stdout.trim());
    // $! is the forked shell, which then execs setsid and sleep: under load that takes a moment.
    await waitFor(
      'the orphan to be sleep',
      () => {
        try {
          return readFileSync(`/proc/${orphan}/cmdline`, 'utf8').includes('sleep');
        } catch {
          return false;
        }
      },
      5_000,
    );

    await server.stop();
    await server.stop();
    expect(existsSync(`/proc/${server.pid}/ns/mnt`)).toBe(false);
    expect(existsSync(`/proc/${orphan}/ns/mnt`)).toBe(false);
    await expect(connect(server, clientKey, server.hostKeyFingerprint)).rejects.toThrow(/ECONNREFUSED/);
  });
});

const unavailable = noSshd ?? skipReason('sshd fixture › netns', ['ip'], netnsUnavailableReason);
const describeNetns = unavailable === undefined ? describe : describe.skip;

describeNetns('sshd fixture › inside a host network namespace', () => {
  const source = path.join(dir, 'ns-source');
  let netns: Netns;
  let server: SshdServer;

  /** `ssh` from the controller's namespace, trusting only the known_hosts line given. */
  const sshFromCtl = (knownHostsLine: string, command: string) => {
    const knownHosts = path.join(dir, `known_hosts-${randomBytes(4).toString('hex')}`);
    writeFileSync(knownHosts, `${knownHostsLine}\n`);
    return netns.execIn(
      netns.ctl,
      'ssh',
      [
        ...['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes'],
        ...['-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null'],
        ...['-o', 'ConnectTimeout=5', '-i', clientKey.privateKeyFile, '-p', String(server.port)],
        `root@${server.host}`,
        command,
      ],
      { timeoutMs: 15_000 },
    );
  };

  beforeAll(async () => {
    mkdirSync(source);
    writeFileSync(path.join(source, 'marker'), 'seen through the namespaced mount\n');
    netns = await createNetns(uniqueNetnsPrefix(), 1);
    server = await startSshd({
      dir: path.join(dir, 'ns'),
      netns: netns.hosts[0]!.name,
      authorizedKeys: [clientKey.publicKeyLine],
      bindMounts: [{ source, target }],
    });
  });
  afterAll(async () => {
    await server?.stop();
    await netns?.destroy();
  });

  it("listens on the host's address, port 2222, and serves its own mounts", async () => {
    expect({ host: server.host, port: server.port }).toEqual({ host: netns.hosts[0]!.address, port: 2222 });
    const r = await sshFromCtl(server.knownHostsLine(server.host), `cat ${target}/marker`);
    expect({ code: r.code, stdout: r.stdout }).toEqual({
      code: 0,
      stdout: 'seen through the namespaced mount\n',
    });
  });

  it('is refused by a client whose known_hosts holds another key for the host', async () => {
    const wrongKey = clientKey.publicKeyLine.split(' ').slice(0, 2).join(' ');
    const r = await sshFromCtl(`[${server.host}]:${server.port} ${wrongKey}`, 'true');
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });
});
