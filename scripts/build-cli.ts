/**
 * `npm run build` (last step): the operator CLI as one file, `dist/bundle/convoy.js`, which
 * bin/convoy.js loads through V8's code cache (controller/code-cache.ts). One file instead of ~220
 * modules, with the contracts stamped in as JSON instead of parsed from .proto at every start,
 * is most of what a short command like `convoy ping` costs. The native and optional modules
 * (sqlite3, ssh2 and its cpu-features) stay in node_modules, which is beside it in a checkout.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import * as protobufjs from 'protobufjs';
import { PROTO_FILES, protoRoot } from '../proto/load';

// Compiled, this file sits in dist/scripts/, two levels below the repository root.
const ROOT = path.resolve(__dirname, '../..');
export const CLI_BUNDLE = path.join(ROOT, 'dist/bundle/convoy.js');

export async function buildCliBundle(out = CLI_BUNDLE): Promise<number> {
  const protoJson = protobufjs.loadSync(PROTO_FILES.map((f) => path.join(protoRoot(), f))).toJSON();
  const result = await build({
    entryPoints: [path.join(ROOT, 'dist/controller/cli/main.js')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    outfile: out,
    external: ['sqlite3', 'ssh2', 'cpu-features'],
    define: { __CONVOY_PROTO_JSON__: JSON.stringify(JSON.stringify(protoJson)) },
    legalComments: 'eof',
    logLevel: 'warning',
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no output');
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, file.contents);
  renameSync(tmp, out);
  return file.contents.byteLength;
}

if (require.main === module) {
  buildCliBundle().catch((err: unknown) => {
    process.stderr.write(`build-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
