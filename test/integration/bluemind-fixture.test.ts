/**
 * The BlueMind-like fixtures the demo and benchmarks build on: fake apt packages with maintainer
 * scripts and payloads, and a bm-core whose upgrade puts the fake BlueMind in maintenance for
 * exactly the time dpkg spends applying it; and the update as seed 001 describes it (maintenance
 * until /setup on every host, 4.1+ preparation through bm-cli, vhosts). Real apt-get and dpkg on
 * isolated roots.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import {
  blueMindHostFiles,
  writeBlueMindHostFiles,
  type BlueMindHostFiles,
} from '../../scripts/fixtures/bluemind-host-files';
import { bmCoreScripts } from '../../scripts/fixtures/bluemind-packages';
import { FakeBlueMind } from '../../scripts/fixtures/fake-bluemind';
import { tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const run = promisify(execFile);
const APPLY_MS = 300;

describe('fake apt packages', () => {
  let host: AptHost;
  beforeEach(async () => {
    host = await createAptHost();
  });
  afterEach(() => host.cleanup());

  it('run their maintainer scripts un-chrooted, with DPKG_ROOT the fake root', async () => {
    await host.publish('bm-scripted', '1.0.0', {
      preinst: 'echo "preinst $1" >> "$DPKG_ROOT/var/log/scripts.log"',
      postinst: 'echo "postinst $1 $DPKG_ROOT" >> "$DPKG_ROOT/var/log/scripts.log"',
    });
    await host.install(['bm-scripted=1.0.0']);
    expect(await host.installedVersion('bm-scripted')).toBe('1.0.0');
    const log = readFileSync(path.join(host.root, 'var/log/scripts.log'), 'utf8');
    expect(log.trim().split('\n')).toEqual(['preinst install', `postinst configure ${host.root}`]);
  });

  it('carry a payload of incompressible bytes of the size asked', async () => {
    const bytes = 3_000_000;
    await host.publish('bm-big', '1.0.0', { payloadBytes: bytes });
    const deb = path.join(host.root, '../repo/pool/bm-big_1.0.0_all.deb');
    expect(statSync(deb).size).toBeGreaterThan(bytes);
    expect(statSync(deb).size).toBeLessThan(bytes + 50_000);
    await host.install(['bm-big=1.0.0']);
    expect(statSync(path.join(host.root, 'opt/bm-big/payload.bin')).size).toBe(bytes);
  });

  it('republished at the same version, carry no script from the earlier build', async () => {
    await host.publish('bm-again', '1.0.0', { postinst: 'exit 1' });
    await host.publish('bm-again', '1.0.0');
    await host.install(['bm-again=1.0.0']);
    expect(await host.installedVersion('bm-again')).toBe('1.0.0');
  });
});

describe('bm-core upgrade against the fake BlueMind', () => {
  let host: AptHost;
  let bluemind: FakeBlueMind;
  let flag: string;

  beforeEach(async () => {
    flag = path.join(tempDir('bm-flag'), 'maintenance');
    host = await createAptHost();
    bluemind = await FakeBlueMind.start('pw', { maintenanceFlag: flag });
    await host.publish('bm-core', '4.0.0', bmCoreScripts(flag, APPLY_MS));
    await host.install(['bm-core=4.0.0']);
    await host.publish('bm-core', '4.1.0', bmCoreScripts(flag, APPLY_MS));
  });
  afterEach(async () => {
    await bluemind.stop();
    await host.cleanup();
  });

  it('is in maintenance (503) exactly while dpkg applies the package, and healthy after', async () => {
    const env = { ...process.env, ...host.env };
    await run('apt-get', ['update'], { env });
    const spansBefore = bluemind.maintenanceSpans.length;
    const statuses = new Set<number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        statuses.add((await fetch(bluemind.healthUrl)).status);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const started = Date.now();
    await run('apt-get', ['upgrade', '-y'], { env });
    const ended = Date.now();
    polling = false;
    await poller;

    expect(await host.installedVersion('bm-core')).toBe('4.1.0');
    expect(existsSync(flag)).toBe(false);
    expect(bluemind.maintenance).toBe(false);
    const spans = bluemind.maintenanceSpans.slice(spansBefore);
    expect(spans).toHaveLength(1);
    const [span] = spans;
    expect(span!.off).not.toBeNull();
    expect(span!.on).toBeGreaterThanOrEqual(started);
    expect(span!.off!).toBeLessThanOrEqual(ended + 25);
    expect(span!.off! - span!.on).toBeGreaterThanOrEqual(APPLY_MS - 25);
    expect(span!.off! - span!.on).toBeLessThan(ended - started + 25);
    expect(statuses).toEqual(new Set([200, 503]));
    expect((await fetch(bluemind.healthUrl)).status).toBe(200);
  });

  it('answers GET /state and the PUT/DELETE /maintenance switch', async () => {
    expect((await fetch(bluemind.maintenanceUrl, { method: 'PUT' })).status).toBe(204);
    expect((await fetch(bluemind.healthUrl)).status).toBe(503);
    expect((await fetch(bluemind.maintenanceUrl, { method: 'DELETE' })).status).toBe(204);
    const auth = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
    expect(
      (await fetch(bluemind.setupUrl, { method: 'POST', headers: { authorization: auth } })).status,
    ).toBe(200);
    const state = (await (await fetch(bluemind.stateUrl)).json()) as ReturnType<FakeBlueMind['state']>;
    expect(state).toEqual(bluemind.state());
    expect(state).toMatchObject({
      healthRequests: 1,
      maintenance: false,
      setupCalls: [{ authorized: true }],
    });
    // One span from installing 4.0.0 in beforeEach, one from the switch.
    expect(state.maintenanceSpans).toHaveLength(2);
    expect(bluemind.setupCalls).toEqual([{ authorized: true, user: 'admin' }]);
  });
});

describe('a bm-core update on two hosts, as seed 001 describes BlueMind', () => {
  const FROM = '4.1.0';
  const TO = '4.1.2';
  const hosts: { apt: AptHost; bluemind: FakeBlueMind; files: BlueMindHostFiles; flag: string }[] = [];
  let deploymentFile: string;

  beforeEach(async () => {
    const root = tempDir('bm-seed');
    deploymentFile = path.join(root, 'deployment.json');
    for (const name of ['core', 'node']) {
      const apt = await createAptHost();
      const flag = path.join(root, `${name}.maintenance`);
      await apt.publish('bm-core', FROM, bmCoreScripts(flag, 50));
      await apt.install([`bm-core=${FROM}`]);
      await apt.publish('bm-core', TO, bmCoreScripts(flag, 50));
      const files = { ...blueMindHostFiles(path.join(root, name), apt.root, root), deploymentFile };
      writeBlueMindHostFiles(files, { healthFile: false });
      const bluemind = await FakeBlueMind.start('pw', {
        maintenanceFlag: flag,
        dpkgStatus: files.dpkgStatus,
        deploymentFile,
        nginxDir: files.nginxDir,
        dataDir: files.dataDir,
        logDir: files.logDir,
      });
      hosts.push({ apt, bluemind, files, flag });
    }
  });
  afterEach(async () => {
    for (const h of hosts.splice(0)) {
      await h.bluemind.stop();
      await h.apt.cleanup();
    }
  });

  const setup = (h: { bluemind: FakeBlueMind }): Promise<Response> =>
    fetch(h.bluemind.setupUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` },
    });
  const enabled = (h: { files: BlueMindHostFiles }): string[] =>
    readdirSync(path.join(h.files.nginxDir, 'sites-enabled')).sort();
  const bmCli = (h: { files: BlueMindHostFiles }, ...args: string[]) =>
    run(path.join(h.files.binDir, 'bm-cli'), args);

  it('stays in maintenance from the package upgrade until /setup, which ends it on every host', async () => {
    for (const h of hosts) {
      expect((await fetch(h.bluemind.healthUrl)).status).toBe(200);
      await run('apt-get', ['update'], { env: { ...process.env, ...h.apt.env } });
      await run('apt-get', ['upgrade', '-y'], { env: { ...process.env, ...h.apt.env } });
      expect(await h.apt.installedVersion('bm-core')).toBe(TO);
    }
    // dpkg is done and bm-core's postinst removed its flag: still in maintenance, update pending.
    for (const h of hosts) {
      expect(existsSync(h.flag)).toBe(false);
      const page = await fetch(h.bluemind.healthUrl);
      expect(page.status).toBe(503);
      expect(await page.json()).toEqual({
        state: 'maintenance',
        update: 'pending',
        installed: TO,
        setupVersion: FROM,
      });
      // "All VHosts are disabled during updates".
      expect(enabled(h)).toEqual([]);
    }
    const [core, node] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    // From 4.1 on, an update that was not prepared is refused, and stays pending.
    const refused = await setup(core);
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain(`update to ${TO} not prepared`);
    expect(core.bluemind.maintenance).toBe(true);
    expect(readFileSync(path.join(core.files.logDir, 'bm-core.log'), 'utf8')).toContain('setup refused');

    expect((await bmCli(node, 'setup', 'prepare', '--version', TO)).stdout).toContain(
      `update prepared: target version ${TO}`,
    );
    expect(JSON.parse((await bmCli(core, 'setup', 'status')).stdout)).toEqual({
      installed: TO,
      setupVersion: FROM,
      prepared: TO,
      pending: true,
    });
    const done = await setup(core);
    expect([done.status, await done.text()]).toEqual([200, `update done: ${TO}\n`]);
    for (const h of hosts) {
      await waitFor('the host out of maintenance', () => !h.bluemind.maintenance);
      expect((await fetch(h.bluemind.healthUrl)).status).toBe(200);
      // BlueMind's own vhosts come back; the site's own does not.
      expect(enabled(h)).toEqual(['bm-client-access', 'bm-webmail']);
      expect(h.bluemind.maintenanceSpans).toHaveLength(1);
      expect(h.bluemind.state().update).toMatchObject({ installed: TO, setupVersion: TO, pending: false });
    }
    expect(readFileSync(path.join(core.files.dataDir, 'schema-version'), 'utf8')).toBe(`${TO}\n`);
    // Played again: nothing to do.
    expect(await (await setup(core)).text()).toBe('nothing to update\n');
  });

  it('leaves maintenance when the old packages come back before /setup, and not after it', async () => {
    const [core] = hosts as [(typeof hosts)[0]];
    const env = { ...process.env, ...core.apt.env };
    await run('apt-get', ['update'], { env });
    await run('apt-get', ['install', '-y', `bm-core=${TO}`], { env });
    await waitFor('update pending', () => core.bluemind.state().update.pending);
    await run('apt-get', ['install', '-y', '--allow-downgrades', `bm-core=${FROM}`], { env });
    await waitFor('out of maintenance', () => !core.bluemind.maintenance);
    expect((await fetch(core.bluemind.healthUrl)).status).toBe(200);

    await run('apt-get', ['install', '-y', `bm-core=${TO}`], { env });
    await bmCli(core, 'setup', 'prepare', '--version', TO);
    expect((await setup(core)).status).toBe(200);
    await waitFor('out of maintenance', () => !core.bluemind.maintenance);
    // After /setup the data is migrated: old packages again leave the host waiting for ever.
    await run('apt-get', ['install', '-y', '--allow-downgrades', `bm-core=${FROM}`], { env });
    await waitFor('back in maintenance', () => core.bluemind.maintenance);
    expect((await fetch(core.bluemind.healthUrl)).status).toBe(503);
  });
});
