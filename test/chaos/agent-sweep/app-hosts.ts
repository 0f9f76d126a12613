/**
 * Sweep hosts for the application recipes, from the recipe tests' fixtures: a passbolt clone with
 * its fake composer, cake, MySQL client and /healthcheck (app-fleets.ts, git-repo.ts), a signed
 * cells binary that migrates its data on its first start (fake-apps.ts), a fake ownCloud run by
 * the web user, with its database, release server and status page, on a Debian root with a
 * system update pending (fake-apps.ts, apt-host.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { generateKeyPair, signDetached } from '../../../shared/ed25519';
import { formatPublicKey } from '../../../shared/keys';
import { HttpRepo } from '../../../scripts/fixtures/http-repo';
import { createGitAppRepo } from '../../fixtures/git-repo';
import { createPassboltSite } from '../../helpers/app-fleets';
import {
  createFakeOwncloud,
  logLines,
  owncloudStatus,
  publishOwncloudRelease,
  WEB_USER,
  type FakeOwncloud,
} from '../../helpers/fake-apps';
import { createAptHost } from '../../../scripts/fixtures/apt-host';
import { cellsBinary, createFakeCells } from '../../helpers/fake-cells';
import { CONVOY_BIN, ROOT, tempDir } from '../../helpers/processes';
import { recipeFile } from './cases';
import { httpStatus, type SweepHost } from './sweep-host';

function stateDirIn(base: string): string {
  const dir = path.join(base, 'state');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

const git = (dir: string, ...args: string[]): string => {
  try {
    return execFileSync('git', ['-C', dir, ...args], {
      encoding: 'utf8',
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    }).trim();
  } catch {
    return '';
  }
};

export async function passboltHost(): Promise<SweepHost> {
  const from = '2.0.3';
  const to = '2.1.0';
  const repo = await createGitAppRepo(['2.0.2', from]);
  const site = await createPassboltSite(repo, `v${from}`);
  await repo.publish(to);
  await repo.publish('3.0.0');
  const siteDir = path.dirname(site.composerLog);
  const stateDir = stateDirIn(siteDir);
  const migrations = path.join(site.appDir, 'tmp/migrations.applied');
  const backups = path.join(site.appDir, 'tmp/cache/database/backup');
  return {
    recipe: 'passbolt',
    from,
    to,
    agent: {
      recipeFile: recipeFile('passbolt'),
      stateDir,
      roles: [],
      vars: { target: to, installed: from, ...site.vars },
      env: {},
    },
    dirs: [site.appDir, siteDir],
    reset: () => undefined,
    observe: async () => {
      const version = git(site.appDir, 'describe', '--tags', '--exact-match').replace(/^v/, '');
      const applied = logLines(migrations);
      const composed = logLines(site.composerLog).filter((l) => l.startsWith('args='));
      const problems: string[] = [];
      if (git(site.appDir, 'status', '--porcelain') !== '') problems.push('the work tree is dirty');
      // The data as before: the old release's database is exactly the one it had.
      if (version === from && applied.join(' ') !== '2.0.2.sh 2.0.3.sh')
        problems.push(`the code is ${from} but the database holds ${applied.join(' ')}`);
      if (version === to && !composed.some((l) => l.includes(`release=${to}`)))
        problems.push(`the code is ${to} but composer never installed its libraries`);
      const dumps = existsSync(backups) ? readdirSync(backups).length : 0;
      return {
        version,
        // /healthcheck passes only when the database matches the code (passboltHealthProblems).
        healthy: (await httpStatus(site.vars['healthUrl'] ?? '')) === 200,
        maintenance: existsSync(site.flag),
        problems,
        ranTwice: [
          ...composedTwice(composed, logLines(site.checkoutLog)),
          ...(dumps > 1 ? [`migrate (--backup x${dumps})`] : []),
        ],
      };
    },
    cleanup: async () => {
      await site.close();
      repo.cleanup();
    },
  };
}

/**
 * Composer runs beyond one per checkout of their release: update-libraries run twice. The rollback
 * checks the previous release out again and reinstalls its libraries, one run per checkout; the
 * post-checkout hook logs every checkout.
 */
function composedTwice(composed: readonly string[], checkouts: readonly string[]): string[] {
  const releases = new Set(composed.map((l) => /release=(\S+)/.exec(l)?.[1] ?? ''));
  return [...releases].flatMap((release) => {
    const runs = composed.filter((l) => l.includes(`release=${release} `)).length;
    const checkedOut = checkouts.filter((l) => l.startsWith(`v${release} `)).length;
    return runs > Math.max(1, checkedOut) ? [`update-libraries (composer x${runs} on ${release})`] : [];
  });
}

/** A signed release of the fake cells binary, as the recipe's artifact step fetches it. */
function publishCells(releasesDir: string, version: string, text: string, secretKey: Uint8Array): void {
  const release = path.join(releasesDir, version);
  mkdirSync(release, { recursive: true });
  const bytes = Buffer.from(text);
  writeFileSync(path.join(release, 'cells'), bytes);
  writeFileSync(
    path.join(release, 'cells.sha256'),
    `${createHash('sha256').update(bytes).digest('hex')}  cells\n`,
  );
  writeFileSync(
    path.join(release, 'cells.sig'),
    Buffer.from(signDetached(bytes, secretKey)).toString('base64'),
  );
}

export async function cellsHost(): Promise<SweepHost> {
  const from = '1.6.2';
  const to = '1.6.3';
  const key = generateKeyPair();
  const releasesDir = tempDir('sweep-cells-releases');
  const base = tempDir('sweep-cells');
  const cells = createFakeCells(base, from, [to]);
  const newBinary = cellsBinary(to);
  publishCells(releasesDir, to, newBinary, key.secretKey);
  const releases = new HttpRepo({ root: releasesDir });
  await releases.start();
  const vars = {
    target: to,
    installed: from,
    binary: cells.binary,
    dataDir: cells.dataDir,
    backupDir: path.join(base, 'backups'),
    releaseUrl: releases.url,
    stopCommand: cells.stopCommand,
    startCommand: cells.startCommand,
  };
  const stateDir = stateDirIn(base);
  return {
    recipe: 'cells',
    from,
    to,
    agent: {
      recipeFile: recipeFile('cells'),
      stateDir,
      roles: [],
      vars,
      env: {},
      releaseKeys: [formatPublicKey(key.publicKey)],
    },
    dirs: [base],
    reset: () => undefined,
    observe: async () => {
      const st = cells.state();
      const previous = `${cells.binary}.previous`;
      // binary.replace keeps the replaced file: run twice, `.previous` would be the new one.
      const replacedTwice = existsSync(previous) && readFileSync(previous, 'utf8') === newBinary;
      const caps = execFileSync('getcap', [cells.binary], { encoding: 'utf8' }).trim();
      const problems: string[] = [];
      if (st.version === to && !caps.includes('cap_net_bind_service'))
        problems.push(`${to} without its setcap`);
      if (st.running && st.data !== st.version) problems.push(`running ${st.version} on data at ${st.data}`);
      if (st.users !== 'alice,bob') problems.push(`the data lost its users: ${st.users}`);
      return {
        version: st.version,
        healthy: st.running && st.data === st.version,
        maintenance: !st.running,
        problems,
        ranTwice: replacedTwice ? ['replace-binary (.previous is the new binary)'] : [],
      };
    },
    cleanup: async () => {
      await releases.stop();
      rmSync(releasesDir, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** The version the fake ownCloud's apps were last upgraded for (market:upgrade), or ''. */
function appsUpgradedFor(oc: FakeOwncloud): string {
  return existsSync(oc.appsUpgraded) ? readFileSync(oc.appsUpgraded, 'utf8').trim() : '';
}

/**
 * ownCloud 10.8.0.4 with 10.9.1.2 published, on a Debian root where one system package (libfoo)
 * has an update: the system update the seed starts with has something to do.
 */
export async function owncloudHost(): Promise<SweepHost> {
  const base = tempDir('sweep-owncloud');
  const oc = createFakeOwncloud(base, '10.8.0.4');
  const releasesDir = path.join(base, 'releases');
  mkdirSync(releasesDir);
  publishOwncloudRelease(releasesDir, '10.9.1.2', path.join(oc.ocDir, 'occ'));
  const releases = new HttpRepo({ root: releasesDir });
  await releases.start();
  const apt = await createAptHost();
  await apt.publish('libfoo', '1.0.0');
  await apt.install(['libfoo=1.0.0']);
  await apt.publish('libfoo', '1.0.1');
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(owncloudStatus(oc)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const statusUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/status.php`;
  const stateDir = stateDirIn(base);
  return {
    recipe: 'owncloud',
    from: '10.8.0',
    to: '10.9.1',
    agent: {
      recipeFile: recipeFile('owncloud'),
      stateDir,
      roles: [],
      vars: {
        target: '10.9.1',
        installed: '10.8.0',
        ...owncloudVars(oc, releases.url, base),
        healthUrl: statusUrl,
      },
      env: { ...apt.env, ...rebootFacts(base) },
    },
    dirs: [base, apt.root],
    reset: () => undefined,
    observe: async () => {
      const st = oc.state();
      const occCalls = logLines(oc.log).filter((l) => !l.startsWith('status'));
      const count = (prefix: string): number => occCalls.filter((l) => l.startsWith(prefix)).length;
      const problems: string[] = [];
      if (st.config === '10.9.1.2' && appsUpgradedFor(oc) !== '10.9.1.2')
        problems.push('10.9.1 with its apps not upgraded');
      if (st.schema !== st.config) problems.push(`config.php at ${st.config}, database at ${st.schema}`);
      if (st.users !== 'alice,bob') problems.push(`the database lost its users: ${st.users}`);
      const asRoot = occCalls.filter((l) => l.includes('[uid 0]'));
      if (asRoot.length > 0) problems.push(`occ ran as root: ${asRoot.join('; ')}`);
      // The seed's system update comes first: an instance on 10.9.1 got it too.
      if (st.config === '10.9.1.2' && (await apt.installedVersion('libfoo')) !== '1.0.1')
        problems.push('10.9.1 without the system update');
      const ranTwice = count('upgrade ') > 1 ? [`upgrade-core (occ upgrade x${count('upgrade ')})`] : [];
      const status = owncloudStatus(oc);
      return {
        version: st.config.split('.').slice(0, 3).join('.'),
        healthy:
          (await httpStatus(statusUrl)) === 200 &&
          status['maintenance'] === false &&
          status['needsDbUpgrade'] === false,
        maintenance: st.maintenance,
        problems,
        ranTwice,
      };
    },
    cleanup: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await releases.stop();
      await apt.cleanup();
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/**
 * The host's boot id and reboot-required flag as files of the test (agent/host/reboot-facts.ts):
 * the flag absent, so the system update asks for no reboot unless a test writes it; never the
 * machine's own /var/run/reboot-required.
 */
export function rebootFacts(base: string): {
  readonly CONVOY_BOOT_ID_FILE: string;
  readonly CONVOY_REBOOT_REQUIRED_FILE: string;
} {
  const bootIdFile = path.join(base, 'boot_id');
  writeFileSync(bootIdFile, 'boot-1\n');
  return { CONVOY_BOOT_ID_FILE: bootIdFile, CONVOY_REBOOT_REQUIRED_FILE: path.join(base, 'reboot-required') };
}

/** The ownCloud recipe's vars for a fake instance (all but healthUrl). */
export function owncloudVars(oc: FakeOwncloud, releaseUrl: string, base: string): Record<string, string> {
  return {
    ocDir: oc.ocDir,
    occUser: WEB_USER.name,
    php: '/bin/sh',
    releaseUrl,
    releaseIndex: `${releaseUrl}/index.html`,
    stageDir: path.join(base, 'stage'),
    backupDir: path.join(base, 'backups'),
    mysqldump: oc.mysqldump,
    mysql: oc.mysql,
  };
}

/**
 * The agent's own self-update: the host's bundle is a copy of this build's (0.1.0), a signed 0.1.1
 * is on a release server, and every phase runs as that bundle (`node BUNDLE phase run`), under
 * CONVOY_SUPERVISED=1: agent.restart exits 75 and the driver, as supervisor and controller, runs the
 * phase again with the bundle now on disk (agent-update-failures.test.ts shows the unsupervised case).
 */
export async function convoyAgentHost(): Promise<SweepHost> {
  const from = '0.1.0';
  const to = '0.1.1';
  const base = tempDir('sweep-convoy-agent');
  const releasesDir = path.join(base, 'releases');
  const keyFile = path.join(base, 'release.key');
  const node = (args: string[]): string => execFileSync(process.execPath, args, { encoding: 'utf8' }).trim();
  const publicKey = node([CONVOY_BIN, 'release', 'keygen', '--out', keyFile]);
  const out = path.join(releasesDir, to, 'convoy-agent.js');
  node([
    path.join(ROOT, 'dist/scripts/build-agent.js'),
    '--out',
    out,
    '--version',
    to,
    '--sign-key',
    keyFile,
  ]);
  const releases = new HttpRepo({ root: releasesDir });
  await releases.start();
  const hostDir = path.join(base, 'host');
  const bundle = path.join(hostDir, 'usr/lib/convoy-agent/convoy-agent.js');
  mkdirSync(path.dirname(bundle), { recursive: true });
  copyFileSync(path.join(ROOT, 'dist/bundle/convoy-agent.js'), bundle);
  const stateDir = stateDirIn(hostDir);
  const newBytes = readFileSync(out);
  return {
    recipe: 'convoy-agent',
    from,
    to,
    agent: {
      recipeFile: recipeFile('convoy-agent'),
      stateDir,
      roles: [],
      vars: { target: to, installed: from, node: process.execPath, bundle, releaseUrl: releases.url },
      env: { CONVOY_SUPERVISED: '1' },
      releaseKeys: [publicKey],
      agentScript: bundle,
    },
    dirs: [hostDir],
    reset: () => undefined,
    observe: async () => {
      let version = 'none';
      try {
        version = node([bundle, '--version']);
      } catch {
        // A bundle that does not start reports no version.
      }
      const previous = `${bundle}.previous`;
      const replacedTwice = existsSync(previous) && readFileSync(previous).equals(newBytes);
      return {
        version,
        // The agent is healthy when its bundle starts and answers; it has no maintenance mode.
        healthy: version !== 'none',
        maintenance: false,
        problems: [],
        ranTwice: replacedTwice ? ['replace-bundle (.previous is the new bundle)'] : [],
      };
    },
    cleanup: async () => {
      await releases.stop();
      rmSync(base, { recursive: true, force: true });
    },
  };
}
