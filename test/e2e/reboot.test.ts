/**
 * Reboots in a rollout, on a real controller and a real agent process (loopback). The "host" is a
 * temp dir: the agent reads its boot id from a file there (CONVOY_BOOT_ID_FILE), and the reboot
 * step's command is a script of the test. To reboot, the script writes a new boot id and stops
 * the agent (SIGTERM, as systemd does on the way down); the test then "boots" the host by starting
 * the agent again, when it chooses, so that what the controller shows meanwhile can be read.
 *
 * The application: its version is a file; `install` stages the new version, the reboot comes
 * next, `activate` (after the reboot) makes it current; verify reads it back.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { FINISHED_ROLLOUT_STATES, isIn } from '../../controller/rollout/model';
import type { RolloutView } from '../../controller/rollout/view';
import { fleetFile } from '../helpers/app-fleets';
import { TestFleet } from '../helpers/fleet';
import { AGENT_BIN, CONVOY_BIN, Daemon, tempDir } from '../helpers/processes';
import { isResting, type EventDoc } from '../helpers/rollout-probe';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';

jest.setTimeout(90_000);

const REBOOT_BOUND = '6s';

function recipeYaml(bound = REBOOT_BOUND): string {
  const sh = (script: string): string => `['/bin/sh', '-c', '${script}']`;
  const log = (word: string): string => `echo ${word} >> {{var.root}}/ran.log`;
  return `
name: rebooter
description: an application whose upgrade reboots the host between install and activate
versions:
  installed: { argv: [/bin/cat, '{{var.root}}/version'], pattern: '([0-9]+\\.[0-9]+\\.[0-9]+)' }
vars: { root: /nonexistent }
phases:
  check:
    - { id: read, type: exec, argv: [/bin/cat, '{{var.root}}/version'], onInterrupt: redo, source: test }
  download:
    - { id: fetch, type: exec, argv: ${sh(log('fetch'))}, onInterrupt: redo, source: test }
  upgrade:
    - { id: install, type: exec, argv: ${sh(`${log('install')}; echo {{target}} > {{var.root}}/version.new`)}, source: test }
    - { id: reboot-now, type: reboot, reboot: always, timeout: ${bound}, command: ['{{var.root}}/reboot.sh'], source: test }
    - { id: activate, type: exec, argv: ${sh(`${log('activate')}; mv {{var.root}}/version.new {{var.root}}/version`)}, source: test }
  verify:
    - { id: version-is-target, type: exec, argv: ${sh('grep -qx {{target}} {{var.root}}/version')}, onInterrupt: redo, source: test }
  rollback:
    - { id: undo, type: exec, argv: ${sh(`${log('rollback')}; rm -f {{var.root}}/version.new`)}, onInterrupt: redo, source: test }
`;
}

/** A reboot that happens: a new boot id, and the agent goes down as systemd would stop it. */
const REBOOTS = `#!/bin/sh
echo reboot >> "$ROOT/ran.log"
cat /proc/sys/kernel/random/uuid > "$ROOT/boot_id"
kill -TERM $PPID
`;
/** A reboot command that "succeeds" and changes nothing (a cancelled shutdown). */
const DOES_NOT_REBOOT = `#!/bin/sh
echo reboot >> "$ROOT/ran.log"
`;

interface StepRow {
  step_id: string;
  status: string;
  ok: number | null;
  error_code: string | null;
  output_tail: string;
}

describe('reboot step in a rollout', () => {
  const fleet = new TestFleet({ heartbeatInterval: '300ms', heartbeatTimeout: '3s' });
  const root = tempDir('reboot-host');
  const bootFile = path.join(root, 'boot_id');
  let hostId = '';
  let agent: Daemon | undefined;
  /** The rollout the running test started. */
  let last: string | undefined;

  function boot(): void {
    agent = new Daemon(AGENT_BIN, ['run', '--state-dir', fleet.agentDir('h')], {
      CONVOY_BOOT_ID_FILE: bootFile,
      ROOT: root,
    });
    fleet.agents.set('h', agent);
  }

  function rebootScript(text: string): void {
    const file = path.join(root, 'reboot.sh');
    writeFileSync(file, text.replace(/\$ROOT/g, root));
    chmodSync(file, 0o755);
  }

  const ran = (): string[] => readFileSync(path.join(root, 'ran.log'), 'utf8').trim().split('\n');

  function start(version: string, bound = REBOOT_BOUND): RolloutView {
    writeFileSync(path.join(root, 'rebooter.yaml'), recipeYaml(bound));
    const file = path.join(root, `fleet-${version}.yaml`);
    writeFileSync(
      file,
      fleetFile({
        name: 'app',
        recipe: path.join(root, 'rebooter.yaml'),
        target: version,
        hosts: [{ id: hostId, vars: { root } }],
      }),
    );
    const applied = fleet.cli('apply', file);
    if (applied.code !== 0) throw new Error(applied.stderr);
    writeFileSync(path.join(root, 'ran.log'), '');
    const started = fleet.cliJson<RolloutView>('rollout', 'start', 'app', '--stage-now');
    last = started.id;
    return started;
  }

  const status = (id: string): RolloutView => fleet.cliJson<RolloutView>('rollout', 'status', id);

  const settled = (id: string): Promise<RolloutView> =>
    waitFor(
      `rollout ${id} to rest`,
      () => {
        const doc = status(id);
        return isResting(doc) ? doc : undefined;
      },
      60_000,
      200,
    );

  const stepRows = (rolloutId: string): Promise<StepRow[]> =>
    queryStore<StepRow>(
      fleet.stateDir,
      `SELECT s.step_id, s.status, s.ok, s.error_code, s.output_tail FROM step_results s
         JOIN phase_runs p ON s.phase_run_id = p.id WHERE p.run_id LIKE ? ORDER BY p.started_at, s.rowid`,
      [`${rolloutId}-%`],
    );

  const rebooting = (id: string): Promise<RolloutView> =>
    waitFor(
      'the host to show as rebooting',
      () => {
        const doc = status(id);
        return doc.hosts[0]?.rebooting === true ? doc : undefined;
      },
      20_000,
      100,
    );

  const agentDown = (): Promise<unknown> =>
    waitFor('the agent to go down', () => (agent?.child.exitCode ?? agent?.child.signalCode) != null, 20_000);

  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    writeFileSync(path.join(root, 'rebooter.yaml'), recipeYaml());
    writeFileSync(path.join(root, 'version'), '1.0.0\n');
    writeFileSync(bootFile, 'boot-at-start\n');
    await fleet.startController();
    hostId = fleet.enrollOk('h', fleet.createToken(), '--hostname', 'reboot-host');
    const config = path.join(fleet.agentDir('h'), 'agent.yaml');
    const fast = {
      ...(JSON.parse(readFileSync(config, 'utf8')) as object),
      reconnectInitialMs: 100,
      reconnectMaxMs: 500,
    };
    writeFileSync(config, JSON.stringify(fast), { mode: 0o600 });
    boot();
    await fleet.waitOnline(1);
  });

  afterAll(async () => {
    await fleet.stop();
  });

  // Each test starts from a host that is up and a deployment without a rollout, whatever the
  // test before it left.
  afterEach(async () => {
    if (agent === undefined || agent.child.exitCode !== null || agent.child.signalCode !== null) boot();
    if (last === undefined) return;
    const finished = (): boolean => isIn(FINISHED_ROLLOUT_STATES, status(last ?? '').state);
    if (!finished()) fleet.cli('rollout', 'abort', last);
    await waitFor(`rollout ${last} to finish`, finished, 30_000, 200);
    last = undefined;
  });

  it('reboots in the middle of the upgrade, waits as rebooting, and resumes after the boot: the host ends upgraded', async () => {
    rebootScript(REBOOTS);
    const before = readFileSync(bootFile, 'utf8').trim();
    const started = start('1.1.0');
    await agentDown();
    const during = await rebooting(started.id);
    // Waiting, neither failed nor unknown, and the reason says for how long.
    expect(during.hosts[0]).toMatchObject({ state: 'upgrading', unknown: false, rebooting: true });
    expect(during.hosts[0]?.reason).toMatch(
      /^rebooting: reboot-now; waiting up to 6.0 s for the host to come back$/,
    );
    expect(during.progress).toMatchObject({ failed: 0, unknown: 0, rebooting: 1 });
    expect(fleet.cli('rollout', 'status', started.id).stdout).toContain('upgrading (rebooting)');

    boot();
    const doc = await settled(started.id);
    if (doc.state !== 'succeeded') throw new Error(`rollout ${doc.state}: ${doc.reason}\n${fleet.dump()}`);
    expect(doc.hosts[0]).toMatchObject({ state: 'verified', installed: '1.1.0', rebooting: false });
    // Each step ran once: install before the reboot, activate after it, the command once.
    expect(ran()).toEqual(['fetch', 'install', 'reboot', 'activate']);
    expect(readFileSync(path.join(root, 'version'), 'utf8').trim()).toBe('1.1.0');
    const after = readFileSync(bootFile, 'utf8').trim();
    expect(after).not.toBe(before);
    // The agent's journal records the reboot, boot ids and all; the store has the step's result.
    const journal = JSON.parse(
      readFileSync(path.join(fleet.agentDir('h'), 'phase', 'phase-journal.json'), 'utf8'),
    ) as { history: Record<string, Record<string, { data?: unknown }>> };
    const upgradeRun = journal.history[`${started.id}-u`] ?? {};
    expect(upgradeRun['reboot-now']?.data).toEqual({ rebooted: true, fromBootId: before, toBootId: after });
    const rows = await stepRows(started.id);
    expect(rows.filter((r) => r.step_id === 'reboot-now').map((r) => r.status)).toEqual(['rebooting', 'ran']);
    expect(rows.find((r) => r.step_id === 'reboot-now' && r.status === 'ran')).toMatchObject({
      ok: 1,
      output_tail: `rebooted: boot ${before} -> ${after}\n`,
    });
    expect(rows.filter((r) => r.step_id === 'activate' && r.status === 'ran')).toHaveLength(1);
    const events = fleet.cliJson<EventDoc[]>('events', '--rollout', started.id, '--limit', '1000');
    expect(events.map((e) => e.kind)).toEqual(
      expect.arrayContaining(['rollout.host.rebooting', 'rollout.host.rebooted']),
    );
    expect(events.map((e) => e.kind)).not.toContain('rollout.host.unknown');
  });

  it('fails with REBOOT_DID_NOT_HAPPEN when the boot id does not change within the bound, and rolls back', async () => {
    rebootScript(DOES_NOT_REBOOT);
    const started = start('1.2.0');
    const doc = await settled(started.id);
    expect(doc.hosts[0]).toMatchObject({ state: 'rolled-back', installed: '1.1.0' });
    const rows = await stepRows(started.id);
    expect(rows.find((r) => r.step_id === 'reboot-now' && r.status === 'ran')).toMatchObject({
      ok: 0,
      error_code: 'REBOOT_DID_NOT_HAPPEN',
    });
    expect(ran()).toEqual(['fetch', 'install', 'reboot', 'rollback']);
    expect(existsSync(path.join(root, 'version.new'))).toBe(false);
  });

  it('fails the host with REBOOT_TIMEOUT when it does not come back within the bound', async () => {
    rebootScript(REBOOTS);
    const started = start('1.3.0');
    await agentDown();
    await rebooting(started.id);
    // The host stays down past the bound: the controller gives up on it.
    const failed = await waitFor(
      'the upgrade to fail with REBOOT_TIMEOUT',
      () => {
        const events = fleet.cliJson<EventDoc[]>('events', '--rollout', started.id, '--limit', '1000');
        return events.find((e) => JSON.stringify(e.data).includes('REBOOT_TIMEOUT'));
      },
      30_000,
      300,
    );
    expect(failed.data).toMatchObject({ hostId });
    expect(status(started.id).hosts[0]?.state).toMatch(/rolling-back|rolled-back/);
    // Back at last: the rollback runs on the rebooted host, and the activate step never ran.
    boot();
    const doc = await settled(started.id);
    expect(doc.hosts[0]).toMatchObject({ state: 'rolled-back', installed: '1.1.0' });
    expect(ran()).toEqual(['fetch', 'install', 'reboot', 'rollback']);
  });

  it('a controller killed while the host reboots still waits for it after its restart, and the phase resumes', async () => {
    rebootScript(REBOOTS);
    // A bound long enough for a controller to die and start again on a loaded machine.
    const started = start('1.3.5', '60s');
    await agentDown();
    await rebooting(started.id);
    await fleet.controller?.kill9();
    // The same address, so that the agent finds it again after its boot.
    fleet.controller = new Daemon(CONVOY_BIN, [
      'controller',
      'start',
      '--state-dir',
      fleet.stateDir,
      '--listen',
      fleet.address,
      '--heartbeat-interval',
      '300ms',
      '--heartbeat-timeout',
      '3s',
    ]);
    await fleet.controller.waitForOutput(/agents on (\S+); key (\S+)/);
    const during = status(started.id);
    expect(during.hosts[0]).toMatchObject({ state: 'upgrading', unknown: false, rebooting: true });
    boot();
    const doc = await settled(started.id);
    if (doc.state !== 'succeeded') throw new Error(`rollout ${doc.state}: ${doc.reason}\n${fleet.dump()}`);
    expect(doc.hosts[0]).toMatchObject({ state: 'verified', installed: '1.3.5' });
    expect(ran()).toEqual(['fetch', 'install', 'reboot', 'activate']);
  });

  it('under convoy-agent supervise, the host comes back by itself and the phase resumes', async () => {
    // The agent as SSH enrollment leaves it where systemd does not run: its supervisor starts it
    // again after the reboot script stopped it, with no help from the test.
    await agent?.stop();
    const supervisor = new Daemon(AGENT_BIN, ['supervise', '--state-dir', fleet.agentDir('h')], {
      CONVOY_BOOT_ID_FILE: bootFile,
    });
    agent = supervisor;
    fleet.agents.set('h', supervisor);
    await fleet.waitOnline(1);
    rebootScript(REBOOTS);
    const before = readFileSync(bootFile, 'utf8').trim();
    const started = start('1.4.0');
    const doc = await settled(started.id);
    if (doc.state !== 'succeeded') throw new Error(`rollout ${doc.state}: ${doc.reason}\n${fleet.dump()}`);
    expect(doc.hosts[0]).toMatchObject({ state: 'verified', installed: '1.4.0' });
    expect(ran()).toEqual(['fetch', 'install', 'reboot', 'activate']);
    expect(readFileSync(bootFile, 'utf8').trim()).not.toBe(before);
    expect(supervisor.stderr).toContain('agent exited; restarting');
  });
});
