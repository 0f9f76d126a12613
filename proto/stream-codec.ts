/**
 * A hand-written protobuf codec for the messages of the Connect stream, as the agent sends and
 * receives them. The agent daemon uses it instead of proto-loader so that it never loads
 * protobufjs: that saves about 5 MB of resident memory in a process whose budget is 60 MB.
 * `proto/stream-codec.test.ts` checks every message against protobufjs and the real .proto, both
 * ways, so the two cannot drift apart silently. Field numbers are those of agent.proto.
 */
import type { OutgoingAgentMessage, WireControllerMessage, WireHostFacts, WireSignedEnvelope } from './wire';

const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

class Writer {
  private readonly parts: Buffer[] = [];

  varint(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) return this; // proto3 omits defaults
    this.tag(field, VARINT);
    this.raw(encodeVarint(BigInt.asUintN(64, BigInt(value))));
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    if (value.length === 0) return this;
    this.tag(field, BYTES);
    this.raw(encodeVarint(BigInt(value.length)));
    this.raw(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** A nested message is written even when empty: in a oneof, presence is the information. */
  message(field: number, inner: Writer): this {
    const body = inner.finish();
    this.tag(field, BYTES);
    this.raw(encodeVarint(BigInt(body.length)));
    this.raw(body);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }

  private tag(field: number, wireType: number): void {
    this.raw(encodeVarint(BigInt((field << 3) | wireType)));
  }

  private raw(bytes: Buffer): void {
    this.parts.push(bytes);
  }
}

function encodeVarint(value: bigint): Buffer {
  const out: number[] = [];
  let v = value;
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** Reads the fields of one message: calls `onField` with each field number and its raw value. */
function readFields(buf: Buffer, onField: (field: number, value: bigint | Buffer) => void): void {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const byte = buf[pos++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('varint too long');
  };
  const take = (n: number): Buffer => {
    if (n < 0 || pos + n > buf.length) throw new Error('truncated field');
    const slice = buf.subarray(pos, pos + n);
    pos += n;
    return slice;
  };
  while (pos < buf.length) {
    const tag = varint();
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (field === 0) throw new Error('field number 0');
    if (wireType === VARINT) onField(field, varint());
    else if (wireType === BYTES) onField(field, take(Number(varint())));
    else if (wireType === FIXED64) take(8);
    else if (wireType === FIXED32) take(4);
    else throw new Error(`unsupported wire type ${wireType}`);
  }
}

const asNumber = (v: bigint | Buffer): number => (typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : 0);
const asBuffer = (v: bigint | Buffer): Buffer => (Buffer.isBuffer(v) ? Buffer.from(v) : Buffer.alloc(0));
const asString = (v: bigint | Buffer): string => (Buffer.isBuffer(v) ? v.toString('utf8') : '');

function factsWriter(f: WireHostFacts): Writer {
  return new Writer()
    .string(1, f.hostname)
    .string(2, f.agentVersion)
    .string(3, f.osPlatform)
    .string(4, f.osRelease)
    .string(5, f.arch)
    .string(6, f.osPrettyName)
    .varint(7, f.cpus)
    .varint(8, f.memoryBytes);
}

function envelopeWriter(e: { payload: Uint8Array; signature: Uint8Array; keyId: string }): Writer {
  return new Writer().bytes(1, e.payload).bytes(2, e.signature).string(3, e.keyId);
}

/** Serializes what the agent writes on the Connect stream (convoy.v1.AgentMessage). */
export function encodeAgentMessage(m: OutgoingAgentMessage): Buffer {
  const w = new Writer();
  if ('hello' in m)
    w.message(1, new Writer().string(1, m.hello.hostId).message(2, factsWriter(m.hello.facts)));
  else if ('challengeResponse' in m) w.message(2, new Writer().bytes(1, m.challengeResponse.signature));
  else if ('envelope' in m) w.message(3, envelopeWriter(m.envelope));
  else w.message(4, new Writer().varint(1, m.heartbeat.agentTimeMs));
  return w.finish();
}

function decodeEnvelope(buf: Buffer): WireSignedEnvelope {
  const e: WireSignedEnvelope = { payload: Buffer.alloc(0), signature: Buffer.alloc(0), keyId: '' };
  readFields(buf, (f, v) => {
    if (f === 1) e.payload = asBuffer(v);
    else if (f === 2) e.signature = asBuffer(v);
    else if (f === 3) e.keyId = asString(v);
  });
  return e;
}

/** Parses what the controller sends on the Connect stream (convoy.v1.ControllerMessage). */
export function decodeControllerMessage(buf: Buffer): WireControllerMessage {
  let message: WireControllerMessage | undefined;
  readFields(buf, (field, value) => {
    const inner = asBuffer(value);
    if (field === 1) {
      const challenge: { nonce: Buffer; controllerTimeMs: number } = {
        nonce: Buffer.alloc(0),
        controllerTimeMs: 0,
      };
      readFields(inner, (f, v) => {
        if (f === 1) challenge.nonce = asBuffer(v);
        else if (f === 2) challenge.controllerTimeMs = asNumber(v);
      });
      message = { body: 'challenge', challenge };
    } else if (field === 2) {
      const welcome = { heartbeatIntervalMs: 0, lastSeq: 0 };
      readFields(inner, (f, v) => {
        if (f === 1) welcome.heartbeatIntervalMs = asNumber(v);
        else if (f === 2) welcome.lastSeq = asNumber(v);
      });
      message = { body: 'welcome', welcome };
    } else if (field === 3) {
      message = { body: 'envelope', envelope: decodeEnvelope(inner) };
    } else if (field === 4) {
      const heartbeatAck = { controllerTimeMs: 0 };
      readFields(inner, (f, v) => {
        if (f === 1) heartbeatAck.controllerTimeMs = asNumber(v);
      });
      message = { body: 'heartbeatAck', heartbeatAck };
    }
  });
  if (message === undefined) throw new Error('ControllerMessage carries no known body');
  return message;
}
