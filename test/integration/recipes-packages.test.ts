/**
 * The built-in package recipes (`recipes/bluemind.yaml`, `recipes/bluemind-redhat.yaml`,
 * `recipes/kcm.yaml`), compiled from their files as shipped, run phase by phase on fake hosts with
 * the real apt-get / aptitude / dnf in isolated roots (fixtures.md §1-2), through the real phase
 * runner, step registry and journal. A fake BlueMind (scripts/fixtures/fake-bluemind.ts) answers
 * /setup and the health page.
 *
 * Every host gets one run id for its whole rollout, as a controller's rollout id would be: the
 * journal keeps completed results for a run id, which is how the rollback phase's `restore` finds
 * the backup the upgrade phase took.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PhaseJournal } from '../../agent/phase/journal';
import { runPhase, type PhaseOutcome, type RunnerDeps, type StepRecord } from '../../agent/phase/runner';
import { STEP_REGISTRY } from '../../agent/steps';
import type { StepResult } from '../../agent/steps/step';
import { silentLogger } from '../../shared/logger';
import { matchCautions } from '../../shared/recipe/cautions';
import { compileRecipe } from '../../shared/recipe/compile';
import { placeholderValues } from '../../shared/recipe/interpolate';
import type { PhaseName, Recipe, VersionProbe } from '../../shared/recipe/types';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import { createDnfHost, type DnfHost } from '../fixtures/dnf-host';
import { FakeBlueMind, type FakeBlueMindOptions } from '../../scripts/fixtures/fake-bluemind';
import { hostState, MACHINE_APT_PATHS, MACHINE_RPM_PATHS } from '../helpers/host-state';
import { ROOT, tempDir } from '../helpers/processes';
import { runnerContext } from '../helpers/step-context';

jest.setTimeout(60_000);

const execFileP = promisify(execFile);

const FROM = '4.0.5';
const TO = '4.1.2';
const BM_PACKAGES = ['bm-core', 'bm-webmail'];
const KCM_PACKAGES = ['kcm-guacamole', 'kcm-guacd'];
const PASSWORD = 'setup-Pa55word';

function recipeText(name: string): string {
  return readFileSync(path.join(ROOT, 'recipes', `${name}.yaml`), 'utf8');
}

const BLUEMIND_YAML = recipeText('bluemind');
const bluemind = compileRecipe(BLUEMIND_YAML, 'recipes/bluemind.yaml');
/** The issue asks for both Debian front ends: the same recipe with apt-get. */
const bluemindAptGet = compileRecipe(
  BLUEMIND_YAML.replaceAll('frontend: aptitude', 'frontend: apt-get'),
  'recipes/bluemind.yaml (apt-get)',
);
const bluemindRedhat = compileRecipe(recipeText('bluemind-redhat'), 'recipes/bluemind-redhat.yaml');
const kcm = compileRecipe(recipeText('kcm'), 'recipes/kcm.yaml');

/** The machine's own apt, aptitude, rpm and dnf state (fixtures.md §1-2); no test may touch it. */
const machineState = (): string => hostState([...MACHINE_APT_PATHS, ...MACHINE_RPM_PATHS]);

const machineBefore = machineState();
afterAll(() => expect(machineState()).toBe(machineBefore));

// ---------------------------------------------------------------------------------------------
// Per-test resources, released in afterEach whatever happened.

let cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const cleanup of pending) await cleanup();
});

function scratch(prefix: string): string {
  const dir = tempDir(prefix);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fake BlueMind; given where bm-core's version is read, it stays in maintenance until /setup. */
async function fakeBlueMind(options: FakeBlueMindOptions = {}): Promise<FakeBlueMind> {
  const server = await FakeBlueMind.start(PASSWORD, options);
  cleanups.push(() => server.stop());
  return server;
}

/** A Debian host with `packages` at `from` installed from its repository, and `to` published. */
async function aptHostWith(packages: readonly string[], from: string, to: string): Promise<AptHost> {
  const host = await createAptHost();
  cleanups.push(() => host.cleanup());
  for (const pkg of packages) await host.publish(pkg, from);
  await host.install(packages.map((p) => `${p}=${from}`));
  for (const pkg of packages) await host.publish(pkg, to);
  return host;
}

/** The package tools' environment of a Debian host; DPKG_ADMINDIR points dpkg-query at its root. */
function aptEnv(apt: AptHost): Record<string, string> {
  return { ...apt.env, DPKG_ADMINDIR: path.join(apt.root, 'var/lib/dpkg') };
}

/** The same on a RedHat host: `from` installed, `to` published after the host's last refresh. */
async function dnfHostWith(packages: readonly string[], from: string, to: string): Promise<DnfHost> {
  const host = await createDnfHost();
  cleanups.push(() => host.cleanup());
  for (const pkg of packages) await host.publish(pkg, from);
  await host.install(packages);
  for (const pkg of packages) await host.publish(pkg, to);
  return host;
}

// ---------------------------------------------------------------------------------------------
// A fake host as the agent sees it: roles, a state directory with its phase journal, the vars of
// its rollout, and the environment that points the package tools at its isolated root.

interface FakeHost {
  readonly roles: readonly string[];
  readonly stateDir: string;
  readonly runId: string;
  /** BlueMind's configuration directory (the recipe's `configDir`), with one file in it. */
  readonly configFile: string;
  readonly backupDir: string;
  /** `installed` overrides the version sent (the target, in the rollout's final verify). */
  phase(phase: PhaseName, extra?: Pick<RunnerDeps, 'onStep'>, installed?: string): Promise<PhaseOutcome>;
}

interface HostOptions {
  readonly recipe: Recipe;
  readonly env: Readonly<Record<string, string>>;
  readonly roles: readonly string[];
  readonly installed: string;
  readonly target: string;
  /** Recipe vars beyond the BlueMind ones below. */
  readonly vars?: Readonly<Record<string, string>>;
  readonly bluemind?: FakeBlueMind;
}

let hostCount = 0;

function fakeHost(options: HostOptions): FakeHost {
  hostCount += 1;
  const dir = scratch('recipe-host');
  const stateDir = path.join(dir, 'state');
  const configDir = path.join(dir, 'etc/nginx');
  const backupDir = path.join(dir, 'backups');
  mkdirSync(stateDir, { mode: 0o700 });
  mkdirSync(configDir, { recursive: true });
  const configFile = path.join(configDir, 'bm-webmail.conf');
  writeFileSync(configFile, 'server_name mail.example.com; # edited by hand\n');
  mkdirSync(path.join(configDir, 'sites-enabled'));
  const overrides: Record<string, string> = { ...options.vars };
  if (options.bluemind !== undefined) {
    Object.assign(overrides, {
      setupUrl: options.bluemind.setupUrl,
      healthUrl: options.bluemind.healthUrl,
      configDir,
      bmConfigDir: path.join(dir, 'etc/bm'),
      dataDir: path.join(dir, 'bm-data'),
      logDir: path.join(dir, 'log'),
      backupDir,
    });
    for (const d of ['etc/bm', 'bm-data', 'log']) mkdirSync(path.join(dir, d), { recursive: true });
  }
  const varsFor = (installed: string) =>
    placeholderValues(options.recipe, { target: options.target, installed }, overrides);
  const runId = `rollout-${hostCount}`;
  const secrets = new Map([['setupPassword', PASSWORD]]);
  return {
    roles: options.roles,
    stateDir,
    runId,
    configFile,
    backupDir,
    phase: (phase, extra = {}, installed = options.installed) =>
      runPhase(
        { recipe: options.recipe, phase, roles: options.roles, vars: varsFor(installed), runId },
        {
          registry: STEP_REGISTRY,
          // Opened afresh for every phase, as an agent that restarted between phases would.
          journal: PhaseJournal.open(stateDir),
          context: runnerContext({ stateDir, env: options.env, secrets }),
          log: silentLogger,
          ...extra,
        },
      ),
  };
}

function record(outcome: PhaseOutcome, stepId: string): StepRecord {
  const found = outcome.steps.find((s) => s.step.id === stepId);
  if (found === undefined) throw new Error(`phase ${outcome.phase} has no step ${stepId}`);
  return found;
}

function result(outcome: PhaseOutcome, stepId: string): StepResult {
  const found = record(outcome, stepId).result;
  if (found === undefined)
    throw new Error(`step ${stepId} has no result (${record(outcome, stepId).status})`);
  return found;
}

/** The phase's steps as `id: status` (with the error code of a failed one): readable on failure. */
function statuses(outcome: PhaseOutcome): string[] {
  return outcome.steps.map((s) => {
    const failed = s.result?.ok === false ? ` ${s.result.error?.code}: ${s.result.error?.message}` : '';
    return `${s.step.id}: ${s.status}${failed}`;
  });
}

function expectOk(outcome: PhaseOutcome): void {
  expect({ phase: outcome.phase, ok: outcome.ok, steps: statuses(outcome) }).toEqual({
    phase: outcome.phase,
    ok: true,
    steps: outcome.steps.map((s) => `${s.step.id}: ${s.status}`),
  });
}

/** Runs one of the recipe's version probes on the fake host (no shell) and returns every match. */
async function probe(spec: VersionProbe, env: Readonly<Record<string, string>>): Promise<string[]> {
  const [file, ...args] = spec.argv;
  const { stdout } = await execFileP(file ?? '', args, { env: { ...process.env, ...env } });
  return [...stdout.matchAll(new RegExp(spec.pattern, 'gm'))].map((m) => m[1] ?? '');
}

/** The .debs of the target version in the host's archive cache (the install left the old ones). */
function stagedDebs(apt: AptHost): string[] {
  return apt.cachedDebs().filter((f) => f.includes(`_${TO}_`));
}

// ---------------------------------------------------------------------------------------------

describe.each([
  ['aptitude', bluemind],
  ['apt-get', bluemindAptGet],
] as const)('bluemind with %s', (frontend, recipe) => {
  it(`checks, stages ${TO} while ${FROM} runs, upgrades from the cache alone, finalizes once, verifies`, async () => {
    expect(recipe.phases.upgrade.find((s) => s.id === 'apply-packages')).toMatchObject({ frontend });
    const apt = await aptHostWith(BM_PACKAGES, FROM, TO);
    const bm = await fakeBlueMind({ dpkgStatus: path.join(apt.root, 'var/lib/dpkg/status') });
    const host = fakeHost({
      recipe,
      env: aptEnv(apt),
      roles: ['core'],
      installed: FROM,
      target: TO,
      bluemind: bm,
    });
    // dpkg-query reads no APT_CONFIG; DPKG_ADMINDIR points the recipe's own probe at the fake root.
    const probeEnv = { ...apt.env, DPKG_ADMINDIR: path.join(apt.root, 'var/lib/dpkg') };
    const installed = () => Promise.all(BM_PACKAGES.map((p) => apt.installedVersion(p)));

    expect(matchCautions(recipe, FROM, TO).map((c) => c.from)).toEqual(['4.0.x', '<4.1.0']);
    expect(matchCautions(recipe, FROM, TO)[0]?.message).toMatch(/virtual folders/);
    expect(matchCautions(recipe, TO, '4.1.3')).toEqual([]);
    expect(await probe(recipe.versions.installed, probeEnv)).toEqual([FROM]);

    const check = await host.phase('check');
    expectOk(check);
    expect(result(check, 'check-upgradable')).toMatchObject({ ok: true, versions: [TO] });
    expect(result(check, 'check-upgradable').data?.['packages']).toEqual([
      { name: 'bm-core', from: FROM, to: TO },
    ]);
    expect(recipe.versions.available).toBeDefined();
    expect(await probe(recipe.versions.available!, probeEnv)).toEqual(expect.arrayContaining([FROM, TO]));

    const download = await host.phase('download');
    expectOk(download);
    expect(result(download, 'stage-packages')).toMatchObject({ ok: true, versions: [TO] });
    expect(await installed()).toEqual([FROM, FROM]);
    expect(stagedDebs(apt)).toEqual(BM_PACKAGES.map((p) => `${p}_${TO}_all.deb`));

    const requests = apt.repo.requestCount;
    await apt.repo.stop();
    const upgrade = await host.phase('upgrade');
    expectOk(upgrade);
    expect(await installed()).toEqual([TO, TO]);
    expect(await probe(recipe.versions.installed, probeEnv)).toEqual([TO]);
    expect(apt.repo.requestCount).toBe(requests);
    expect(result(upgrade, 'apply-packages').data?.['packages']).toEqual(
      BM_PACKAGES.map((name) => ({ name, from: FROM, to: TO })),
    );
    const backup = result(upgrade, 'backup-system');
    expect(backup.backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    const archive = backup.data?.['archive'];
    expect(archive).toBe(path.join(host.backupDir, backup.backupId!, 'files.tar'));
    expect(existsSync(archive as string)).toBe(true);

    // Before /setup: the packages are at the target and the service waits for /setup.
    const perHost = await host.phase('verify');
    expect(statuses(perHost)).toEqual(['host-packages: ran', 'host-update-pending: ran', 'health: skipped']);
    expect(perHost.ok).toBe(true);

    expect(bm.setupCalls).toEqual([]);
    const finalize = await host.phase('finalize');
    expectOk(finalize);
    expect(bm.setupCalls).toEqual([{ authorized: true, user: 'admin' }]);
    // The password never reaches a result.
    expect(JSON.stringify(finalize)).not.toContain(PASSWORD);

    // The rollout's final verify: the host is recorded on the target.
    const verify = await host.phase('verify', {}, TO);
    expect(statuses(verify)).toEqual([
      'host-packages: skipped',
      'host-update-pending: skipped',
      'health: ran',
    ]);
    expect(result(verify, 'health').data).toMatchObject({ status: 200, attempts: 1 });
    expect(bm.setupCalls).toHaveLength(1);
  });
});

describe('bluemind on three hosts (core, edge, edge)', () => {
  it('stages and upgrades every host, and finalizes through /setup once, on the core host only', async () => {
    const roles = [['core'], ['edge'], ['edge']];
    const apts = await Promise.all(roles.map(() => aptHostWith(BM_PACKAGES, FROM, TO)));
    // One service per host, one deployment: /setup on the core host ends every host's maintenance.
    const deploymentFile = path.join(scratch('bm-deployment'), 'deployment.json');
    const bms = await Promise.all(
      apts.map((apt) =>
        fakeBlueMind({ dpkgStatus: path.join(apt.root, 'var/lib/dpkg/status'), deploymentFile }),
      ),
    );
    const hosts = roles.map((r, i) =>
      fakeHost({
        recipe: bluemind,
        env: aptEnv(apts[i]!),
        roles: r,
        installed: FROM,
        target: TO,
        bluemind: bms[i],
      }),
    );
    const setupCalls = () => bms.flatMap((bm) => bm.setupCalls);
    const installed = (apt: AptHost) => Promise.all(BM_PACKAGES.map((p) => apt.installedVersion(p)));

    for (const outcome of await Promise.all(hosts.map((h) => h.phase('download')))) expectOk(outcome);
    for (const apt of apts) {
      expect(await installed(apt)).toEqual([FROM, FROM]);
      expect(stagedDebs(apt)).toEqual(BM_PACKAGES.map((p) => `${p}_${TO}_all.deb`));
    }

    await Promise.all(apts.map((apt) => apt.repo.stop()));
    for (const outcome of await Promise.all(hosts.map((h) => h.phase('upgrade')))) expectOk(outcome);
    for (const apt of apts) expect(await installed(apt)).toEqual([TO, TO]);
    for (const outcome of await Promise.all(hosts.map((h) => h.phase('verify'))))
      expect(outcome.ok).toBe(true);
    expect(bms.map((bm) => bm.maintenance)).toEqual([true, true, true]);
    expect(setupCalls()).toEqual([]);

    const finalized = [];
    for (const host of hosts) finalized.push(await host.phase('finalize'));
    expect(finalized.map((o) => [o.ok, statuses(o)])).toEqual([
      [true, ['setup-update: ran']],
      [true, ['setup-update: skipped']],
      [true, ['setup-update: skipped']],
    ]);
    expect(setupCalls()).toEqual([{ authorized: true, user: 'admin' }]);

    for (const outcome of await Promise.all(hosts.map((h) => h.phase('verify', {}, TO)))) {
      expect(statuses(outcome)).toContain('health: ran');
      expect(outcome.ok).toBe(true);
    }
  });
});

describe('bluemind when the health check fails after the upgrade', () => {
  // The shipped health step waits up to its 1m timeout per attempt, 6 attempts: only the wait is
  // shortened here, the step and its retries are the recipe's.
  const quickHealth = compileRecipe(
    BLUEMIND_YAML.replace(/(\n {6}retries: 5\n)/, '$1      timeout: 1s\n'),
    'recipes/bluemind.yaml (health timeout 1s)',
  );

  it('fails verify, and the rollback puts back the previous packages and the configuration the upgrade backed up', async () => {
    expect(quickHealth.phases.verify.find((s) => s.id === 'health')).toMatchObject({
      retries: 5,
      timeoutMs: 1000,
    });
    const apt = await aptHostWith(BM_PACKAGES, FROM, TO);
    const bm = await fakeBlueMind();
    const host = fakeHost({
      recipe: quickHealth,
      env: aptEnv(apt),
      roles: ['core'],
      installed: FROM,
      target: TO,
      bluemind: bm,
    });
    const original = readFileSync(host.configFile, 'utf8');

    expectOk(await host.phase('download'));
    expectOk(await host.phase('upgrade'));
    expect(await apt.installedVersion('bm-core')).toBe(TO);
    // The new packages (or a hand edit) changed the configuration after the backup.
    writeFileSync(host.configFile, 'server_name overwritten.example.com;\n');
    expectOk(await host.phase('finalize'));

    bm.healthy = false;
    // The rollout's final verify, after /setup.
    const verify = await host.phase('verify', {}, TO);
    expect(verify.ok).toBe(false);
    const health = record(verify, 'health');
    expect(health.attempts).toBe(6);
    expect(health.result?.error?.code).toBe('HEALTH_CHECK_FAILED');
    expect(health.result?.error?.message).toMatch(/status 500/);
    expect(bm.healthRequests).toBe(6);

    // The way back needs no repository: the previous packages were kept when they were staged.
    await apt.repo.stop();
    const rollback = await host.phase('rollback');
    expectOk(rollback);
    expect(result(rollback, 'restore-packages')).toMatchObject({ ok: true, versions: [FROM] });
    for (const pkg of BM_PACKAGES) expect(await apt.installedVersion(pkg)).toBe(FROM);
    expect(result(rollback, 'restore-system').backupId).toBe(
      PhaseJournal.open(host.stateDir).current?.completed['backup-system']?.backupId,
    );
    expect(readFileSync(host.configFile, 'utf8')).toBe(original);
    expect(bm.setupCalls).toHaveLength(1);
  });
});

describe('bluemind-redhat with yum (dnf through the wrapper)', () => {
  it(`stages bm-core ${TO}, upgrades from the cache with the repository stopped, finalizes once`, async () => {
    const dnf = await dnfHostWith(BM_PACKAGES, FROM, TO);
    // The recipe's own `rpm -q` (its per-host check) must read the host's database, not the machine's.
    const rpmBin = scratch('rpm-bin');
    writeFileSync(
      path.join(rpmBin, 'rpm'),
      `#!/bin/sh\nHOME='${rpmBin}' exec /usr/bin/rpm --root '${dnf.root}' --dbpath /var/lib/rpm "$@"\n`,
    );
    chmodSync(path.join(rpmBin, 'rpm'), 0o755);
    const env = { ...dnf.env, PATH: `${rpmBin}:${dnf.env['PATH'] ?? ''}` };
    const rpmVersion = (): string | undefined => {
      const out = spawnSync(path.join(rpmBin, 'rpm'), ['-q', '--qf', '%{VERSION}', 'bm-core'], {
        encoding: 'utf8',
      });
      return out.status === 0 ? out.stdout.trim() : undefined;
    };
    const bm = await fakeBlueMind({ installedVersion: rpmVersion, pollMs: 60_000 });
    const host = fakeHost({
      recipe: bluemindRedhat,
      env,
      roles: ['core'],
      installed: FROM,
      target: TO,
      bluemind: bm,
    });
    const installed = () => Promise.all(BM_PACKAGES.map((p) => dnf.installedVersion(p)));
    expect(matchCautions(bluemindRedhat, FROM, TO).map((c) => c.from)).toEqual(['4.0.x', '<4.1.0']);

    const check = await host.phase('check');
    expectOk(check);
    expect(result(check, 'check-updates')).toMatchObject({ ok: true, versions: [TO] });

    const download = await host.phase('download');
    expectOk(download);
    expect(result(download, 'stage-packages').versions).toEqual([TO]);
    expect(await installed()).toEqual([FROM, FROM]);
    expect(dnf.cachedRpms().filter((f) => f.includes(`-${TO}-`))).toEqual(
      BM_PACKAGES.map((p) => `${p}-${TO}-1.noarch.rpm`),
    );

    const requests = dnf.repo.requestCount;
    await dnf.repo.stop();
    const upgrade = await host.phase('upgrade');
    expectOk(upgrade);
    expect(await installed()).toEqual([TO, TO]);
    expect(dnf.repo.requestCount).toBe(requests);
    expect(result(upgrade, 'backup-system').backupId).toBeDefined();
    const perHost = await host.phase('verify');
    expect([perHost.ok, statuses(perHost)]).toEqual([
      true,
      ['host-packages: ran', 'host-update-pending: ran', 'health: skipped'],
    ]);

    expectOk(await host.phase('finalize'));
    expect(bm.setupCalls).toEqual([{ authorized: true, user: 'admin' }]);
    const verify = await host.phase('verify', {}, TO);
    expect([verify.ok, statuses(verify)]).toEqual([
      true,
      ['host-packages: skipped', 'host-update-pending: skipped', 'health: ran'],
    ]);
  });

  it(`resolves latest, pins bm-* to ${TO} while 5.0.0 is offered, upgrades the rest of the system, and rolls the packages back`, async () => {
    const dnf = await dnfHostWith([...BM_PACKAGES, 'tzdata-fake'], FROM, TO);
    for (const p of BM_PACKAGES) await dnf.publish(p, '5.0.0');
    const bm = await fakeBlueMind();
    const host = fakeHost({
      recipe: bluemindRedhat,
      env: dnf.env,
      roles: ['core'],
      installed: FROM,
      target: TO,
      bluemind: bm,
    });
    expectOk(await host.phase('check'));
    // The check refreshed the metadata: `latest` sees every version of bm-core, 5.0.0 the newest.
    const available = await probe(bluemindRedhat.versions.available ?? { argv: [], pattern: '' }, dnf.env);
    expect([...new Set(available)].sort()).toEqual([FROM, TO, '5.0.0']);

    expectOk(await host.phase('download'));
    expect(dnf.cachedRpms().filter((f) => !f.includes(`-${FROM}-`))).toEqual([
      `bm-core-${TO}-1.noarch.rpm`,
      `bm-webmail-${TO}-1.noarch.rpm`,
      `tzdata-fake-${TO}-1.noarch.rpm`,
    ]);
    await dnf.repo.stop();
    const upgrade = await host.phase('upgrade');
    expectOk(upgrade);
    writeFileSync(host.configFile, 'server_name changed.by.the.upgrade;\n');
    expect(await dnf.rpmQuery('*')).toEqual([`bm-core-${TO}-1`, `bm-webmail-${TO}-1`, `tzdata-fake-${TO}-1`]);
    expect(result(upgrade, 'apply-packages').data?.['installed']).toEqual([
      { name: 'bm-core', version: `${TO}-1` },
      { name: 'bm-webmail', version: `${TO}-1` },
    ]);

    // The rollback puts the kept RPMs back from local disk (the repository is down), then the config.
    const rollback = await host.phase('rollback');
    expectOk(rollback);
    expect(result(rollback, 'restore-packages').versions).toEqual([FROM]);
    expect(await dnf.rpmQuery('bm-*')).toEqual([`bm-core-${FROM}-1`, `bm-webmail-${FROM}-1`]);
    expect(readFileSync(host.configFile, 'utf8')).toBe('server_name mail.example.com; # edited by hand\n');
  });
});

describe('kcm with yum (dnf through the wrapper)', () => {
  /**
   * Real programs standing in for `systemctl stop|start|is-active SERVICE`: stop and start log
   * themselves with the installed version and keep the service's state in a file; status exits 0
   * only while the service runs.
   */
  function services(dir: string, log: string, root: string) {
    const script = (name: string, body: string): string => {
      const file = path.join(dir, name);
      writeFileSync(file, `#!/bin/sh\n${body}\n`);
      chmodSync(file, 0o755);
      return file;
    };
    const state = (service: string) => path.join(dir, `${service}.state`);
    const action = (verb: 'stop' | 'start', service: string, pkg: string): string =>
      script(
        `${verb}-${service}`,
        `echo "${verb} ${service} $(cat '${path.join(root, 'opt', pkg, 'VERSION')}')" >> '${log}'\n` +
          `echo ${verb === 'stop' ? 'stopped' : 'running'} > '${state(service)}'`,
      );
    writeFileSync(state('guacamole'), 'running\n');
    writeFileSync(state('guacd'), 'running\n');
    return {
      stopWeb: action('stop', 'guacamole', 'kcm-guacamole'),
      startWeb: action('start', 'guacamole', 'kcm-guacamole'),
      stopGuacd: action('stop', 'guacd', 'kcm-guacd'),
      startGuacd: action('start', 'guacd', 'kcm-guacd'),
      statusWeb: script('status-guacamole', `grep -qx running '${state('guacamole')}'`),
      statusGuacd: script('status-guacd', `grep -qx running '${state('guacd')}'`),
    };
  }

  it('sees 2.1.0 while 3.0.0 is offered, stages and installs exactly 2.1.0 between the service stops and starts, verifies it', async () => {
    const dnf = await dnfHostWith(KCM_PACKAGES, '2.0.0', '2.1.0');
    for (const p of KCM_PACKAGES) await dnf.publish(p, '3.0.0');
    const dir = scratch('kcm-services');
    const log = path.join(dir, 'services.log');
    const vars = services(dir, log, dnf.root);
    const host = fakeHost({
      recipe: kcm,
      env: dnf.env,
      roles: [],
      installed: '2.0.0',
      target: '2.1.0',
      vars,
    });
    const installed = () => Promise.all(KCM_PACKAGES.map((p) => dnf.installedVersion(p)));
    const logged = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

    const check = await host.phase('check');
    expectOk(check);
    // The check lists what yum would upgrade to (it runs before `latest` has a target) ...
    expect(result(check, 'check-updates')).toMatchObject({ ok: true, versions: ['3.0.0'] });
    expect(result(check, 'check-updates').data?.['packages']).toEqual(
      KCM_PACKAGES.map((name) => ({ name, arch: 'noarch', version: '3.0.0-1' })),
    );
    // ... and the available probe every version the refreshed metadata offers (`latest`, plan checks).
    const available = await probe(kcm.versions.available ?? { argv: [], pattern: '' }, dnf.env);
    expect([...new Set(available)].sort()).toEqual(['2.0.0', '2.1.0', '3.0.0']);

    const download = await host.phase('download');
    expectOk(download);
    expect(await installed()).toEqual(['2.0.0', '2.0.0']);
    expect(dnf.cachedRpms().filter((f) => !f.includes('-2.0.0-'))).toEqual(
      KCM_PACKAGES.map((p) => `${p}-2.1.0-1.noarch.rpm`),
    );

    const requests = dnf.repo.requestCount;
    await dnf.repo.stop();
    const upgrade = await host.phase('upgrade');
    expectOk(upgrade);
    expect(statuses(upgrade)).toEqual([
      'stop-web: ran',
      'stop-guacd: ran',
      'apply-packages: ran',
      'start-guacd: ran',
      'start-web: ran',
    ]);
    expect(await dnf.rpmQuery('kcm-*')).toEqual(['kcm-guacamole-2.1.0-1', 'kcm-guacd-2.1.0-1']);
    expect(dnf.repo.requestCount).toBe(requests);
    // Both stopped while 2.0.0 was installed; both started once 2.1.0 was.
    expect(logged()).toEqual([
      'stop guacamole 2.0.0',
      'stop guacd 2.0.0',
      'start guacd 2.1.0',
      'start guacamole 2.1.0',
    ]);

    const verify = await host.phase('verify');
    expectOk(verify);
    expect(result(verify, 'check-installed-version')).toMatchObject({ ok: true, versions: ['2.1.0'] });

    // The rollback stops both, puts the kept 2.0.0 RPMs back from local disk, starts both.
    const rollback = await host.phase('rollback');
    expectOk(rollback);
    expect(await installed()).toEqual(['2.0.0', '2.0.0']);
    expect(logged().slice(4)).toEqual([
      'stop guacamole 2.1.0',
      'stop guacd 2.1.0',
      'start guacd 2.0.0',
      'start guacamole 2.0.0',
    ]);
    expect(dnf.repo.requestCount).toBe(requests);
  });

  it('fails verify when a package is not at the target, or a service is not running', async () => {
    const dnf = await dnfHostWith(KCM_PACKAGES, '2.0.0', '2.1.0');
    const dir = scratch('kcm-services');
    const vars = services(dir, path.join(dir, 'services.log'), dnf.root);
    const host = fakeHost({
      recipe: kcm,
      env: dnf.env,
      roles: [],
      installed: '2.0.0',
      target: '2.1.0',
      vars,
    });
    // Nothing was upgraded: the packages are still 2.0.0.
    const verify = await host.phase('verify');
    expect(verify.ok).toBe(false);
    expect(result(verify, 'check-installed-version').error).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'pinned to 2.1.0: kcm-guacamole is at 2.0.0-1, not 2.1.0; kcm-guacd is at 2.0.0-1, not 2.1.0',
    });

    const stoppedGuacd = fakeHost({
      recipe: kcm,
      env: dnf.env,
      roles: [],
      installed: '2.0.0',
      target: '2.0.0',
      vars,
    });
    writeFileSync(path.join(dir, 'guacd.state'), 'stopped\n');
    const second = await stoppedGuacd.phase('verify');
    expect(statuses(second).slice(0, 2)).toEqual([
      'check-installed-version: ran',
      expect.stringMatching(/^guacd-active: ran STEP_FAILED: /),
    ]);
  });
});

describe('bluemind after the agent died inside a phase', () => {
  it('runs the interrupted download again to a complete cache, and resumes an interrupted upgrade', async () => {
    const apt = await aptHostWith(BM_PACKAGES, FROM, TO);
    const bm = await fakeBlueMind();
    const host = fakeHost({
      recipe: bluemind,
      env: aptEnv(apt),
      roles: ['core'],
      installed: FROM,
      target: TO,
      bluemind: bm,
    });
    const installed = () => Promise.all(BM_PACKAGES.map((p) => apt.installedVersion(p)));

    // Died inside stage-packages: after the refresh, with one .deb half-fetched.
    expectOk(await host.phase('check'));
    const died = PhaseJournal.open(host.stateDir);
    died.begin(host.runId, bluemind.name, 'download', true);
    died.leave('stage-refresh', { ok: true, durationMs: 1, outputTail: '' });
    died.enter('stage-packages', 1, Date.now());
    const partial = path.join(apt.root, 'var/cache/apt/archives/partial', `bm-core_${TO}_all.deb`);
    writeFileSync(partial, '!<arch>\ndebian-binary   ');

    const download = await host.phase('download');
    // apt's contract names one row for every apt action, `resume` (running it again finishes
    // it); for a download-only run that is what `redo` would do: the step runs again.
    expect(download.resumed).toMatchObject({ action: 'resume', stepId: 'stage-packages', runId: host.runId });
    expect(statuses(download)).toEqual([
      'prepare-update: skipped',
      'stage-refresh: done-before',
      'stage-packages: ran',
    ]);
    expect(download.ok).toBe(true);
    expect(stagedDebs(apt)).toEqual(BM_PACKAGES.map((p) => `${p}_${TO}_all.deb`));
    expect(await installed()).toEqual([FROM, FROM]);

    // Died inside apply-packages: the backup was taken, and dpkg was killed with work pending.
    await apt.repo.stop();
    const crash = new Error('agent killed');
    await expect(
      host.phase('upgrade', {
        onStep: ({ step, phase }) => {
          if (step.id === 'apply-packages' && phase === 'start') throw crash;
        },
      }),
    ).rejects.toBe(crash);
    PhaseJournal.open(host.stateDir).enter('apply-packages', 1, Date.now());
    writeFileSync(path.join(apt.root, 'var/lib/dpkg/updates/0000'), '');

    const upgrade = await host.phase('upgrade');
    expect(upgrade.resumed).toMatchObject({ action: 'resume', stepId: 'apply-packages', runId: host.runId });
    expect(statuses(upgrade)).toEqual([
      'backup-system: done-before',
      'note-vhosts: done-before',
      'apply-packages: ran',
      'reenable-vhosts: ran',
    ]);
    expect(upgrade.ok).toBe(true);
    expect(await installed()).toEqual([TO, TO]);
    expect(PhaseJournal.open(host.stateDir).current).toMatchObject({ state: 'succeeded', current: null });

    expectOk(await host.phase('finalize'));
    expect(bm.setupCalls).toHaveLength(1);
  });
});
