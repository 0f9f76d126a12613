/**
 * The fake BlueMind as its own process (dist/scripts/fixtures/fake-bluemind-server.js), as the demo
 * and the namespaced end-to-end tests run it: it announces its port, keeps its state file whole,
 * follows the maintenance flag and the installed bm-core, and exits cleanly on SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FakeBlueMindState } from '../../scripts/fixtures/fake-bluemind';
import {
  FAKE_BLUEMIND_SERVER_JS,
  FAKE_BM_CLI_JS,
  startFakeBlueMindProcess,
  type FakeBlueMindProcess,
} from '../../scripts/fixtures/fake-bluemind-process';
import { tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(30_000);

describe('fake BlueMind server process', () => {
  let dir: string;
  let server: FakeBlueMindProcess | undefined;
  let stateFile: string;
  let flag: string;

  beforeEach(() => {
    dir = tempDir('fake-bm');
    stateFile = path.join(dir, 'state.json');
    flag = path.join(dir, 'maintenance');
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const readState = (): FakeBlueMindState => JSON.parse(readFileSync(stateFile, 'utf8')) as FakeBlueMindState;

  it('announces its port, writes its state, follows the flag, and exits 0 on SIGTERM', async () => {
    const passwordFile = path.join(dir, 'password');
    writeFileSync(passwordFile, 's3cret\n');
    server = await startFakeBlueMindProcess({ stateFile, passwordFile, maintenanceFlag: flag });
    expect(server.port).toBeGreaterThan(0);
    expect(readState()).toEqual({
      setupCalls: [],
      healthRequests: 0,
      maintenance: false,
      maintenanceSpans: [],
      update: { installed: null, setupVersion: null, prepared: null, pending: false, refusedSetups: 0 },
    });

    expect((await fetch(`${server.url}/`)).status).toBe(200);
    writeFileSync(flag, '');
    await waitFor('maintenance on in the state file', () => readState().maintenance);
    expect((await fetch(`${server.url}/`)).status).toBe(503);
    rmSync(flag);
    await waitFor('maintenance off in the state file', () => !readState().maintenance);

    const auth = `Basic ${Buffer.from('admin:s3cret').toString('base64')}`;
    const setup = await fetch(`${server.url}/setup`, { method: 'POST', headers: { authorization: auth } });
    expect(setup.status).toBe(200);
    const served = (await (await fetch(`${server.url}/state`)).json()) as FakeBlueMindState;
    expect(served).toEqual(readState());
    expect(served).toMatchObject({ healthRequests: 2, setupCalls: [{ authorized: true }] });
    expect(served.maintenanceSpans).toHaveLength(1);
    const [span] = served.maintenanceSpans;
    expect(span!.off).toBeGreaterThanOrEqual(span!.on);

    expect(await server.stop()).toBe(0);
    expect(readState()).toEqual(served);
    expect(readFileSync(stateFile, 'utf8').endsWith('\n')).toBe(true);
  });

  it('reads bm-core from a dpkg status file and stays in maintenance until a prepared /setup', async () => {
    const status = path.join(dir, 'status');
    const deploymentFile = path.join(dir, 'deployment.json');
    const logDir = path.join(dir, 'log');
    const installed = (v: string): void =>
      writeFileSync(status, `Package: bm-core\nStatus: install ok installed\nVersion: ${v}-1\n\n`);
    installed('4.1.0');
    server = await startFakeBlueMindProcess({
      stateFile,
      password: 'pw',
      dpkgStatus: status,
      deploymentFile,
      logDir,
    });
    expect(readState().update).toMatchObject({ installed: '4.1.0', setupVersion: '4.1.0', pending: false });
    installed('4.1.2');
    await waitFor('update pending in the state file', () => readState().update.pending);
    expect(readState().maintenance).toBe(true);
    const page = await fetch(`${server.url}/`);
    expect([page.status, ((await page.json()) as { update: string }).update]).toEqual([503, 'pending']);

    const auth = { authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` };
    expect((await fetch(`${server.url}/setup`, { method: 'POST', headers: auth })).status).toBe(409);
    const cli = spawnSync(
      process.execPath,
      [
        FAKE_BM_CLI_JS,
        '--deployment',
        deploymentFile,
        '--log-dir',
        logDir,
        'setup',
        'prepare',
        '--version',
        '4.1.2',
      ],
      { encoding: 'utf8' },
    );
    expect([cli.status, cli.stdout]).toEqual([0, 'update prepared: target version 4.1.2\n']);
    expect((await fetch(`${server.url}/setup`, { method: 'POST', headers: auth })).status).toBe(200);
    await waitFor('maintenance off in the state file', () => !readState().maintenance);
    expect(readState().update).toEqual({
      installed: '4.1.2',
      setupVersion: '4.1.2',
      prepared: '4.1.2',
      pending: false,
      refusedSetups: 1,
    });
    const log = readFileSync(path.join(logDir, 'bm-core.log'), 'utf8');
    expect(log).toMatch(
      /setup refused[^]*update prepared: target version 4\.1\.2[^]*data migrated to 4\.1\.2/,
    );
  });

  it('takes maintenance from PUT and DELETE /maintenance as well', async () => {
    server = await startFakeBlueMindProcess({ stateFile, password: 'pw' });
    expect((await fetch(`${server.url}/maintenance`, { method: 'PUT' })).status).toBe(204);
    expect(readState().maintenance).toBe(true);
    expect((await fetch(`${server.url}/`)).status).toBe(503);
    expect((await fetch(`${server.url}/maintenance`, { method: 'DELETE' })).status).toBe(204);
    expect(readState()).toMatchObject({ maintenance: false, healthRequests: 1 });
  });

  it.each([
    [['--password', 'pw'], /--state is required/],
    [['--state', 'x.json'], /exactly one of --password and --password-file/],
    [['--state', 'x.json', '--password', 'pw', '--port', 'http'], /--port: not a port/],
    [['--state', 'x.json', '--password', 'pw', '--bogus'], /Unknown option '--bogus'/],
  ])('refuses %j with exit 2', (args, message) => {
    const r = spawnSync(process.execPath, [FAKE_BLUEMIND_SERVER_JS, ...args], { encoding: 'utf8', cwd: dir });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
