/**
 * Sweep hosts for the package recipes, built from the fixtures the recipe tests use: BlueMind on
 * an apt root whose bm-core puts the fake BlueMind in maintenance while dpkg applies it
 * (bluemind-packages.ts), BlueMind on a dnf installroot, KCM on a dnf installroot with its two
 * services as logging scripts (app-fleets.ts).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAptHost } from '../../../scripts/fixtures/apt-host';
import { bmCorePublishOptions } from '../../../scripts/fixtures/bluemind-packages';
import { FakeBlueMind, type FakeBlueMindOptions } from '../../../scripts/fixtures/fake-bluemind';
import { FAKE_BM_CLI_JS } from '../../../scripts/fixtures/fake-bluemind-process';
import { readDeployment } from '../../../scripts/fixtures/fake-bluemind-update';
import { createDnfHost } from '../../fixtures/dnf-host';
import { createKcmHost } from '../../helpers/app-fleets';
import { tempDir } from '../../helpers/processes';
import { recipeFile } from './cases';
import { writeSecrets } from './agent-phase';
import { httpStatus, type AppState, type SweepHost } from './sweep-host';

// From 4.1: every update is prepared first (001 "New in 4.1"), so the sweep covers prepare-update.
const BM_FROM = '4.1.0';
const BM_TO = '4.1.2';
const BM_PACKAGES = ['bm-core', 'bm-webmail'];
const PASSWORD = 'setup-Pa55word';

/**
 * BlueMind's side of a host: its config dir, /etc/bm, data and logs, backups, the agent's state,
 * the fake service (in maintenance from the package upgrade until /setup: `bm` options).
 */
async function blueMindSide(base: string, options: FakeBlueMindOptions) {
  // The deployment's state (the version /setup ran for) lives in a file under `base`, so that a
  // snapshot of the host's directories restores it with the packages.
  const bm = await FakeBlueMind.start(PASSWORD, {
    ...options,
    deploymentFile: path.join(base, 'bm-deployment.json'),
  });
  const configDir = path.join(base, 'etc/nginx');
  mkdirSync(path.join(configDir, 'sites-enabled'), { recursive: true });
  writeFileSync(path.join(configDir, 'bm-webmail.conf'), 'server_name mail.example.com;\n');
  for (const d of ['etc/bm', 'bm-data', 'log']) mkdirSync(path.join(base, d), { recursive: true });
  const stateDir = path.join(base, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  const vars = {
    target: BM_TO,
    installed: BM_FROM,
    setupUrl: bm.setupUrl,
    healthUrl: bm.healthUrl,
    configDir,
    bmConfigDir: path.join(base, 'etc/bm'),
    dataDir: path.join(base, 'bm-data'),
    logDir: path.join(base, 'log'),
    backupDir: path.join(base, 'backups'),
  };
  const secretsFile = writeSecrets(tempDir('bm-secrets'), { setupPassword: PASSWORD });
  const binDir = bmCliWrapper(base, options.dpkgStatus);
  return { bm, stateDir, vars, secretsFile, binDir, deploymentFile: path.join(base, 'bm-deployment.json') };
}

/**
 * The recipes' prepare-update runs `bm-cli`: the fake one (fake-bm-cli.ts) on the agent's PATH,
 * acting on this host's deployment state (snapshotted with the host). Returns its directory.
 */
function bmCliWrapper(base: string, dpkgStatus: string | undefined): string {
  const bin = path.join(base, 'bm-bin');
  mkdirSync(bin, { recursive: true });
  const file = path.join(bin, 'bm-cli');
  const args = [FAKE_BM_CLI_JS, '--deployment', path.join(base, 'bm-deployment.json')];
  if (dpkgStatus !== undefined) args.push('--dpkg-status', dpkgStatus);
  args.push('--log-dir', path.join(base, 'log'));
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(file, `#!/bin/sh\nexec ${[process.execPath, ...args].map(quote).join(' ')} "$@"\n`);
  chmodSync(file, 0o755);
  return bin;
}

function blueMindState(
  bm: FakeBlueMind,
  deploymentFile: string,
  versions: readonly (string | undefined)[],
  health: number,
): AppState {
  const problems: string[] = [];
  if (new Set(versions).size !== 1) problems.push(`packages disagree: ${versions.join(', ')}`);
  const version = versions[0] ?? 'none';
  // 001: the update is finalized through /setup: new packages without it are half-updated. Read
  // from the deployment state on disk (snapshotted with the host), not this process's counter: a
  // case that starts after finalize restored a /setup that ran in the golden run.
  const setUp = readDeployment(deploymentFile).setupVersion;
  if (version === BM_TO && setUp !== BM_TO)
    problems.push(`on ${BM_TO} with /setup run for ${setUp ?? 'none'}`);
  return {
    version,
    healthy: health === 200,
    maintenance: bm.maintenance,
    problems,
    ranTwice: bm.setupCalls.length > 1 ? [`setup-update (POST /setup x${bm.setupCalls.length})`] : [],
  };
}

function resetBlueMind(bm: FakeBlueMind): void {
  bm.setupCalls.splice(0);
  bm.healthy = true;
  bm.setMaintenance(false);
}

export async function bluemindHost(): Promise<SweepHost> {
  const apt = await createAptHost();
  const base = tempDir('sweep-bluemind');
  const flagDir = path.join(base, 'run');
  mkdirSync(flagDir);
  const flag = path.join(flagDir, 'maintenance.flag');
  await apt.publish('bm-core', BM_FROM, bmCorePublishOptions(flag, 0));
  await apt.publish('bm-webmail', BM_FROM);
  await apt.install(BM_PACKAGES.map((p) => `${p}=${BM_FROM}`));
  await apt.publish('bm-core', BM_TO, bmCorePublishOptions(flag, 0));
  await apt.publish('bm-webmail', BM_TO);
  const side = await blueMindSide(base, {
    maintenanceFlag: flag,
    dpkgStatus: path.join(apt.root, 'var/lib/dpkg/status'),
  });
  return {
    recipe: 'bluemind',
    from: BM_FROM,
    to: BM_TO,
    agent: {
      recipeFile: recipeFile('bluemind'),
      stateDir: side.stateDir,
      roles: ['core'],
      vars: side.vars,
      env: {
        ...apt.env,
        DPKG_ADMINDIR: path.join(apt.root, 'var/lib/dpkg'),
        PATH: `${side.binDir}:${apt.env['PATH'] ?? process.env['PATH'] ?? ''}`,
      },
      secretsFile: side.secretsFile,
    },
    dirs: [apt.root, base],
    reset: () => resetBlueMind(side.bm),
    observe: async () =>
      blueMindState(
        side.bm,
        side.deploymentFile,
        await Promise.all(BM_PACKAGES.map((p) => apt.installedVersion(p))),
        await httpStatus(side.bm.healthUrl),
      ),
    cleanup: async () => {
      await side.bm.stop();
      await apt.cleanup();
      rmSync(base, { recursive: true, force: true });
      rmSync(path.dirname(side.secretsFile), { recursive: true, force: true });
    },
  };
}

/** `rpm` acting on an installroot's database (never the machine's ~/.rpmdb); its path. */
function rpmWrapper(base: string, root: string): string {
  const bin = path.join(base, 'rpm-bin');
  mkdirSync(bin, { recursive: true });
  const file = path.join(bin, 'rpm');
  writeFileSync(
    file,
    `#!/bin/sh\nHOME='${bin}' exec /usr/bin/rpm --root '${root}' --dbpath /var/lib/rpm "$@"\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

export async function bluemindRedhatHost(): Promise<SweepHost> {
  const dnf = await createDnfHost();
  for (const p of BM_PACKAGES) await dnf.publish(p, BM_FROM);
  await dnf.install(BM_PACKAGES.map((p) => `${p}-${BM_FROM}`));
  for (const p of BM_PACKAGES) await dnf.publish(p, BM_TO);
  const base = tempDir('sweep-bluemind-redhat');
  // The recipe's rpm -q (its per-host check) and the fake read the host's database.
  const rpm = rpmWrapper(base, dnf.root);
  const side = await blueMindSide(base, {
    installedVersion: () => {
      const out = spawnSync(rpm, ['-q', '--qf', '%{VERSION}', 'bm-core'], { encoding: 'utf8' });
      return out.status === 0 ? out.stdout.trim() : undefined;
    },
    pollMs: 60_000,
  });
  return {
    recipe: 'bluemind-redhat',
    from: BM_FROM,
    to: BM_TO,
    agent: {
      recipeFile: recipeFile('bluemind-redhat'),
      stateDir: side.stateDir,
      roles: ['core'],
      vars: side.vars,
      env: { ...dnf.env, PATH: `${path.dirname(rpm)}:${side.binDir}:${dnf.env['PATH'] ?? ''}` },
      secretsFile: side.secretsFile,
    },
    dirs: [dnf.root, base],
    reset: () => resetBlueMind(side.bm),
    observe: async () =>
      blueMindState(
        side.bm,
        side.deploymentFile,
        await Promise.all(BM_PACKAGES.map((p) => dnf.installedVersion(p))),
        await httpStatus(side.bm.healthUrl),
      ),
    cleanup: async () => {
      await side.bm.stop();
      await dnf.cleanup();
      rmSync(base, { recursive: true, force: true });
      rmSync(path.dirname(side.secretsFile), { recursive: true, force: true });
    },
  };
}

export async function kcmHost(): Promise<SweepHost> {
  const from = '2.0.0';
  const to = '2.1.0';
  const kcm = await createKcmHost(from, to);
  const stateDir = path.join(tempDir('sweep-kcm'), 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  return {
    recipe: 'kcm',
    from,
    to,
    agent: {
      recipeFile: recipeFile('kcm'),
      stateDir,
      roles: [],
      vars: { target: to, installed: from, ...kcm.vars },
      env: kcm.env,
    },
    dirs: [kcm.dnf.root, path.dirname(kcm.serviceLog), stateDir],
    reset: () => undefined,
    observe: async () => {
      const versions = await kcm.installed();
      const stopped = (['guacamole', 'guacd'] as const).filter((s) => kcm.serviceState(s) !== 'running');
      return {
        version: versions[0] ?? 'none',
        healthy: stopped.length === 0,
        // KCM has no maintenance mode: a service left stopped is the outage.
        maintenance: stopped.length > 0,
        problems: new Set(versions).size === 1 ? [] : [`packages disagree: ${versions.join(', ')}`],
        ranTwice: [],
      };
    },
    cleanup: async () => {
      await kcm.cleanup();
      rmSync(path.dirname(stateDir), { recursive: true, force: true });
    },
  };
}
