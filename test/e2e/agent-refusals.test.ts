/**
 * A real `convoy-agent run` process (from dist/) against a fake controller in this process: every
 * forged, tampered, stale or replayed command is refused with its exact code, reported back in a
 * signed refusal, logged, and never advances the agent's journal (seq.log) -- not even across a
 * kill -9.
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nacl from 'tweetnacl';
import { generateKeyPair } from '../../shared/ed25519';
import { ENVELOPE_DOMAINS, sha256Hex, type SignedEnvelope } from '../../shared/envelope';
import type { ErrorCode } from '../../shared/errors';
import { formatPublicKey, keyIdOf } from '../../shared/keys';
import { malleate } from '../../shared/testing/signatures';
import { FakeController, type AgentReply } from '../helpers/fake-controller';
import { AGENT_BIN, Daemon, tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(15_000);

const HOST_ID = 'h-test1';
const agentKey = generateKeyPair();
const stateDir = tempDir('agent-refusals');
const journalFile = path.join(stateDir, 'seq.log');

let controller: FakeController;
let agent: Daemon;
/** Agent processes that were killed; their logs still count. */
const retired: Daemon[] = [];
/** The last command the agent accepted. */
let accepted: { seq: number; envelope: SignedEnvelope } | undefined;

function startAgent(): Daemon {
  return new Daemon(AGENT_BIN, ['run', '--state-dir', stateDir]);
}

function lastAccepted(): { seq: number; envelope: SignedEnvelope } {
  if (accepted === undefined) throw new Error('no command accepted yet');
  return accepted;
}

function journalText(): string {
  return readFileSync(journalFile, 'utf8');
}

/** The last line of seq.log, parsed. */
function journalLast(): { seq: number; digest: string } {
  const lines = journalText()
    .split('\n')
    .filter((l) => l !== '');
  const m = /^(\d+) ([0-9a-f]{64})$/.exec(lines[lines.length - 1] ?? '');
  if (m === null) throw new Error(`seq.log has no valid last line: ${JSON.stringify(journalText())}`);
  return { seq: Number(m[1]), digest: m[2]! };
}

function refusalLogs(daemon: Daemon, code: string): number {
  return daemon.logLines().filter((l) => l['msg'] === 'command refused' && l['code'] === code).length;
}

/** Runs a test body; on failure, appends the agent's stderr to the message (keeping the stack). */
function withAgentLog(body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (err) {
      const stderr = agent === undefined ? '(agent not started)' : agent.stderr.slice(-4000);
      const message = err instanceof Error ? err.message : String(err);
      const wrapped = new Error(`${message}\n--- agent stderr (tail) ---\n${stderr}`);
      const frames =
        err instanceof Error ? (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)) : [];
      if (frames.length > 0) wrapped.stack = [wrapped.message, ...frames].join('\n');
      throw wrapped;
    }
  };
}

async function expectAccepted(envelope: SignedEnvelope, seq: number): Promise<AgentReply> {
  const command = JSON.parse(Buffer.from(envelope.payload).toString('utf8')) as { idempotencyKey: string };
  controller.send(envelope);
  const reply = await controller.nextReply();
  expect(reply.type).toBe('result');
  expect(reply.seq).toBe(seq);
  expect(reply.audience).toBe(controller.keyId);
  expect(reply.idempotencyKey).toBe(command.idempotencyKey);
  expect(reply.body['command']).toBe('ping');
  expect(reply.body['pong']).toBe(true);
  expect(journalLast()).toEqual({ seq, digest: sha256Hex(envelope.payload) });
  accepted = { seq, envelope };
  return reply;
}

async function expectRefused(envelope: SignedEnvelope, code: ErrorCode, claimedSeq: number): Promise<void> {
  const journalBefore = journalText();
  const logsBefore = refusalLogs(agent, code);
  controller.send(envelope);
  const reply = await controller.nextReply();
  expect({ type: reply.type, code: reply.body['code'], seq: reply.seq }).toEqual({
    type: 'refusal',
    code,
    seq: claimedSeq,
  });
  expect(typeof reply.body['message']).toBe('string');
  expect(reply.audience).toBe(controller.keyId);
  await waitFor(
    `a "command refused" log line with code ${code}`,
    () => refusalLogs(agent, code) > logsBefore,
    5000,
  );
  // A refused envelope never touches the journal.
  expect(journalText()).toBe(journalBefore);
}

beforeAll(async () => {
  controller = new FakeController({
    hostId: HOST_ID,
    agentPublicKey: agentKey.publicKey,
    heartbeatIntervalMs: 200,
  });
  await controller.start();
  const keyFile = path.join(stateDir, 'agent.key');
  writeFileSync(keyFile, Buffer.from(agentKey.secretKey).toString('base64') + '\n', { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(
    path.join(stateDir, 'agent.yaml'),
    [
      `controller: ${JSON.stringify(controller.address)}`,
      `controllerKey: ${JSON.stringify(formatPublicKey(controller.keyPair.publicKey))}`,
      `hostId: ${JSON.stringify(HOST_ID)}`,
      'reconnectInitialMs: 50',
      'reconnectMaxMs: 500',
      '',
    ].join('\n'),
  );
  agent = startAgent();
  await withAgentLog(async () => {
    await controller.waitForAgent(10_000);
  })();
});

afterAll(async () => {
  await agent?.stop();
  for (const d of retired) await d.stop();
  await controller?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('a real agent process', () => {
  test(
    'answers a valid ping (seq 1) with a signed result and records seq 1 in seq.log',
    withAgentLog(async () => {
      const envelope = controller.ping(1);
      await expectAccepted(envelope, 1);
      expect(journalText()).toBe(`1 ${sha256Hex(envelope.payload)}\n`);
    }),
  );

  describe('refuses a command it cannot trust', () => {
    const next = (): number => lastAccepted().seq + 1;

    test(
      'signed by another key but claiming the pinned key id, with ENVELOPE_BAD_SIGNATURE',
      withAgentLog(async () => {
        const impostor = generateKeyPair();
        const forged = controller.sign(controller.commandPayload(next()), impostor.secretKey);
        await expectRefused({ ...forged, keyId: controller.keyId }, 'ENVELOPE_BAD_SIGNATURE', next());
      }),
    );

    test(
      'signed by a key whose id it does not know, with ENVELOPE_UNKNOWN_KEY',
      withAgentLog(async () => {
        const stranger = generateKeyPair();
        const envelope = controller.sign(controller.commandPayload(next()), stranger.secretKey);
        expect(envelope.keyId).toBe(keyIdOf(stranger.publicKey));
        await expectRefused(envelope, 'ENVELOPE_UNKNOWN_KEY', next());
      }),
    );

    test(
      'whose payload had one bit flipped after signing, with ENVELOPE_BAD_SIGNATURE',
      withAgentLog(async () => {
        const valid = controller.ping(next());
        const payload = Buffer.from(valid.payload);
        // "ping" -> "qing": one bit of the command type.
        const at = payload.indexOf('"type":"ping"') + '"type":"'.length;
        expect(at).toBeGreaterThan(8);
        payload[at] = payload[at]! ^ 0x01;
        expect(payload.toString('utf8')).toContain('"type":"qing"');
        await expectRefused({ ...valid, payload }, 'ENVELOPE_BAD_SIGNATURE', next());
      }),
    );

    test(
      'carrying the S+L variant of a valid signature, with ENVELOPE_NON_CANONICAL',
      withAgentLog(async () => {
        const valid = controller.ping(next());
        const malleated = malleate(valid.signature);
        expect(Buffer.from(malleated).equals(Buffer.from(valid.signature))).toBe(false);
        // A lenient verifier takes it: the variant is a real malleation, not noise.
        const signed = Buffer.concat([Buffer.from(ENVELOPE_DOMAINS.command, 'utf8'), valid.payload]);
        expect(nacl.sign.detached.verify(signed, malleated, controller.keyPair.publicKey)).toBe(true);
        await expectRefused({ ...valid, signature: malleated }, 'ENVELOPE_NON_CANONICAL', next());
      }),
    );

    test(
      'with a 63-byte signature, with ENVELOPE_BAD_SIZE',
      withAgentLog(async () => {
        const valid = controller.ping(next());
        const short = valid.signature.slice(0, 63);
        await expectRefused({ ...valid, signature: short }, 'ENVELOPE_BAD_SIZE', next());
      }),
    );

    test(
      'that expired two minutes ago (beyond the 60 s skew), with ENVELOPE_EXPIRED',
      withAgentLog(async () => {
        const now = Date.now();
        const envelope = controller.ping(next(), { issuedAtMs: now - 180_000, expiresAtMs: now - 120_000 });
        await expectRefused(envelope, 'ENVELOPE_EXPIRED', next());
      }),
    );

    test(
      'issued ten minutes in the future, with CLOCK_SKEW',
      withAgentLog(async () => {
        const now = Date.now();
        const envelope = controller.ping(next(), { issuedAtMs: now + 600_000, expiresAtMs: now + 660_000 });
        await expectRefused(envelope, 'CLOCK_SKEW', next());
      }),
    );

    test(
      'addressed to another host, with ENVELOPE_WRONG_AUDIENCE',
      withAgentLog(async () => {
        const envelope = controller.ping(next(), { audience: 'h-other' });
        await expectRefused(envelope, 'ENVELOPE_WRONG_AUDIENCE', next());
      }),
    );

    test(
      'without having advanced seq.log past seq 1',
      withAgentLog(async () => {
        expect(journalLast().seq).toBe(1);
        expect(lastAccepted().seq).toBe(1);
      }),
    );
  });

  describe('refuses a replay', () => {
    test(
      'of the exact seq-1 envelope, with ENVELOPE_REPLAY',
      withAgentLog(async () => {
        const { seq, envelope } = lastAccepted();
        expect(seq).toBe(1);
        await expectRefused(envelope, 'ENVELOPE_REPLAY', 1);
      }),
    );

    test(
      'of a different payload under the last accepted seq, with ENVELOPE_SEQ_CONFLICT',
      withAgentLog(async () => {
        const { seq } = lastAccepted();
        await expectRefused(controller.ping(seq), 'ENVELOPE_SEQ_CONFLICT', seq);
      }),
    );

    test(
      'of an older seq, with ENVELOPE_REPLAY',
      withAgentLog(async () => {
        await expectAccepted(controller.ping(2), 2);
        await expectRefused(controller.ping(1), 'ENVELOPE_REPLAY', 1);
        expect(journalLast().seq).toBe(2);
      }),
    );

    test(
      'after a kill -9 and a restart on the same state dir, then accepts the next seq',
      withAgentLog(async () => {
        const before = lastAccepted();
        const sessionsBefore = controller.sessions;
        const oldPid = agent.pid;
        await agent.kill9();
        retired.push(agent);
        agent = startAgent();
        await controller.waitForAgent(10_000, sessionsBefore + 1);
        expect(agent.pid).not.toBe(oldPid);
        expect(journalLast()).toEqual({ seq: before.seq, digest: sha256Hex(before.envelope.payload) });

        await expectRefused(before.envelope, 'ENVELOPE_REPLAY', before.seq);
        await expectAccepted(controller.ping(before.seq + 1), before.seq + 1);
      }),
    );
  });

  test(
    'refuses a validly signed command of an unknown type with COMMAND_REFUSED, journal unchanged',
    withAgentLog(async () => {
      const seq = lastAccepted().seq + 1;
      await expectRefused(controller.ping(seq, { type: 'rm -rf' }), 'COMMAND_REFUSED', seq);
      expect(journalLast().seq).toBe(seq - 1);
    }),
  );

  test(
    'is still alive and online after all of this, and answers a fresh ping',
    withAgentLog(async () => {
      expect(agent.child.exitCode).toBeNull();
      expect(agent.child.signalCode).toBeNull();
      expect(controller.online).toBe(true);
      // One stream per process: no refusal ever cost the agent its connection.
      expect(controller.sessions).toBe(2);
      // Heartbeats flow and are acknowledged: the agent never fell silent or reconnected on its own.
      await waitFor('a heartbeat from the agent', () => controller.heartbeats > 0, 5000);
      // The seq the unknown command claimed was not consumed.
      const seq = lastAccepted().seq + 1;
      await expectAccepted(controller.ping(seq), seq);
      expect(controller.protocolErrors).toEqual([]);
      expect(controller.pendingReplies).toBe(0);
    }),
  );

  test(
    'logged every refusal with its code',
    withAgentLog(async () => {
      const logged = [...retired, agent]
        .flatMap((d) => d.logLines())
        .filter((l) => l['msg'] === 'command refused')
        .map((l) => l['code']);
      expect([...new Set(logged)].sort()).toEqual(
        [
          'CLOCK_SKEW',
          'COMMAND_REFUSED',
          'ENVELOPE_BAD_SIGNATURE',
          'ENVELOPE_BAD_SIZE',
          'ENVELOPE_EXPIRED',
          'ENVELOPE_NON_CANONICAL',
          'ENVELOPE_REPLAY',
          'ENVELOPE_SEQ_CONFLICT',
          'ENVELOPE_UNKNOWN_KEY',
          'ENVELOPE_WRONG_AUDIENCE',
        ].sort(),
      );
      // One line per refusal: 8 untrusted commands, 3 replays, 1 replay after the restart, 1 unknown type.
      expect(logged).toHaveLength(13);
    }),
  );
});
