/**
 * Every RPC of both services, on every face the controller serves (agents on TCP, operators on
 * the unix socket and on TCP with and without the bearer token), gets random bytes, lying or
 * garbled length prefixes and messages over the 1 MiB receive limit (grpc-js CVE-2024-37168).
 * Each call gets a gRPC status (RESOURCE_EXHAUSTED when over the limit), the controller stays up,
 * its resident memory stays flat, and a real agent and operator are served normally afterwards.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConvoyProtos } from '../../proto/load';
import { TestFleet } from '../helpers/fleet';
import { CONVOY_BIN, run } from '../helpers/processes';
import { frame, RawGrpcSession, STATUS_NAMES, type RawReply, type RawTarget } from './helpers/raw-grpc';
import { scaled, seededRandom } from './helpers/runs';

const RECEIVE_LIMIT = 1024 * 1024;
// Plain numbers: the reply's status is a number off the wire, not the enum.
const OK: number = grpc.status.OK;
const RESOURCE_EXHAUSTED: number = grpc.status.RESOURCE_EXHAUSTED;
const UNAUTHENTICATED: number = grpc.status.UNAUTHENTICATED;

interface Method {
  readonly service: 'AgentService' | 'OperatorService';
  readonly path: string;
}

/** Every method from the loaded contracts, so that a new RPC is fuzzed without editing this file. */
function allMethods(): Method[] {
  const protos = loadConvoyProtos();
  const out: Method[] = [];
  for (const service of ['AgentService', 'OperatorService'] as const) {
    for (const def of Object.values(protos[service].service)) out.push({ service, path: def.path });
  }
  return out;
}

const methods = allMethods();
const fleet = new TestFleet({ extraArgs: ['--operator-listen', '127.0.0.1:0'] });
const sessions: RawGrpcSession[] = [];
const random = seededRandom(40);
let targets: { target: RawTarget; service: Method['service'] }[] = [];

function randomBytes(max: number): Buffer {
  const n = Math.floor(random() * max);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(random() * 256);
  return b;
}

function controllerPid(): number {
  return fleet.controller?.pid ?? -1;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

/** The hostile bodies: random bytes framed honestly, unframed, with lying prefixes, and too big. */
function hostileBodies(): { kind: string; body: Buffer; overLimit: boolean }[] {
  const junk = randomBytes(512);
  return [
    { kind: 'random message', body: frame(junk), overLimit: false },
    { kind: 'random bytes without framing', body: randomBytes(64), overLimit: false },
    { kind: 'prefix longer than the body', body: frame(junk, junk.length + 1000), overLimit: false },
    { kind: 'compressed flag without an encoding', body: frame(junk, junk.length, 1), overLimit: false },
    { kind: 'garbled flag byte', body: frame(junk, junk.length, 0xfe), overLimit: false },
    { kind: 'truncated prefix', body: Buffer.from([0, 0, 0]), overLimit: false },
    { kind: 'prefix claiming 4 GiB', body: frame(junk, 0xffffffff), overLimit: true },
    {
      kind: 'message 1 byte over the limit',
      body: frame(Buffer.alloc(RECEIVE_LIMIT + 1, 0x0a)),
      overLimit: true,
    },
  ];
}

function describeReply(r: RawReply): string {
  return r.status === null
    ? `no status (${r.transportError ?? ''})`
    : `${STATUS_NAMES[r.status]}: ${r.message}`;
}

beforeAll(async () => {
  await fleet.startController();
  const m = await fleet.controller?.waitForOutput(/operator API on (\S+)/);
  const operatorAddress = m?.[1] ?? '';
  const token = readFileSync(path.join(fleet.stateDir, 'operator.token'), 'utf8').trim();
  targets = [
    { target: { name: 'agent service (TCP)', address: fleet.address }, service: 'AgentService' },
    {
      target: {
        name: 'operator (unix socket)',
        address: 'unix',
        unixPath: path.join(fleet.stateDir, 'convoy.sock'),
      },
      service: 'OperatorService',
    },
    {
      target: { name: 'operator (TCP, token)', address: operatorAddress, token },
      service: 'OperatorService',
    },
    { target: { name: 'operator (TCP, no token)', address: operatorAddress }, service: 'OperatorService' },
  ];
  const hostId = fleet.enrollOk('honest', fleet.createToken());
  fleet.startAgent('honest');
  await fleet.waitHost(hostId, true, 30_000);
}, 90_000);

afterAll(async () => {
  for (const s of sessions) s.close();
  await fleet.stop();
});

function session(target: RawTarget): RawGrpcSession {
  const s = new RawGrpcSession(target);
  sessions.push(s);
  return s;
}

describe('fuzz › every RPC under random and over-limit messages', () => {
  it('finds the methods in the loaded contracts', () => {
    expect(methods.filter((m) => m.service === 'AgentService').length).toBeGreaterThan(0);
    expect(methods.filter((m) => m.service === 'OperatorService').length).toBeGreaterThan(0);
  });

  it('answers every hostile body on every method of every face with a status, and stays up', async () => {
    const failures: string[] = [];
    let calls = 0;
    const seen = new Map<string, number>();
    for (const { target, service } of targets) {
      const s = session(target);
      for (const method of methods.filter((m) => m.service === service)) {
        const replies = await Promise.all(
          hostileBodies().map(async (h) => ({ h, r: await s.call(method.path, h.body) })),
        );
        for (const { h, r } of replies) {
          calls += 1;
          const name = r.status === null ? 'none' : (STATUS_NAMES[r.status] ?? String(r.status));
          seen.set(name, (seen.get(name) ?? 0) + 1);
          const where = `${target.name} ${method.path} ${h.kind}: ${describeReply(r)}`;
          if (r.status === null) failures.push(where);
          else if (h.overLimit && target.token === undefined && target.name.includes('no token')) {
            // Without the token the call may be refused before its message is read.
            if (![RESOURCE_EXHAUSTED, UNAUTHENTICATED].includes(r.status)) failures.push(where);
          } else if (h.overLimit && r.status !== RESOURCE_EXHAUSTED) failures.push(where);
          else if (r.status === OK && (h.kind !== 'random message' || target.name.includes('no token')))
            failures.push(where);
        }
      }
      expect(alive(controllerPid())).toBe(true);
    }
    const tally = [...seen].map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`${calls} hostile calls on ${methods.length} methods x ${targets.length} faces: ${tally}`);
    expect(failures).toEqual([]);
  }, 180_000);

  it('keeps its resident memory flat over thousands of hostile requests', async () => {
    const pid = controllerPid();
    const streams = targets.map(({ target, service }) => ({
      s: session(target),
      paths: methods.filter((m) => m.service === service).map((m) => m.path),
    }));
    let sent = 0;
    let noStatus = 0;
    const burst = async (count: number): Promise<void> => {
      const workers = Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; i < count; i += 16) {
          const { s, paths } = streams[i % streams.length] ?? { s: undefined, paths: [] };
          const p = paths[Math.floor(random() * paths.length)];
          if (s === undefined || p === undefined) continue;
          // One in twenty is over the limit: enough to matter, not enough to make this a bandwidth test.
          const body =
            i % 20 === 0
              ? frame(Buffer.alloc(RECEIVE_LIMIT + 1024, 0x0a))
              : i % 3 === 0
                ? randomBytes(64)
                : frame(randomBytes(256));
          const r = await s.call(p, body, { grpcTimeout: '500m' });
          sent += 1;
          if (r.status === null) noStatus += 1;
        }
      });
      await Promise.all(workers);
    };
    await burst(scaled(500));
    const baseline = rssMb(pid);
    await burst(scaled(5000));
    const after = rssMb(pid);
    console.log(
      `controller RSS: ${baseline.toFixed(1)} MB after ${scaled(500)} warm-up requests, ` +
        `${after.toFixed(1)} MB after ${sent} (growth ${(after - baseline).toFixed(1)} MB); ${noStatus} without status`,
    );
    expect(alive(pid)).toBe(true);
    expect(noStatus).toBe(0);
    expect(after - baseline).toBeLessThan(25);
  }, 300_000);

  it('still serves an honest operator and a real agent afterwards', () => {
    const status = fleet.status();
    expect(status.filter((h) => h.online)).toHaveLength(1);
    const ping = run(CONVOY_BIN, ['ping', '--json', '--state-dir', fleet.stateDir]);
    expect(ping.code).toBe(0);
    expect((JSON.parse(ping.stdout) as { ok: number }).ok).toBe(1);
    const viaTcp = run(CONVOY_BIN, [
      'status',
      '--json',
      '--controller',
      targets[2]?.target.address ?? '',
      '--operator-token-file',
      path.join(fleet.stateDir, 'operator.token'),
    ]);
    expect(viaTcp.code).toBe(0);
    expect(alive(controllerPid())).toBe(true);
  });
});
