/**
 * controller/code-cache.ts, as bin/convoy.js uses it: a real node process loads a CommonJS file
 * through V8's code cache, twice, then with a corrupt cache and from a read-only directory.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const LOADER = path.resolve(__dirname, '../../dist/controller/code-cache.js');
let dir = '';
let file = '';

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'convoy-cache-'));
  file = path.join(dir, 'mod.js');
  // Requires a core module through the loader's require, and exports what it saw of its wrapper.
  writeFileSync(
    file,
    "const os = require('node:os');\nexports.answer = (n) => n * 2 + (os.EOL.length - 1);\nexports.where = __dirname;\n",
  );
});

afterEach(() => {
  chmodSync(dir, 0o700);
  rmSync(dir, { recursive: true, force: true });
});

function load(): { answer: number; where: string } {
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      `const m = require(${JSON.stringify(LOADER)}).requireWithCodeCache(${JSON.stringify(file)});` +
        'process.stdout.write(JSON.stringify({ answer: m.answer(20), where: m.where }));',
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(out) as { answer: number; where: string };
}

describe('requireWithCodeCache', () => {
  it('runs the module, writes the cache on the first run and reuses it afterwards', () => {
    expect(load()).toEqual({ answer: 40, where: dir });
    const cache = `${file}.v8cache`;
    expect(statSync(cache).size).toBeGreaterThan(0);
    const written = statSync(cache).mtimeMs;
    expect(load()).toEqual({ answer: 40, where: dir });
    expect(statSync(cache).mtimeMs).toBe(written);
  });

  it('compiles as usual from a corrupt cache and replaces it', () => {
    const cache = `${file}.v8cache`;
    writeFileSync(cache, Buffer.alloc(64, 7));
    expect(load()).toEqual({ answer: 40, where: dir });
    expect(readFileSync(cache).equals(Buffer.alloc(64, 7))).toBe(false);
  });

  it('works from a directory it cannot write, leaving no file behind', () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions: a read-only bind is not worth it here, so check
      // instead that a failed write (the cache path is a directory) is silent.
      const cache = `${file}.v8cache`;
      execFileSync('mkdir', [cache]);
      expect(load()).toEqual({ answer: 40, where: dir });
      expect(statSync(cache).isDirectory()).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(['mod.js', 'mod.js.v8cache']);
      return;
    }
    chmodSync(dir, 0o500);
    expect(load()).toEqual({ answer: 40, where: dir });
    expect(existsSync(`${file}.v8cache`)).toBe(false);
  });
});
