/**
 * shared/ is pure (style.md §2): no I/O, no environment, no clock, no timers. Whatever needs one
 * takes it from its caller (a sink, a `now`), or lives in controller/ or agent/. This reads every
 * non-test file under shared/ with the TypeScript parser, so a word in a comment or a string is
 * not a finding, and names each import and each use of the process, the clock or a timer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');

/** Modules that do I/O, or reach the process, the network or the clock. */
const IMPURE_MODULES = new Set(
  [
    'fs',
    'fs/promises',
    'child_process',
    'net',
    'dgram',
    'dns',
    'http',
    'https',
    'http2',
    'tls',
    'os',
    'process',
    'readline',
    'cluster',
    'worker_threads',
    'perf_hooks',
    'timers',
    'timers/promises',
    'module',
    'vm',
  ].flatMap((m) => [m, `node:${m}`]),
);
const IMPURE_PACKAGES = new Set(['@grpc/grpc-js', 'sqlite3', 'ssh2']);

/** `object.property` reads of the clock or the working directory. */
const IMPURE_PROPERTIES = new Set([
  'Date.now',
  'performance.now',
  'path.resolve',
  'process.hrtime',
  'Math.random',
]);
const TIMERS = new Set(['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval']);

/** Every impurity in one source file, as `file:line: what`. */
export function impurities(file: string, text: string): string[] {
  const found: string[] = [];
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const report = (node: ts.Node, what: string): void => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
    found.push(`${file}:${line + 1}: ${what}`);
  };
  for (const { fileName, pos } of ts.preProcessFile(text, true, true).importedFiles) {
    if (IMPURE_MODULES.has(fileName) || IMPURE_PACKAGES.has(fileName)) {
      const { line } = source.getLineAndCharacterOfPosition(pos);
      found.push(`${file}:${line + 1}: imports ${fileName}`);
    }
  }
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
      const name = `${node.expression.text}.${node.name.text}`;
      if (node.expression.text === 'process' || IMPURE_PROPERTIES.has(name)) report(node, `uses ${name}`);
    } else if (
      ts.isCallExpression(node) &&
      ts.isIdentifier(node.expression) &&
      TIMERS.has(node.expression.text)
    ) {
      report(node, `calls ${node.expression.text}`);
    } else if (
      ts.isNewExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'Date' &&
      (node.arguments?.length ?? 0) === 0
    ) {
      report(node, 'reads the clock with new Date()');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function sharedSources(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
        out.push([rel, readFileSync(path.join(ROOT, rel), 'utf8')]);
    }
  };
  walk('shared');
  return out;
}

describe('shared/ is pure', () => {
  it('has no file that imports I/O or reads the process, the environment, the clock or a timer', () => {
    const sources = sharedSources();
    expect(sources.length).toBeGreaterThan(20);
    expect(sources.flatMap(([file, text]) => impurities(file, text))).toEqual([]);
  });

  it.each([
    ["import { readFileSync } from 'node:fs';", 'imports node:fs'],
    ["import { execFile } from 'child_process';", 'imports child_process'],
    ["import type { Socket } from 'node:net';", 'imports node:net'],
    ["const os = require('os');", 'imports os'],
    ["export const load = () => import('node:fs/promises');", 'imports node:fs/promises'],
    ["import * as grpc from '@grpc/grpc-js';", 'imports @grpc/grpc-js'],
    ["export const home = process.env['HOME'];", 'uses process.env'],
    ['export const cwd = () => process.cwd();', 'uses process.cwd'],
    ['export const now = Date.now;', 'uses Date.now'],
    ['export const t = () => performance.now();', 'uses performance.now'],
    ['export const pick = () => Math.random();', 'uses Math.random'],
    ['export const later = (f: () => void) => setTimeout(f, 10);', 'calls setTimeout'],
    ['export const today = () => new Date();', 'reads the clock with new Date()'],
    ['export const abs = (p: string) => path.resolve(p);', 'uses path.resolve'],
  ])('finds %s', (text, what) => {
    expect(impurities('shared/x.ts', `// a pure module\n${text}\n`)).toEqual([`shared/x.ts:2: ${what}`]);
  });

  it('is not fooled by words in comments and strings, nor by a date built from a given time', () => {
    const text = [
      '/** Default Date.now; process.env is read by the caller. */',
      "export const note = 'setTimeout(f) and node:fs';",
      'export const at = (ms: number) => new Date(ms).toISOString();',
      "import { createHash } from 'node:crypto';",
      "import path from 'node:path';",
      "export const join = (a: string) => path.join('/srv', a);",
    ].join('\n');
    expect(impurities('shared/x.ts', text)).toEqual([]);
  });
});
