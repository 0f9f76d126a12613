/**
 * A delaying HTTP proxy in front of one host's fake BlueMind, started inside that host's network
 * namespace: it holds each request for as long as its delay file says (`{"POST /setup": 8000}`,
 * read per request, so one proxy serves every case) and then forwards it. It makes the finalize
 * and verify phases last long enough to cut the host off while they run, without touching the
 * shared fake. Every request is logged (arrival, and the status once answered) to a JSON-lines
 * file the test reads: the test never dials into a namespace.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Plain JS for `node -e`: test/ is not compiled to dist/, and this is all the proxy is. */
const PROXY_SOURCE = `
const http = require('node:http');
const fs = require('node:fs');
const [upstream, delayFile, logFile] = process.argv.slice(1);
const log = (entry) => fs.appendFileSync(logFile, JSON.stringify({ at: Date.now(), ...entry }) + '\\n');
http.createServer((req, res) => {
  const body = [];
  req.on('data', (c) => body.push(c));
  req.on('end', () => {
    let delays = {};
    try { delays = JSON.parse(fs.readFileSync(delayFile, 'utf8')); } catch {}
    const key = req.method + ' ' + req.url;
    const ms = delays[key] || 0;
    log({ key, event: 'arrived', ms });
    setTimeout(() => {
      const fwd = http.request(new URL(req.url, upstream), { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode || 502, up.headers);
        up.pipe(res);
        log({ key, event: 'answered', status: up.statusCode });
      });
      fwd.on('error', (e) => { res.writeHead(502); res.end(String(e)); log({ key, event: 'failed' }); });
      fwd.end(Buffer.concat(body));
    }, ms);
  });
}).listen(0, '127.0.0.1', function () { process.stdout.write('listening ' + this.address().port + '\\n'); });
`;

export interface ProxyLogEntry {
  readonly at: number;
  readonly key: string;
  readonly event: 'arrived' | 'answered' | 'failed';
  readonly status?: number;
}

export interface SlowProxy {
  /** `http://127.0.0.1:PORT`, valid inside the namespace it runs in. */
  readonly url: string;
  /** Sets the delay of `METHOD PATH` requests; others pass at once. */
  setDelays(delays: Readonly<Record<string, number>>): void;
  entries(): ProxyLogEntry[];
  stop(): Promise<void>;
}

export type ProxySpawner = (cmd: string, args: string[]) => ChildProcess;

export async function startSlowProxy(
  spawnInNamespace: ProxySpawner,
  upstream: string,
  files: { readonly delayFile: string; readonly logFile: string },
): Promise<SlowProxy> {
  writeFileSync(files.delayFile, '{}');
  writeFileSync(files.logFile, '');
  const child = spawnInNamespace(process.execPath, [
    '-e',
    PROXY_SOURCE,
    upstream,
    files.delayFile,
    files.logFile,
  ]);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`slow proxy: no "listening" in 15 s: ${out}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m?.[1] === undefined) return;
      clearTimeout(timer);
      resolve(Number(m[1]));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`slow proxy exited ${code}: ${out}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    setDelays: (delays) => writeFileSync(files.delayFile, JSON.stringify(delays)),
    entries: () =>
      existsSync(files.logFile)
        ? readFileSync(files.logFile, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as ProxyLogEntry)
        : [],
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    },
  };
}
