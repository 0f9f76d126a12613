/**
 * Sweep hosts for the application recipes, from the recipe tests' fixtures: a passbolt clone with
 * its fake composer, cake and health page (app-fleets.ts, git-repo.ts), a signed cells binary on a
 * release server, a fake ownCloud `occ` with its status page (fake-apps.ts).
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
import { createFakeOcc, logLines, shq, writeScript } from '../../helpers/fake-apps';
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
  const backups = path.join(site.appDir, 'tmp/backups');
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
      if (version === to && !applied.includes(`${to}.sh`))
        problems.push(`the code is ${to} but its migration never ran (applied: ${applied.join(' ')})`);
      if (version === to && !composed.some((l) => l.includes(`release=${to}`)))
        problems.push(`the code is ${to} but composer never installed its libraries`);
      if (version === from && applied.includes(`${to}.sh`))
        problems.push(`the code is ${from} but ${to}'s migration ran`);
      const backupCount = existsSync(backups) ? readdirSync(backups).length : 0;
      return {
        version,
        healthy: (await httpStatus(site.vars['healthUrl'] ?? '')) === 200,
        maintenance: existsSync(site.flag),
        problems,
        ranTwice: [
          ...composedTwice(composed, logLines(site.checkoutLog)),
          ...(backupCount > 1 ? [`migrate (--backup x${backupCount})`] : []),
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
 * checks a release out again (the previous one, or the new one when its migration ran) and
 * reinstalls its libraries, one run per checkout; the post-checkout hook logs every checkout.
 */
function composedTwice(composed: readonly string[], checkouts: readonly string[]): string[] {
  const releases = new Set(composed.map((l) => /release=(\S+)/.exec(l)?.[1] ?? ''));
  return [...releases].flatMap((release) => {
    const runs = composed.filter((l) => l.includes(`release=${release} `)).length;
    const checkedOut = checkouts.filter((l) => l.startsWith(`v${release} `)).length;
    return runs > Math.max(1, checkedOut) ? [`update-libraries (composer x${runs} on ${release})`] : [];
  });
}

const cellsBinary = (version: string): string => `#!/bin/sh\necho "Pydio Cells v${version}"\n`;

export async function cellsHost(): Promise<SweepHost> {
  const from = '1.6.2';
  const to = '1.6.3';
  const key = generateKeyPair();
  const releasesDir = tempDir('sweep-cells-releases');
  const release = path.join(releasesDir, to);
  mkdirSync(release, { recursive: true });
  const bytes = Buffer.from(cellsBinary(to));
  writeFileSync(path.join(release, 'cells'), bytes);
  writeFileSync(
    path.join(release, 'cells.sha256'),
    `${createHash('sha256').update(bytes).digest('hex')}  cells\n`,
  );
  writeFileSync(
    path.join(release, 'cells.sig'),
    Buffer.from(signDetached(bytes, key.secretKey)).toString('base64'),
  );
  const releases = new HttpRepo({ root: releasesDir });
  await releases.start();

  const base = tempDir('sweep-cells');
  const binary = path.join(base, 'opt/pydio/bin/cells');
  writeScript(binary, cellsBinary(from));
  const serviceLog = path.join(base, 'service.log');
  const running = path.join(base, 'cells.state');
  writeFileSync(running, 'running\n');
  const service = (action: 'stop' | 'start'): string =>
    writeScript(
      path.join(base, `${action}-cells`),
      `#!/bin/sh\necho "${action} $(${shq(binary)} version)" >> ${shq(serviceLog)}\necho ${action === 'stop' ? 'stopped' : 'running'} > ${shq(running)}\n`,
    );
  const vars = {
    target: to,
    installed: from,
    binary,
    releaseUrl: releases.url,
    stopCommand: service('stop'),
    startCommand: service('start'),
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
      let version = 'none';
      try {
        version = /v([0-9.]+)/.exec(execFileSync(binary, ['version'], { encoding: 'utf8' }))?.[1] ?? 'none';
      } catch {
        // An unrunnable binary is no version at all.
      }
      const previous = `${binary}.previous`;
      // binary.replace keeps the replaced file: run twice, `.previous` would be the new one.
      const replacedTwice = existsSync(previous) && readFileSync(previous, 'utf8') === cellsBinary(to);
      const caps = execFileSync('getcap', [binary], { encoding: 'utf8' }).trim();
      const problems: string[] = [];
      if (version === to && !caps.includes('cap_net_bind_service')) problems.push('1.6.3 without its setcap');
      const up = readFileSync(running, 'utf8').trim() === 'running';
      return {
        version,
        healthy: up,
        maintenance: !up,
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

export async function owncloudHost(): Promise<SweepHost> {
  const base = tempDir('sweep-owncloud');
  const occ = createFakeOcc(path.join(base, 'oc'), '10.8.0.4');
  occ.deployCode('10.9.1.2');
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        installed: true,
        maintenance: existsSync(occ.maintenanceFlag),
        needsDbUpgrade: false,
      }),
    );
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
        occ: occ.occ,
        dataDir: occ.configDir,
        backupDir: path.join(base, 'backups'),
        healthUrl: statusUrl,
      },
      env: {},
    },
    dirs: [base],
    reset: () => undefined,
    observe: async () => {
      const status = JSON.parse(execFileSync(occ.occ, ['status', '--output=json'], { encoding: 'utf8' })) as {
        versionstring: string;
      };
      const calls = logLines(occ.log).filter((l) => !l.startsWith('status'));
      const count = (prefix: string): number => calls.filter((l) => l.startsWith(prefix)).length;
      const apps = existsSync(occ.appsUpgraded) ? readFileSync(occ.appsUpgraded, 'utf8').trim() : '';
      const problems: string[] = [];
      if (status.versionstring === '10.9.1' && apps !== '10.9.1.2')
        problems.push('10.9.1 with its apps not upgraded');
      const ranTwice = [
        ...(count('upgrade ') > 1 ? [`upgrade-core (occ upgrade x${count('upgrade ')})`] : []),
        ...(count('market:upgrade') > 1 ? [`upgrade-apps (x${count('market:upgrade')})`] : []),
      ];
      const health = await fetch(statusUrl).then((r) => r.json() as Promise<{ maintenance: boolean }>);
      return {
        version: status.versionstring,
        healthy: (await httpStatus(statusUrl)) === 200 && !health.maintenance,
        maintenance: existsSync(occ.maintenanceFlag),
        problems,
        ranTwice,
      };
    },
    cleanup: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(base, { recursive: true, force: true });
    },
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
