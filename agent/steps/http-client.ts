/**
 * The agent's HTTP(S) client for steps: node:http/https, no redirects followed (a redirect is an
 * answer like any other, so a check cannot be walked off to another host), a deadline on the whole
 * exchange, a stall bound on the socket, and a cap on the body kept in memory.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { ConvoyError, type ErrorCode } from '../../shared/errors';

export interface HttpRequest {
  readonly url: string;
  readonly method: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Bound on the whole exchange, body included. */
  readonly timeoutMs: number;
  /** Bound on a silent socket. Default: timeoutMs. */
  readonly stallMs?: number;
  readonly signal?: AbortSignal;
}

export interface HttpReply {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

/** Default cap on a body kept in memory (health answers, checksums, signatures). */
export const SMALL_BODY_BYTES = 64 * 1024;

/** Parses and checks a URL: only http and https. */
export function parseHttpUrl(raw: string, code: ErrorCode = 'STEP_FAILED'): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConvoyError(code, `not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConvoyError(code, `only http and https URLs are allowed, not ${url.protocol}`);
  }
  return url;
}

/** A response head whose body the caller consumes, and how to explain a failure while reading it. */
export interface OpenResponse {
  readonly res: IncomingMessage;
  /** Maps an error from the body stream to a catalogued error (the deadline as STEP_TIMEOUT). */
  readonly explain: (err: unknown) => ConvoyError;
}

/**
 * Sends a request and resolves with the response head. Network failures reject with `failCode`;
 * the deadline and a stall with STEP_TIMEOUT.
 */
export function openResponse(req: HttpRequest, failCode: ErrorCode = 'STEP_FAILED'): Promise<OpenResponse> {
  const url = parseHttpUrl(req.url, failCode);
  const deadline = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal === undefined ? deadline : AbortSignal.any([req.signal, deadline]);
  const stallMs = req.stallMs ?? req.timeoutMs;
  let stalled = false;
  const explain = (err: unknown): ConvoyError =>
    stalled
      ? new ConvoyError('STEP_TIMEOUT', `${url.host} sent nothing for ${stallMs} ms`, {}, { cause: err })
      : describeFailure(err, url, deadline, req.timeoutMs, failCode);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const outgoing = client.request(url, { method: req.method, headers: req.headers, signal }, (res) => {
      res.on('error', () => undefined); // consumers see the failure through their own reads
      resolve({ res, explain });
    });
    // The socket's idle timer also runs while the body streams, so it bounds a stalled body too.
    outgoing.setTimeout(stallMs, () => {
      stalled = true;
      outgoing.destroy();
    });
    outgoing.on('error', (err) => reject(explain(err)));
    outgoing.end(req.body);
  });
}

/** Sends a request and reads the body up to `maxBodyBytes`; the rest is dropped unread, not an error. */
export async function sendRequest(
  req: HttpRequest,
  maxBodyBytes = SMALL_BODY_BYTES,
  failCode: ErrorCode = 'STEP_FAILED',
): Promise<HttpReply> {
  const { res, explain } = await openResponse(req, failCode);
  const chunks: Buffer[] = [];
  let kept = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      const part = chunk.subarray(0, maxBodyBytes - kept);
      chunks.push(part);
      kept += part.length;
      // An endless body is cut here rather than read forever.
      if (kept >= maxBodyBytes) break;
    }
  } catch (err) {
    throw explain(err);
  } finally {
    res.destroy();
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

function describeFailure(
  err: unknown,
  url: URL,
  deadline: AbortSignal,
  timeoutMs: number,
  failCode: ErrorCode,
): ConvoyError {
  if (err instanceof ConvoyError) return err;
  if (deadline.aborted) {
    return new ConvoyError(
      'STEP_TIMEOUT',
      `${url.host} did not answer within ${timeoutMs} ms`,
      {},
      { cause: err },
    );
  }
  const reason = err instanceof Error ? err.message : String(err);
  // Only the host: a URL's path or query may carry a token.
  return new ConvoyError(failCode, `request to ${url.host} failed: ${reason}`, {}, { cause: err });
}

/** The origin and path of a URL, without credentials or query, for messages. */
export function showUrl(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.origin}${url.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
