/**
 * The built-in kcm and passbolt recipes, rolled out through the controller end to end: a
 * controller process and one agent process per fake host, `convoy apply` of a fleet file with an
 * always-open window, `convoy rollout start --stage-now`, and the rollout watched to `succeeded`.
 * Each test then checks the hosts themselves: the rpm database of every installroot and what the
 * services saw when they were stopped and started (kcm); the checked-out tag, the maintenance
 * flag around the checkout, composer, migrations and the health page (passbolt).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RolloutView } from '../../controller/rollout/view';
import { createGitAppRepo, type GitAppRepo } from '../fixtures/git-repo';
import { logLines } from '../helpers/fake-apps';
import {
  AppFleet,
  createKcmHost,
  createPassboltSite,
  fleetFile,
  KCM_PACKAGES,
  machineRpmState,
  type AppHost,
  type KcmHost,
  type PassboltSite,
  type StepRow,
} from '../helpers/app-fleets';
import { eventId } from '../helpers/rollout-probe';

jest.setTimeout(60_000);

/** `[step, status, ok]` rows: one readable assertion per phase. */
const summary = (steps: readonly StepRow[]): [string, string, boolean][] =>
  steps.map((s) => [s.stepId, s.status, s.ok === 1]);
const ran = (...ids: string[]): [string, string, boolean][] => ids.map((id) => [id, 'ran', true]);

describe('kcm rolled out on two hosts', () => {
  const FROM = '2.0.0';
  const TO = '2.1.0';
  let fleet: AppFleet;
  const kcm: KcmHost[] = [];
  let hosts: AppHost[];
  let doc: RolloutView;
  const machineBefore = machineRpmState();

  beforeAll(async () => {
    fleet = await AppFleet.start();
    kcm.push(...(await Promise.all([createKcmHost(FROM, TO), createKcmHost(FROM, TO)])));
    hosts = await fleet.addHosts(kcm.map((k, i) => ({ name: `kcm-${i + 1}`, env: k.env })));
    const yaml = fleetFile({
      name: 'kcm-prod',
      recipe: 'kcm',
      // kcm.yaml's `versions.available` probe (yum repoquery) resolves `latest` to TO.
      target: 'latest',
      batches: { canary: 1, concurrency: 1 },
      hosts: hosts.map((h, i) => ({ id: h.id, vars: kcm[i]?.vars ?? {} })),
    });
    const id = await fleet.startRollout(yaml, 'kcm-prod');
    doc = await fleet.waitRollout(id, 'succeeded', 240_000);
    // Two hosts one after the other, each with some twenty dnf and rpm runs (pins read the rpm
    // database and the repository; the download keeps the installed RPMs): slower than the default.
  }, 300_000);

  afterAll(async () => {
    await fleet?.stop();
    await Promise.all(kcm.map((k) => k.cleanup()));
  });

  it('succeeds with every host verified on the target', () => {
    expect(doc.target).toBe(TO);
    expect(doc.hosts.map((h) => [h.hostname, h.batch, h.state, h.installed, h.staged])).toEqual([
      ['kcm-1', 0, 'verified', TO, TO],
      ['kcm-2', 1, 'verified', TO, TO],
    ]);
  });

  it("leaves both packages at the new version in each host's rpm database", async () => {
    for (const k of kcm) expect(await k.installed()).toEqual([TO, TO]);
  });

  it('stops both services before the yum upgrade and starts them after it, on each host', async () => {
    for (const [i, k] of kcm.entries()) {
      // Each line carries the version rpm reported when the service command ran.
      expect(logLines(k.serviceLog)).toEqual([
        `stop guacamole ${FROM}`,
        `stop guacd ${FROM}`,
        `start guacd ${TO}`,
        `start guacamole ${TO}`,
      ]);
      expect([k.serviceState('guacamole'), k.serviceState('guacd')]).toEqual(['running', 'running']);
      const upgrade = await fleet.steps(doc.id, hosts[i]?.id ?? '', 'upgrade');
      expect(summary(upgrade)).toEqual(
        ran('stop-web', 'stop-guacd', 'apply-packages', 'start-guacd', 'start-web'),
      );
      // Read back from rpm, as application versions: never `2.1.0-1` (a semver prerelease).
      expect(upgrade[2]?.versions).toEqual([TO]);
    }
  });

  it('staged the RPMs on every host before any upgrade, and upgraded the canary first', async () => {
    const events = await fleet.events(doc.id);
    const firstUpgrade = eventId(events, 'rollout.host.upgrading');
    for (const [i, k] of kcm.entries()) {
      const hostId = hosts[i]?.id ?? '';
      expect(eventId(events, 'rollout.host.staging.ok', hostId)).toBeLessThan(firstUpgrade);
      expect(summary(await fleet.steps(doc.id, hostId, 'download'))).toEqual(
        ran('stage-makecache', 'stage-packages'),
      );
      expect(k.dnf.cachedRpms().filter((f) => f.includes(`-${TO}-`))).toEqual(
        KCM_PACKAGES.map((p) => `${p}-${TO}-1.noarch.rpm`),
      );
    }
    const [canary, second] = hosts.map((h) => h.id);
    expect(eventId(events, 'rollout.host.verifying.ok', canary)).toBeLessThan(
      eventId(events, 'rollout.host.upgrading', second),
    );
  });

  it("never touched the machine's own rpm database or dnf state", () => {
    expect(machineRpmState()).toBe(machineBefore);
  });

  it('verified after each upgrade and again at the end: kcm-* at the target in rpm, both services active', async () => {
    for (const h of hosts) {
      const verify = await fleet.steps(doc.id, h.id, 'verify');
      expect(verify.map((s) => [s.stepId, s.ok, s.versions])).toEqual(
        [1, 2].flatMap(() => [
          ['check-installed-version', 1, [TO]],
          ['guacd-active', 1, []],
          ['web-active', 1, []],
        ]),
      );
    }
  });
});

describe('passbolt rolled out on two hosts', () => {
  const FROM = '2.0.3';
  const TO = '2.1.0';
  let repo: GitAppRepo;
  let fleet: AppFleet;
  const sites: PassboltSite[] = [];
  let hosts: AppHost[];
  let doc: RolloutView;

  const git = async (dir: string, ...args: string[]): Promise<string> => (await repo.git(dir, args)).trim();

  beforeAll(async () => {
    // Cloned when 2.0.3 was the newest: the rollout's check has to fetch the new tag.
    repo = await createGitAppRepo(['2.0.2', FROM]);
    sites.push(await createPassboltSite(repo, `v${FROM}`), await createPassboltSite(repo, `v${FROM}`));
    await repo.publish(TO);
    fleet = await AppFleet.start();
    hosts = await fleet.addHosts(sites.map((_, i) => ({ name: `passbolt-${i + 1}`, env: {} })));
    const yaml = fleetFile({
      name: 'passbolt-prod',
      recipe: 'passbolt',
      batches: { canary: 1, concurrency: 1 },
      hosts: hosts.map((h, i) => ({ id: h.id, vars: sites[i]?.vars ?? {} })),
    });
    const id = await fleet.startRollout(yaml, 'passbolt-prod');
    doc = await fleet.waitRollout(id, 'succeeded');
  });

  afterAll(async () => {
    await fleet?.stop();
    await Promise.all(sites.map((s) => s.close()));
    repo?.cleanup();
  });

  it('resolves latest to the new tag and succeeds with every host verified on it', () => {
    expect(doc.target).toBe(TO);
    expect(doc.hosts.map((h) => [h.hostname, h.state, h.installed, h.staged])).toEqual([
      ['passbolt-1', 'verified', TO, TO],
      ['passbolt-2', 'verified', TO, TO],
    ]);
  });

  it('checks out the new tag with the site in maintenance, and leaves a clean tree', async () => {
    for (const [i, site] of sites.entries()) {
      // Staging fetched the tags and moved nothing: the one checkout is the upgrade's.
      expect(summary(await fleet.steps(doc.id, hosts[i]?.id ?? '', 'download'))).toEqual(ran('stage-tags'));
      expect(await git(site.appDir, 'rev-parse', 'HEAD')).toBe(
        await git(site.appDir, 'rev-parse', `v${TO}^{commit}`),
      );
      expect(readFileSync(path.join(site.appDir, 'VERSION'), 'utf8').trim()).toBe(TO);
      expect(await git(site.appDir, 'status', '--porcelain')).toBe('');
      expect(logLines(site.checkoutLog)).toEqual([`v${TO} maintenance=on`]);
      // composer ran on the new release while the health page answered 503.
      expect(logLines(site.composerLog)).toEqual([
        `args=install --no-dev --no-interaction cwd=${site.appDir} release=${TO} maintenance=on`,
        'health=503',
      ]);
    }
  });

  it('migrates with a backup, clears the cache, and puts the site back online', async () => {
    for (const [i, site] of sites.entries()) {
      const upgrade = await fleet.steps(doc.id, hosts[i]?.id ?? '', 'upgrade');
      expect(summary(upgrade)).toEqual(
        ran(
          'mark-rollback-point',
          'forget-last-migration-stamp',
          'site-down',
          'checkout-release',
          'update-libraries',
          'stamp-before-migrate',
          'migrate',
          'clear-cache',
          'site-up',
        ),
      );
      expect(logLines(path.join(site.appDir, 'tmp/migrations.applied'))).toEqual([
        '2.0.2.sh',
        `${FROM}.sh`,
        `${TO}.sh`,
      ]);
      // migrate --backup's dump, where passbolt writes it; the cache cleared around it.
      const dumps = path.join(site.appDir, 'tmp/cache/database/backup');
      const backups = readdirSync(dumps);
      expect(backups).toEqual([expect.stringMatching(/^backup_\d+\.sql$/)]);
      expect(readFileSync(path.join(dumps, backups[0] ?? ''), 'utf8')).toBe(`2.0.2.sh\n${FROM}.sh\n`);
      expect(readdirSync(path.join(site.appDir, 'tmp/cache'))).toEqual(['database']);
      expect(existsSync(site.flag)).toBe(false);
      expect(site.answered).toContain(503);
      expect(site.answered.at(-1)).toBe(200);
      // What the recipe's version probe reads on the host.
      expect(await git(site.appDir, 'describe', '--tags', '--exact-match')).toBe(`v${TO}`);
      // The code a rollback would go back to: the tag installed before (with the dump above).
      expect(await git(site.appDir, 'rev-parse', 'refs/convoy/rollback-to')).toBe(
        await git(site.appDir, 'rev-parse', `v${FROM}^{commit}`),
      );
    }
  });
});
