/** The hand codec against protobufjs and the real agent.proto, in both directions. */
import path from 'node:path';
import protobuf from 'protobufjs';
import { decodeControllerMessage, encodeAgentMessage } from './stream-codec';
import type { OutgoingAgentMessage, OutgoingControllerMessage } from './wire';

const root = protobuf.loadSync(path.join(__dirname, 'convoy/v1/agent.proto'));
const AgentMessage = root.lookupType('convoy.v1.AgentMessage');
const ControllerMessage = root.lookupType('convoy.v1.ControllerMessage');
const toObject = { longs: Number, bytes: Buffer, defaults: true, oneofs: true } as const;

const facts = {
  hostname: "db'; DROP TABLE hosts;-- ünïcode",
  agentVersion: '0.1.0',
  osPlatform: 'linux',
  osRelease: '6.1.0',
  arch: 'x64',
  osPrettyName: 'Debian GNU/Linux 12 (bookworm)',
  cpus: 2,
  memoryBytes: 25_769_803_776, // above 2^32: exercises 64-bit varints
};

describe('stream codec', () => {
  it.each<[string, OutgoingAgentMessage]>([
    ['hello', { hello: { hostId: 'h-0123456789abcdef', facts } }],
    ['challenge response', { challengeResponse: { signature: Buffer.alloc(64, 0xab) } }],
    [
      'envelope',
      {
        envelope: {
          payload: Buffer.from('{"v":1}'),
          signature: Buffer.alloc(64, 7),
          keyId: '1164ed36a3faec4f',
        },
      },
    ],
    ['heartbeat', { heartbeat: { agentTimeMs: 1_795_000_000_123 } }],
    ['heartbeat at time zero', { heartbeat: { agentTimeMs: 0 } }],
  ])('encodes an agent %s that protobufjs decodes to the same fields', (_name, message) => {
    const decoded = AgentMessage.toObject(
      AgentMessage.decode(encodeAgentMessage(message)),
      toObject,
    ) as Record<string, unknown>;
    const [key] = Object.keys(message);
    expect(decoded['body']).toBe(key);
    expect(decoded[key ?? '']).toEqual(
      JSON.parse(JSON.stringify((message as Record<string, unknown>)[key ?? '']), reviveBuffers),
    );
  });

  it.each<[string, OutgoingControllerMessage]>([
    ['challenge', { challenge: { nonce: Buffer.alloc(32, 3), controllerTimeMs: 1_795_000_000_456 } }],
    ['welcome', { welcome: { heartbeatIntervalMs: 10_000, lastSeq: 2 ** 40 + 5 } }],
    [
      'envelope',
      { envelope: { payload: Buffer.from('payload'), signature: Buffer.alloc(64, 9), keyId: 'k' } },
    ],
    ['heartbeat ack', { heartbeatAck: { controllerTimeMs: 42 } }],
    ['welcome with defaults', { welcome: { heartbeatIntervalMs: 0, lastSeq: 0 } }],
  ])('decodes a controller %s that protobufjs encoded', (_name, message) => {
    const bytes = Buffer.from(ControllerMessage.encode(ControllerMessage.fromObject(message)).finish());
    const decoded = decodeControllerMessage(bytes) as unknown as Record<string, unknown>;
    const [key] = Object.keys(message);
    expect(decoded['body']).toBe(key);
    expect(decoded[key ?? '']).toEqual((message as Record<string, unknown>)[key ?? '']);
  });

  it('skips fields it does not know, as protobuf requires', () => {
    const writer = protobuf.Writer.create();
    writer.uint32((9 << 3) | 0).uint64(77); // unknown varint field 9
    writer
      .uint32((4 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 0)
      .int64(5)
      .uint32((3 << 3) | 5)
      .fixed32(1)
      .ldelim();
    expect(decodeControllerMessage(Buffer.from(writer.finish()))).toEqual({
      body: 'heartbeatAck',
      heartbeatAck: { controllerTimeMs: 5 },
    });
  });

  it.each([
    ['a truncated varint', Buffer.from([0x08, 0xff])],
    ['a length past the end', Buffer.from([0x0a, 0x05, 0x01])],
    ['field number zero', Buffer.from([0x00, 0x01])],
    ['an unsupported wire type', Buffer.from([0x0b])],
    ['no body at all', Buffer.alloc(0)],
  ])('rejects %s', (_name, bytes) => {
    expect(() => decodeControllerMessage(bytes)).toThrow();
  });
});

/** JSON round trip turns Buffers into {type, data}; turn them back for comparison. */
function reviveBuffers(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && (value as { type?: string }).type === 'Buffer') {
    return Buffer.from((value as { data: number[] }).data);
  }
  return value;
}
