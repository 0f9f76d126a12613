/** The repository server the package tests rely on: it serves, counts, refuses traversal, throttles. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { HttpRepo } from '../../scripts/fixtures/http-repo';
import { tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

/** A raw request: fetch() would normalise `..` away before the server could refuse it. */
function get(url: string, rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const req = http.get({ hostname, port, path: rawPath }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

describe('HttpRepo', () => {
  let base: string;
  let repo: HttpRepo;

  beforeEach(async () => {
    base = tempDir('http-repo');
    mkdirSync(path.join(base, 'served/pool'), { recursive: true });
    writeFileSync(path.join(base, 'served/pool/a.deb'), 'package bytes');
    writeFileSync(path.join(base, 'secret.txt'), 'outside the root');
    repo = new HttpRepo({ root: path.join(base, 'served') });
    await repo.start();
  });
  afterEach(async () => {
    await repo.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('serves files under its root and counts every request', async () => {
    expect(await get(repo.url, '/pool/a.deb')).toEqual({ status: 200, body: 'package bytes' });
    expect((await get(repo.url, '/pool/missing.deb')).status).toBe(404);
    expect((await get(repo.url, '/pool')).status).toBe(404);
    // A line is written when its response closes, which can come after the client has its body
    // and sent the next request: compare the set, once all three are in.
    await waitFor('three request lines', () => repo.requests.length === 3, 5_000);
    expect([...repo.requests].sort()).toEqual([
      'GET /pool 404',
      'GET /pool/a.deb 200',
      'GET /pool/missing.deb 404',
    ]);
  });

  // The URL parser folds `..` and `%2e%2e` segments back inside the root (404); decoded separators
  // and NUL are refused outright (403). Either way the file outside the root is never read.
  it.each([
    ['/../secret.txt', 404],
    ['/%2e%2e/secret.txt', 404],
    ['/pool/..%2f..%2fsecret.txt', 403],
    ['/pool/..%5c..%5csecret.txt', 403],
    ['/pool%2f..%2f..%2fsecret.txt', 403],
    ['/a%00b', 403],
  ])('refuses %s with %d', async (raw, status) => {
    const res = await get(repo.url, raw);
    expect(res.status).toBe(status);
    expect(res.body).not.toContain('outside the root');
  });

  it('keeps its port across a restart and refuses connections while stopped', async () => {
    const url = repo.url;
    await repo.stop();
    await expect(get(url, '/pool/a.deb')).rejects.toThrow(/ECONNREFUSED/);
    await repo.start();
    expect(repo.url).toBe(url);
    expect((await get(url, '/pool/a.deb')).status).toBe(200);
  });

  it('throttles to its byte rate', async () => {
    writeFileSync(path.join(base, 'served/big.bin'), Buffer.alloc(20_000, 1));
    const slow = new HttpRepo({ root: path.join(base, 'served'), bytesPerSecond: 40_000 });
    await slow.start();
    try {
      const started = Date.now();
      const res = await get(slow.url, '/big.bin');
      expect(res.body.length).toBe(20_000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    } finally {
      await slow.stop();
    }
  });

  // A slice (a twentieth of the rate, 8 MB here) overfills the socket's buffers at once; a client
  // that then goes away must not leave the response waiting for a 'drain' that never comes.
  it('ends a throttled response whose client goes away mid-download', async () => {
    writeFileSync(path.join(base, 'served/huge.bin'), Buffer.alloc(64_000_000, 1));
    const slow = new HttpRepo({ root: path.join(base, 'served'), bytesPerSecond: 160_000_000 });
    await slow.start();
    try {
      const { port } = new URL(slow.url);
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ hostname: '127.0.0.1', port, path: '/huge.bin' }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      });
      await waitFor('the response to end', () => slow.requests.length === 1, 1500);
    } finally {
      await slow.stop();
    }
  });

  it('refuses a rate that is not a positive number', () => {
    for (const bytesPerSecond of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new HttpRepo({ root: base, bytesPerSecond })).toThrow(/bytesPerSecond/);
    }
  });
});
