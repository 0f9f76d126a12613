/**
 * Clock skew (security.md "Faults"): a real controller and real agent processes whose wall clocks
 * libfaketime shifts. A command that is, by the agent's clock, from the future beyond the allowance
 * is refused with CLOCK_SKEW, one from the past beyond expiry with ENVELOPE_EXPIRED; the operator
 * reads the code, nothing runs on the host and its journal does not move. Skew inside the allowance
 * changes nothing, and the other hosts keep working.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet';
import { AGENT_BIN, Daemon } from '../helpers/processes';
import { queryStore } from '../helpers/store-query';
import { waitFor } from '../helpers/wait';
import { faketimeEnv, logTime, offsetMs, steppableFaketimeEnv } from './clock-storm/faketime';

jest.setTimeout(120_000);

interface SkewedHost {
  /** Also the host's label `clock=<name>` and its agent directory's suffix. */
  readonly name: string;
  /** libfaketime offset of the agent's wall clock; none for the reference host. */
  readonly offset: string | undefined;
  /** What the agent answers a command with; undefined: it runs it. */
  readonly refusal: 'CLOCK_SKEW' | 'ENVELOPE_EXPIRED' | undefined;
}

const HOSTS: readonly SkewedHost[] = [
  { name: 'true', offset: undefined, refusal: undefined },
  { name: 'ahead30s', offset: '+30s', refusal: undefined },
  // Agent ahead: the command's expiry (issue + 60 s TTL + 60 s allowance) is long past by its clock.
  { name: 'ahead10m', offset: '+10m', refusal: 'ENVELOPE_EXPIRED' },
  // Agent behind: the command was issued 10 min in its future, beyond the 60 s allowance.
  { name: 'behind10m', offset: '-10m', refusal: 'CLOCK_SKEW' },
];

interface PingJson {
  results: { hostId: string; outcome: string; errorCode: string; message: string; seq: number }[];
  ok: number;
  total: number;
}

describe('chaos › clock skew', () => {
  const fleet = new TestFleet({ heartbeatInterval: '500ms', heartbeatTimeout: '3s' });
  const ids = new Map<string, string>();
  let recipeFile = '';

  const idOf = (name: string): string => ids.get(name) ?? '';
  const seqLog = (name: string): string => {
    const file = path.join(fleet.agentDir(name), 'seq.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  };
  const marker = (name: string): string => path.join(fleet.root, `ran-${name}`);
  const agentLog = (name: string): Record<string, unknown>[] => fleet.agents.get(name)?.logLines() ?? [];

  beforeAll(async () => {
    await fleet.startController();
    for (const h of HOSTS) {
      ids.set(h.name, fleet.enrollOk(h.name, fleet.createToken('--labels', `clock=${h.name}`)));
      const env = h.offset === undefined ? {} : faketimeEnv(h.offset);
      fleet.agents.set(h.name, new Daemon(AGENT_BIN, ['run', '--state-dir', fleet.agentDir(h.name)], env));
    }
    await fleet.waitOnline(HOSTS.length, 30_000);
    recipeFile = path.join(fleet.root, 'mark.yaml');
    writeFileSync(
      recipeFile,
      `name: mark
description: writes a file on the host, so a refused phase shows that nothing ran
versions:
  installed: { argv: [/bin/echo, '1.0.0'], pattern: '^([0-9.]+)' }
  available: { argv: [/bin/echo, '1.0.0'], pattern: '^([0-9.]+)' }
vars: { out: /nonexistent }
phases:
  upgrade:
    - { id: mark, type: exec, source: test, argv: ['/bin/sh', '-c', 'date +%s > {{var.out}}'] }
`,
    );
  });

  afterAll(async () => {
    await fleet.stop();
  });

  // Without this, a libfaketime that silently does nothing would let every case below pass or
  // fail for the wrong reason.
  it('shifts the wall clock of each skewed agent process, by its own log and the controller', async () => {
    for (const h of HOSTS) {
      // Output reaches this process asynchronously: wait for the lines rather than read at once.
      await fleet.agents.get(h.name)?.waitForOutput(/"msg":"connected to controller"/);
      await fleet.controller?.waitForOutput(
        new RegExp(`"msg":"agent online"[^\\n]*"hostId":"${idOf(h.name)}"`),
      );
      const controllerLog = fleet.controller?.logLines() ?? [];
      const agentOnline = logTime(agentLog(h.name), 'connected to controller');
      const controllerOnline = logTime(controllerLog, 'agent online', (l) => l['hostId'] === idOf(h.name));
      expect([h.name, agentOnline !== undefined, controllerOnline !== undefined]).toEqual([
        h.name,
        true,
        true,
      ]);
      // Both lines are written within a few ms of each other (welcome sent, welcome read).
      const shift = (agentOnline ?? 0) - (controllerOnline ?? 0);
      const expected = h.offset === undefined ? 0 : offsetMs(h.offset);
      expect([h.name, Math.abs(shift - expected) < 10_000]).toEqual([h.name, true]);
    }
    // The agent itself notices a skew beyond the allowance at the handshake.
    for (const h of HOSTS.filter((x) => x.refusal !== undefined)) {
      const warn = agentLog(h.name).find((l) => l['msg'] === 'clock differs from the controller');
      expect(Math.abs(Number(warn?.['skewMs']) + offsetMs(h.offset ?? '+0s'))).toBeLessThan(10_000);
    }
  });

  it('serves an agent 30 s ahead (inside the allowance) normally: ping and phase run', async () => {
    const ping = fleet.cliJson<PingJson>('ping', '--select', 'clock=ahead30s', '--timeout', '10s');
    expect(ping).toMatchObject({ ok: 1, total: 1 });
    const phase = fleet.cli(...phaseRun('ahead30s'));
    expect([phase.code, phase.stderr]).toEqual([0, '']);
    expect(existsSync(marker('ahead30s'))).toBe(true);
    // The agent answered with its own, shifted clock: the libfaketime offset is visible end to end.
    const rows = await queryStore<{ result_json: string; finished_at: number }>(
      fleet.stateDir,
      "SELECT result_json, finished_at FROM commands WHERE host_id = ? AND type = 'ping'",
      [idOf('ahead30s')],
    );
    const result = JSON.parse(rows[0]?.result_json ?? '{}') as { body?: { agentTimeMs?: number } };
    const ahead = (result.body?.agentTimeMs ?? 0) - (rows[0]?.finished_at ?? 0);
    expect(ahead).toBeGreaterThan(20_000);
    expect(ahead).toBeLessThan(40_000);
  });

  describe.each(HOSTS.filter((h) => h.refusal !== undefined))('an agent $offset', (h) => {
    it(`refuses convoy ping with ${h.refusal}, shown to the operator and stored; its journal does not move`, async () => {
      const before = seqLog(h.name);
      const text = fleet.cli('ping', '--select', `clock=${h.name}`, '--timeout', '10s');
      expect(text.code).toBe(1);
      expect(text.stdout).toContain(`refused  ${h.refusal}:`);
      const json = JSON.parse(
        fleet.cli('ping', '--select', `clock=${h.name}`, '--timeout', '10s', '--json').stdout,
      ) as PingJson;
      expect(json.ok).toBe(0);
      expect(json.results).toEqual([
        expect.objectContaining({ hostId: idOf(h.name), outcome: 'refused', errorCode: h.refusal }),
      ]);
      expect(seqLog(h.name)).toBe(before);
      const rows = await queryStore<{ outcome: string; result_json: string }>(
        fleet.stateDir,
        "SELECT outcome, result_json FROM commands WHERE host_id = ? AND type = 'ping' ORDER BY seq",
        [idOf(h.name)],
      );
      expect(rows.map((r) => [r.outcome, (JSON.parse(r.result_json) as { code: string }).code])).toEqual([
        ['refused', h.refusal],
        ['refused', h.refusal],
      ]);
      const refused = await waitFor('both refusals in the agent log', () => {
        const lines = agentLog(h.name).filter((l) => l['msg'] === 'command refused');
        return lines.length >= 2 ? lines : undefined;
      });
      expect(refused.map((l) => l['code'])).toEqual([h.refusal, h.refusal]);
    });

    it(`refuses convoy phase run with ${h.refusal}: the exec step never ran`, async () => {
      const before = seqLog(h.name);
      const r = fleet.cli(...phaseRun(h.name), '--json');
      expect(r.code).toBe(1);
      const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
      expect(out.error.code).toBe('COMMAND_REFUSED');
      expect(out.error.message).toContain(`${h.refusal}:`);
      expect(r.stderr).toContain(h.refusal);
      expect(existsSync(marker(h.name))).toBe(false);
      expect(seqLog(h.name)).toBe(before);
      const runs = await queryStore<{ state: string }>(
        fleet.stateDir,
        'SELECT state FROM phase_runs WHERE host_id = ?',
        [idOf(h.name)],
      );
      expect(runs).toEqual([{ state: 'lost' }]);
      const rows = await queryStore<{ outcome: string; result_json: string }>(
        fleet.stateDir,
        "SELECT outcome, result_json FROM commands WHERE host_id = ? AND type = 'phase'",
        [idOf(h.name)],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]?.outcome).toBe('refused');
      expect(rows[0]?.result_json).toContain(h.refusal);
    });
  });

  it('keeps the other hosts working and every host connected', async () => {
    const ping = JSON.parse(fleet.cli('ping', '--timeout', '10s', '--json').stdout) as PingJson;
    const byHost = new Map(ping.results.map((r) => [r.hostId, r]));
    for (const h of HOSTS) {
      expect([h.name, byHost.get(idOf(h.name))?.outcome, byHost.get(idOf(h.name))?.errorCode ?? '']).toEqual([
        h.name,
        h.refusal === undefined ? 'ok' : 'refused',
        h.refusal ?? '',
      ]);
    }
    const phase = fleet.cli(...phaseRun('true'));
    expect([phase.code, phase.stderr]).toEqual([0, '']);
    expect(existsSync(marker('true'))).toBe(true);
    // Refusing commands is not a reason to drop the connection: the host stays visible as online.
    const status = await waitFor('every host still online', () => {
      const hosts = fleet.status();
      return hosts.every((x) => x.online) ? hosts : undefined;
    });
    expect(status).toHaveLength(HOSTS.length);
  });

  it("shows each agent's clock difference in convoy status, text and JSON", () => {
    const json = fleet.cliJson<{ hosts: { id: string; clockSkewMs: number | null }[] }>('status');
    const skew = new Map(json.hosts.map((x) => [x.id, x.clockSkewMs]));
    const text = fleet.cli('status');
    expect(text.code).toBe(0);
    for (const h of HOSTS) {
      const expected = h.offset === undefined ? 0 : offsetMs(h.offset);
      // Measured from heartbeats: the offset plus a few ms of transit.
      expect([h.name, Math.abs((skew.get(idOf(h.name)) ?? Number.NaN) - expected) < 2000]).toEqual([
        h.name,
        true,
      ]);
      const row = text.stdout.split('\n').find((line) => line.startsWith(idOf(h.name))) ?? '';
      const shown = {
        true: /\bonline\s/,
        ahead30s: /online, clock (29|30|31)\.\d s ahead/,
        ahead10m: /online, clock (9m59s|10m00s|10m01s) ahead/,
        behind10m: /online, clock (9m59s|10m00s|10m01s) behind/,
      }[h.name];
      expect([h.name, row]).toEqual([h.name, expect.stringMatching(shown ?? /^$/)]);
    }
  });

  it('follows a clock stepped after the handshake: the refusal still reaches the operator, the host stays connected', async () => {
    const clockFile = path.join(fleet.root, 'drift.faketime');
    writeFileSync(clockFile, '+0s\n');
    const id = fleet.enrollOk('drift', fleet.createToken('--labels', 'clock=drift'));
    const agent = new Daemon(
      AGENT_BIN,
      ['run', '--state-dir', fleet.agentDir('drift')],
      steppableFaketimeEnv(clockFile),
    );
    fleet.agents.set('drift', agent);
    await fleet.waitHost(id, true, 30_000);
    expect(fleet.cliJson<PingJson>('ping', '--select', 'clock=drift', '--timeout', '10s')).toMatchObject({
      ok: 1,
    });

    // The wall clock jumps 10 minutes ahead while connected: no new handshake measures it.
    writeFileSync(clockFile, '+10m\n');
    await waitFor('the agent to see the skew in a heartbeat ack', () =>
      agentLog('drift').some((l) => l['msg'] === 'clock differs from the controller'),
    );
    const refused = fleet.cli('ping', '--select', 'clock=drift', '--timeout', '10s', '--json');
    expect(refused.code).toBe(1);
    const ping = JSON.parse(refused.stdout) as PingJson;
    // Before the agent followed the controller's clock on every ack, its refusal was stamped 10
    // minutes ahead, dropped by the controller, and the operator saw only a timeout.
    expect(ping.results).toEqual([
      expect.objectContaining({ hostId: id, outcome: 'refused', errorCode: 'ENVELOPE_EXPIRED' }),
    ]);
    // A stepped wall clock is neither side's silence: the session that saw the step is still the one.
    expect(agentLog('drift').filter((l) => l['msg'] === 'connected to controller')).toHaveLength(1);
    expect(agentLog('drift').some((l) => l['msg'] === 'controller silent; reconnecting')).toBe(false);

    writeFileSync(clockFile, '+0s\n');
    await waitFor('the agent to see the clocks agree again', () =>
      agentLog('drift').some((l) => l['msg'] === 'clock agrees with the controller again'),
    );
    expect(fleet.cliJson<PingJson>('ping', '--select', 'clock=drift', '--timeout', '10s')).toMatchObject({
      ok: 1,
    });
  });

  function phaseRun(name: string): string[] {
    return [
      'phase',
      'run',
      '--host',
      idOf(name),
      '--recipe',
      recipeFile,
      '--phase',
      'upgrade',
      '--var',
      `out=${marker(name)}`,
      '--timeout',
      '15s',
    ];
  }
});
