/**
 * Application deployments rolled out end to end: one controller process, one agent process per
 * fake host (each with its host's environment), driven through the real CLI (`convoy apply`,
 * `convoy rollout start --stage-now`, `rollout status`), and hosts built from the fixtures the
 * recipe tests use: a dnf installroot for KCM, a git clone for passbolt.
 *
 * Every CLI call is asynchronous: the fake applications' health pages are served from the test
 * process itself, which must keep answering while a rollout runs.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { RolloutView } from '../../controller/rollout/view';
import { createDnfHost, type DnfHost } from '../fixtures/dnf-host';
import type { GitAppRepo } from '../fixtures/git-repo';
import { shq, writeScript } from './fake-apps';
import { AGENT_BIN, CONVOY_BIN, Daemon, runAsync, tempDir, type RunResult } from './processes';
import { hostState, MACHINE_RPM_PATHS } from './host-state';
import { isResting, type EventDoc } from './rollout-probe';
import { queryStore } from './store-query';
import { waitFor } from './wait';

/** Open at every instant: each minute starts a one-day window (overlapping occurrences are one). */
export const ALWAYS_OPEN = { cron: '* * * * *', duration: '1d', timezone: 'UTC' } as const;

export interface StepRow {
  stepId: string;
  status: string;
  ok: number | null;
  versions: string[];
  outputTail: string;
}

export interface AppHost {
  readonly name: string;
  readonly id: string;
  readonly agent: Daemon;
}

/** A fleet file with one deployment whose window is always open. */
export function fleetFile(deployment: {
  name: string;
  recipe: string;
  target?: string;
  hosts: { id: string; vars: Record<string, string> }[];
  batches?: Record<string, unknown>;
}): string {
  return stringify({
    windows: { always: { ...ALWAYS_OPEN } },
    deployments: [{ ...deployment, target: deployment.target ?? 'latest', window: 'always' }],
  });
}

export class AppFleet {
  readonly root = tempDir('app-fleet');
  readonly stateDir = path.join(this.root, 'controller');
  readonly hosts: AppHost[] = [];
  private controller: Daemon | undefined;
  private address = '';
  private key = '';

  static async start(): Promise<AppFleet> {
    const fleet = new AppFleet();
    fleet.controller = new Daemon(CONVOY_BIN, [
      'controller',
      'start',
      '--state-dir',
      fleet.stateDir,
      '--listen',
      '127.0.0.1:0',
      // Generous: these tests kill no agent, and a busy machine must not make one look gone
      // (a phase whose answer is lost is reconciled from the journal, without its step results).
      '--heartbeat-interval',
      '1s',
      '--heartbeat-timeout',
      '10s',
    ]);
    const m = await fleet.controller.waitForOutput(/agents on (\S+); key (\S+)/, 20_000);
    fleet.address = m[1] ?? '';
    fleet.key = m[2] ?? '';
    return fleet;
  }

  async cli(...args: string[]): Promise<RunResult> {
    return runAsync(CONVOY_BIN, [...args, '--state-dir', this.stateDir]);
  }

  async cliOk(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    if (r.code !== 0)
      throw new Error(`convoy ${args.join(' ')} exited ${r.code}: ${r.stderr}\n${this.dump()}`);
    return r.stdout;
  }

  async cliJson<T>(...args: string[]): Promise<T> {
    return JSON.parse(await this.cliOk(...args, '--json')) as T;
  }

  /**
   * Enrolls one agent per host (trusting `releaseKeys` for signed artifacts) and runs it with that
   * host's environment; waits until all are online.
   */
  async addHosts(
    specs: readonly {
      name: string;
      env: Readonly<Record<string, string>>;
      releaseKeys?: readonly string[];
    }[],
  ): Promise<AppHost[]> {
    const token = (
      await this.cliOk('token', 'create', '--ttl', '10m', '--uses', String(specs.length))
    ).trim();
    const added = await Promise.all(
      specs.map(async ({ name, env, releaseKeys }) => {
        const dir = path.join(this.root, `agent-${name}`);
        const enrolled = await runAsync(AGENT_BIN, [
          'enroll',
          '--controller',
          this.address,
          '--token',
          token,
          '--controller-key',
          this.key,
          '--state-dir',
          dir,
          '--hostname',
          name,
          '--json',
          ...(releaseKeys ?? []).flatMap((k) => ['--release-key', k]),
        ]);
        if (enrolled.code !== 0)
          throw new Error(`enroll ${name} exited ${enrolled.code}: ${enrolled.stderr}`);
        const id = (JSON.parse(enrolled.stdout) as { hostId: string }).hostId;
        const agent = new Daemon(AGENT_BIN, ['run', '--state-dir', dir], env);
        return { name, id, agent };
      }),
    );
    this.hosts.push(...added);
    await waitFor(
      `${this.hosts.length} agents online`,
      async () => {
        const r = await this.cli('status', '--json');
        if (r.code !== 0) return false;
        const hosts = (JSON.parse(r.stdout) as { hosts: { online: boolean }[] }).hosts;
        return hosts.filter((h) => h.online).length === this.hosts.length;
      },
      20_000,
      100,
    );
    return added;
  }

  /** `convoy apply` the file, `convoy rollout start DEPLOYMENT --stage-now`; returns the rollout id. */
  async startRollout(yaml: string, deployment: string): Promise<string> {
    const file = path.join(this.root, `${deployment}.fleet.yaml`);
    writeFileSync(file, yaml);
    await this.cliOk('apply', file);
    return (await this.cliJson<RolloutView>('rollout', 'start', deployment, '--stage-now')).id;
  }

  /** Polls `rollout status` until STATE; a rollout that stops elsewhere fails at once, with the logs. */
  async waitRollout(id: string, state: string, timeoutMs = 45_000): Promise<RolloutView> {
    let last: RolloutView | undefined;
    try {
      return await waitFor(
        `rollout ${id} ${state}`,
        async () => {
          last = await this.cliJson<RolloutView>('rollout', 'status', id);
          if (last.state !== state && isResting(last))
            throw new Error(`rollout ${id} is ${last.state}: ${last.reason}`);
          return last.state === state ? last : undefined;
        },
        timeoutMs,
        200,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${JSON.stringify(last, null, 2)}\n${this.dump()}`);
    }
  }

  async events(id: string): Promise<EventDoc[]> {
    return this.cliJson<EventDoc[]>('events', '--rollout', id, '--limit', '10000');
  }

  /** The steps the controller stored for one host's PHASE of the rollout, in the order they ran. */
  async steps(rolloutId: string, hostId: string, phase: string): Promise<StepRow[]> {
    const rows = await queryStore<{
      step_id: string;
      status: string;
      ok: number | null;
      versions_json: string;
      output_tail: string;
    }>(
      this.stateDir,
      `SELECT s.step_id, s.status, s.ok, s.versions_json, s.output_tail
         FROM step_results s JOIN phase_runs p ON s.phase_run_id = p.id
        WHERE p.host_id = ? AND p.phase = ? AND p.run_id LIKE ?
        ORDER BY p.started_at, s.rowid`,
      [hostId, phase, `${rolloutId}-%`],
    );
    return rows.map((r) => ({
      stepId: r.step_id,
      status: r.status,
      ok: r.ok,
      versions: JSON.parse(r.versions_json) as string[],
      outputTail: r.output_tail,
    }));
  }

  dump(): string {
    const parts = [`controller:\n${this.controller?.stderr.slice(-4000) ?? ''}`];
    for (const h of this.hosts) parts.push(`agent ${h.name}:\n${h.agent.stderr.slice(-3000)}`);
    return parts.join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.agent.stop()));
    await this.controller?.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}

// ---- KCM: RPMs in a dnf installroot, services as logging scripts ------------------------------

/** Where the machine's own rpm and dnf keep state: agents acting on fake hosts must never touch it. */
export function machineRpmState(): string {
  return hostState([...MACHINE_RPM_PATHS, '/var/lib/rpm']);
}

export const KCM_PACKAGES = ['kcm-guacamole', 'kcm-guacd'] as const;

export interface KcmHost {
  readonly dnf: DnfHost;
  /** The agent's environment: `rpm`, `yum` and `dnf` act on this host's root. */
  readonly env: Readonly<Record<string, string>>;
  /** The recipe vars of this host: the stop/start/status commands of its two services. */
  readonly vars: Record<string, string>;
  /** One line per service action: `stop guacd 2.0.0` (the version rpm reports at that moment). */
  readonly serviceLog: string;
  /** `running` or `stopped` per service, as the last action left it. */
  serviceState(service: 'guacamole' | 'guacd'): string;
  installed(): Promise<(string | undefined)[]>;
  cleanup(): Promise<void>;
}

/**
 * A RedHat host with KCM FROM installed and TO published in its repository. Its `rpm` is
 * wrapped like its `yum` (--root, the root's database): the recipe's version probe runs the
 * vendor's literal `rpm -q`, which must read this host's database, not the machine's.
 */
export async function createKcmHost(from: string, to: string): Promise<KcmHost> {
  const dnf = await createDnfHost();
  const dir = path.join(path.dirname(dnf.root), 'kcm');
  const home = path.join(dir, 'home');
  mkdirSync(home, { recursive: true });
  writeFileSync(path.join(home, '.rpmmacros'), '%_dbpath /var/lib/rpm\n');
  const rpm = writeScript(
    path.join(dir, 'bin/rpm'),
    `#!/bin/sh\nHOME=${shq(home)} exec /usr/bin/rpm --root ${shq(dnf.root)} --dbpath /var/lib/rpm "$@"\n`,
  );
  for (const p of KCM_PACKAGES) await dnf.publish(p, from);
  await dnf.install(KCM_PACKAGES.map((p) => `${p}-${from}`));
  for (const p of KCM_PACKAGES) await dnf.publish(p, to);

  const serviceLog = path.join(dir, 'services.log');
  const stateFile = (service: string): string => path.join(dir, `${service}.state`);
  const script = (action: 'stop' | 'start', service: string, pkg: string): string =>
    writeScript(
      path.join(dir, `${action}-${service}`),
      `#!/bin/sh
# Stands in for systemctl ${action} ${service}: logs the installed ${pkg} and keeps the state.
echo "${action} ${service} $(${shq(rpm)} -q --qf '%{VERSION}' ${pkg})" >> ${shq(serviceLog)}
echo ${action === 'stop' ? 'stopped' : 'running'} > ${shq(stateFile(service))}
`,
    );
  // Stands in for `systemctl is-active SERVICE`: exit 0 only while it runs.
  const status = (service: string): string =>
    writeScript(
      path.join(dir, `status-${service}`),
      `#!/bin/sh\ngrep -qx running ${shq(stateFile(service))}\n`,
    );
  writeFileSync(stateFile('guacamole'), 'running\n');
  writeFileSync(stateFile('guacd'), 'running\n');
  return {
    dnf,
    env: { PATH: `${path.dirname(rpm)}:${dnf.env['PATH'] ?? ''}` },
    vars: {
      stopWeb: script('stop', 'guacamole', 'kcm-guacamole'),
      startWeb: script('start', 'guacamole', 'kcm-guacamole'),
      stopGuacd: script('stop', 'guacd', 'kcm-guacd'),
      startGuacd: script('start', 'guacd', 'kcm-guacd'),
      statusWeb: status('guacamole'),
      statusGuacd: status('guacd'),
    },
    serviceLog,
    serviceState: (service) => readText(stateFile(service)),
    installed: () => Promise.all(KCM_PACKAGES.map((p) => dnf.installedVersion(p))),
    cleanup: () => dnf.cleanup(),
  };
}

// ---- passbolt: a git clone at a tag, a maintenance flag, a health page -----------------------

export interface PassboltSite {
  readonly appDir: string;
  readonly flag: string;
  /** One line per composer run (args, cwd, release, maintenance) and the health code it saw. */
  readonly composerLog: string;
  /** One line per checkout (the post-checkout hook): `v2.1.0 maintenance=on`. */
  readonly checkoutLog: string;
  /** Status codes the health page answered, in order. */
  readonly answered: number[];
  readonly vars: Record<string, string>;
  close(): Promise<void>;
}

/**
 * What passbolt's /healthcheck finds wrong with the site in APPDIR: the database schema (the fake's
 * `tmp/migrations.applied`) must hold the migration of the release checked out, and none of a
 * later release.
 */
export function passboltHealthProblems(appDir: string): string[] {
  const release = readText(path.join(appDir, 'VERSION'));
  const applied = readText(path.join(appDir, 'tmp/migrations.applied'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/\.sh$/, ''));
  const problems: string[] = [];
  if (!applied.includes(release)) problems.push(`the database lacks the migrations of ${release}`);
  const later = applied.filter((v) => compareVersions(v, release) > 0);
  if (later.length > 0) problems.push(`the database has migrations of a later release: ${later.join(' ')}`);
  return problems;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * A passbolt install cloned from REPO at TAG, with the maintenance flag in its git-ignored tmp/,
 * a fake composer, a fake MySQL client that loads a dump into the fake's database, a
 * post-checkout hook that records the checkout, and the site on 127.0.0.1:0: the web server
 * serves the maintenance page (503) for every path while the flag exists (the `if (-f flag)`
 * rule docs/recipes.md shows), otherwise `/healthcheck` answers 200 when passbolt's checks pass
 * (passboltHealthProblems) and 500 listing them when not.
 */
export async function createPassboltSite(repo: GitAppRepo, tag: string): Promise<PassboltSite> {
  const appDir = await repo.cloneAt(tag);
  const flag = path.join(appDir, 'tmp/maintenance.flag');
  const answered: number[] = [];
  const server = createServer((req, res) => {
    const reply = (code: number, body: unknown): void => {
      answered.push(code);
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (existsSync(flag)) return reply(503, { header: { status: 'error' }, body: 'maintenance' });
    if (req.url !== '/healthcheck') return reply(404, { header: { status: 'error' }, body: 'not found' });
    const problems = passboltHealthProblems(appDir);
    reply(problems.length === 0 ? 200 : 500, {
      header: { status: problems.length === 0 ? 'success' : 'error' },
      body: { database: { schema: problems.length === 0 }, problems },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const healthUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthcheck`;

  const dir = path.join(path.dirname(appDir), `${path.basename(appDir)}-site`);
  const composerLog = path.join(dir, 'composer.log');
  const checkoutLog = path.join(dir, 'checkout.log');
  const maintenance = `m=off; [ -f ${shq(flag)} ] && m=on`;
  const composer = writeScript(
    path.join(dir, 'bin/composer'),
    `#!/bin/sh
${maintenance}
echo "args=$* cwd=$(pwd) release=$(cat VERSION) maintenance=$m" >> ${shq(composerLog)}
${shq(process.execPath)} -e 'require("http").get(process.argv[1], (r) => { console.log("health=" + r.statusCode); r.resume(); })' ${shq(healthUrl)} >> ${shq(composerLog)}
`,
  );
  writeScript(
    path.join(appDir, '.git/hooks/post-checkout'),
    `#!/bin/sh\n${maintenance}\necho "$(git describe --tags --exact-match HEAD) maintenance=$m" >> ${shq(checkoutLog)}\n`,
  );
  const mysql = writeScript(
    path.join(dir, 'bin/mysql'),
    `#!/bin/sh\n# Fake MySQL client: loads a dump (stdin) into the fake's database.\n[ "$1" = passbolt ] || { echo "mysql: unknown database $1" >&2; exit 1; }\ncat > ${shq(appDir)}/tmp/migrations.applied.load && mv ${shq(appDir)}/tmp/migrations.applied.load ${shq(appDir)}/tmp/migrations.applied\n`,
  );
  // The installed release ran its migrations and has a warm cache (tmp/ is git-ignored).
  mkdirSync(path.join(appDir, 'tmp/cache/persistent'), { recursive: true });
  writeFileSync(path.join(appDir, 'tmp/migrations.applied'), '2.0.2.sh\n2.0.3.sh\n');
  writeFileSync(path.join(appDir, 'tmp/cache/persistent/myapp_cake_core_'), 'cached');
  return {
    appDir,
    flag,
    composerLog,
    checkoutLog,
    answered,
    vars: { appDir, maintenanceFlag: flag, healthUrl, composer, mysql },
    close: () => closeServer(server),
  };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}
