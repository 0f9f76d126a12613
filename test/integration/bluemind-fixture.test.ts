/**
 * The BlueMind-like fixtures the demo and benchmarks build on: fake apt packages with maintainer
 * scripts and payloads, and a bm-core whose upgrade puts the fake BlueMind in maintenance for
 * exactly the time dpkg spends applying it. Real apt-get and dpkg on an isolated root.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createAptHost, type AptHost } from '../../scripts/fixtures/apt-host';
import { bmCoreScripts } from '../../scripts/fixtures/bluemind-packages';
import { FakeBlueMind } from '../../scripts/fixtures/fake-bluemind';
import { tempDir } from '../helpers/processes';

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
