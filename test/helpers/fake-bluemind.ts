/**
 * A stand-in for a BlueMind server, enough for the bluemind recipes' finalize and verify phases: a
 * real node:http server on 127.0.0.1 (port chosen at run time).
 *
 *   POST /setup  HTTP basic auth admin:<password>: 200 "update started" with the right password,
 *                401 otherwise; every call is counted, with or without the right credentials
 *   GET  /       the health page: 200, or 500 while `healthy` is false
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SetupCall {
  /** Whether the request carried `admin` and the expected password. */
  readonly authorized: boolean;
  readonly user: string | undefined;
}

export class FakeBlueMind {
  /** Every POST /setup, in order. */
  readonly setupCalls: SetupCall[] = [];
  /** GET / requests answered so far. */
  healthRequests = 0;
  /** When false, GET / answers 500. */
  healthy = true;
  private server: http.Server | undefined;
  private port = 0;

  constructor(private readonly password: string) {}

  static async start(password: string): Promise<FakeBlueMind> {
    const fake = new FakeBlueMind(password);
    const server = http.createServer((req, res) => fake.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    fake.port = (server.address() as AddressInfo).port;
    fake.server = server;
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get setupUrl(): string {
    return `${this.url}/setup`;
  }

  get healthUrl(): string {
    return `${this.url}/`;
  }

  /** POST /setup calls that carried the right credentials. */
  get authorizedSetups(): number {
    return this.setupCalls.filter((c) => c.authorized).length;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Drain the body (the step may send one) before answering.
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'POST' && url.pathname === '/setup') {
        const creds = basicCredentials(req.headers.authorization);
        const authorized = creds?.user === 'admin' && creds.password === this.password;
        this.setupCalls.push({ authorized, user: creds?.user });
        if (!authorized) {
          res.writeHead(401, { 'www-authenticate': 'Basic realm="setup"' }).end('unauthorized\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('update started\n');
        return;
      }
      if (req.method === 'GET' && url.pathname === '/') {
        this.healthRequests += 1;
        if (this.healthy) res.writeHead(200, { 'content-type': 'text/plain' }).end('BlueMind ok\n');
        else res.writeHead(500, { 'content-type': 'text/plain' }).end('BlueMind is down\n');
        return;
      }
      res.writeHead(404).end();
    });
  }
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (m?.[1] === undefined) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
