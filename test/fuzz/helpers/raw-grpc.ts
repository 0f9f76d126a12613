/**
 * A gRPC client that sends whatever bytes it is told to, over node:http2: random messages,
 * lying length prefixes, messages over the server's receive limit. grpc-js would refuse to send
 * most of these, which is why this speaks the wire protocol itself.
 */
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';

/** Where a raw call goes: `host:port` over TCP or a unix socket path; optional bearer token. */
export interface RawTarget {
  readonly name: string;
  readonly address: string;
  readonly unixPath?: string;
  readonly token?: string;
}

export interface RawReply {
  /** grpc-status from the trailers (or a trailers-only reply); null when none came. */
  readonly status: number | null;
  readonly message: string;
  /** Set when the connection failed or the call saw no status before its time bound. */
  readonly transportError?: string;
}

/** The 5-byte gRPC frame prefix: compressed flag and big-endian length. */
export function frame(message: Uint8Array, declaredLength = message.length, flag = 0): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flag, 0);
  head.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([head, message]);
}

export const STATUS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

/** One HTTP/2 session to a target, reused for many calls as a real client would. */
export class RawGrpcSession {
  private session: http2.ClientHttp2Session | undefined;

  constructor(readonly target: RawTarget) {}

  private connect(): http2.ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const { unixPath, address } = this.target;
    const session = http2.connect(
      `http://${unixPath === undefined ? address : 'localhost'}`,
      unixPath === undefined ? {} : { createConnection: () => net.connect(unixPath) },
    );
    session.on('error', () => undefined); // reported per call through the stream
    this.session = session;
    return session;
  }

  /** Sends `body` (already framed, or not) to `path`; resolves with the status the server gave. */
  call(
    path: string,
    body: Buffer,
    opts: { timeoutMs?: number; grpcTimeout?: string } = {},
  ): Promise<RawReply> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      const headers: http2.OutgoingHttpHeaders = {
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        // A stream method left waiting for more ends with DEADLINE_EXCEEDED.
        'grpc-timeout': opts.grpcTimeout ?? '5S',
      };
      if (this.target.token !== undefined) headers['authorization'] = `Bearer ${this.target.token}`;
      try {
        stream = this.connect().request(headers);
      } catch (err) {
        this.session = undefined;
        resolve({ status: null, message: '', transportError: (err as Error).message });
        return;
      }
      let status: number | null = null;
      let message = '';
      const take = (h: http2.IncomingHttpHeaders): void => {
        const s = h['grpc-status'];
        if (s !== undefined) {
          status = Number(s);
          message = decodeURIComponent(String(h['grpc-message'] ?? ''));
        }
      };
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish('no status in time');
      }, timeoutMs);
      let done = false;
      const finish = (transportError?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(
          status === null
            ? { status, message, transportError: transportError ?? 'closed without status' }
            : { status, message },
        );
      };
      stream.on('response', take);
      stream.on('trailers', take);
      stream.on('data', () => undefined); // replies are read and dropped: only the status matters
      stream.on('close', () => finish());
      stream.on('error', (err: Error) => finish(err.message));
      // The server may answer and reset before it has read everything: not an error for us.
      stream.end(body);
    });
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}
