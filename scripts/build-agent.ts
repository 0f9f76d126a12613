/**
 * `npm run build:agent`: the agent as one JavaScript file that needs nothing but Node.js 20 on
 * the host: no node_modules, no proto/ directory. This is what SSH enrollment uploads, what the
 * .deb installs and what an agent self-update stages.
 *
 *   node dist/scripts/build-agent.js [--out FILE] [--version X] [--sign-key FILE]
 *
 * It bundles the compiled CLI (bin/convoy-agent.js over dist/) with esbuild, stamps the version
 * and the parsed contracts in, and starts with a Node version check written in syntax any Node
 * parses, so that an old Node says what it needs instead of failing on syntax. With --sign-key it
 * also writes `<out>.sha256` and `<out>.sig` (shared/release.ts), ready to serve as a release.
 */
import { readFileSync, writeFileSync, mkdirSync, renameSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import * as protobufjs from 'protobufjs';
import { PROTO_FILES, protoRoot } from '../proto/load';
import { ConvoyError } from '../shared/errors';
import { parseReleaseKey, signRelease } from '../shared/release';
import { CONVOY_VERSION } from '../shared/version';

// Compiled, this file sits in dist/scripts/, two levels below the repository root.
const ROOT = path.resolve(__dirname, '../..');
export const DEFAULT_BUNDLE = path.join(ROOT, 'dist/bundle/convoy-agent.js');
const MIN_NODE_MAJOR = 20;

// Follows the entry's own hashbang, which esbuild keeps on the first line.
const NODE_CHECK = [
  // var and string concatenation only: this line must run on any Node to be able to refuse it.
  `var convoyNodeMajor = Number(process.versions.node.split('.')[0]);`,
  `if (convoyNodeMajor < ${MIN_NODE_MAJOR}) {`,
  `  process.stderr.write('convoy-agent: NODE_TOO_OLD: Node.js ${MIN_NODE_MAJOR} or later is required; this is ' + process.versions.node + ' (' + process.execPath + ')\\n');`,
  '  process.exit(1);',
  '}',
].join('\n');

export interface BundleOptions {
  readonly out: string;
  readonly version: string;
  readonly signKeyFile?: string;
}

export interface BundleResult {
  readonly out: string;
  readonly version: string;
  readonly bytes: number;
  readonly signed: boolean;
}

export async function buildAgentBundle(options: BundleOptions): Promise<BundleResult> {
  if (!/^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$/.test(options.version)) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--version ${JSON.stringify(options.version)}: must be a semver version`,
    );
  }
  // Read the key before building anything: a bad key file must leave no half-made release.
  const key =
    options.signKeyFile === undefined
      ? undefined
      : parseReleaseKey(readFileSync(options.signKeyFile, 'utf8'), options.signKeyFile);
  const protoJson = protobufjs.loadSync(PROTO_FILES.map((f) => path.join(protoRoot(), f))).toJSON();
  const result = await build({
    entryPoints: [path.join(ROOT, 'bin/convoy-agent.js')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    // Lowered as far as esbuild can, so that an older Node parses the file and reaches the check.
    target: 'node12',
    write: false,
    outfile: options.out,
    banner: { js: NODE_CHECK },
    define: {
      __CONVOY_VERSION__: JSON.stringify(options.version),
      __CONVOY_PROTO_JSON__: JSON.stringify(JSON.stringify(protoJson)),
    },
    legalComments: 'eof',
    logLevel: 'warning',
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no output');
  const text = file.text;
  mkdirSync(path.dirname(options.out), { recursive: true });
  const tmp = `${options.out}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, options.out);
  if (key !== undefined) {
    const side = signRelease(Buffer.from(text), path.basename(options.out), key.secretKey);
    writeFileSync(`${options.out}.sha256`, side.sha256);
    writeFileSync(`${options.out}.sig`, side.signature);
  }
  return {
    out: options.out,
    version: options.version,
    bytes: Buffer.byteLength(text),
    signed: key !== undefined,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      version: { type: 'string' },
      'sign-key': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(
      'usage: npm run build:agent -- [--out FILE] [--version X] [--sign-key FILE] [--json]\n' +
        `  --out       where to write the bundle (default ${path.relative(process.cwd(), DEFAULT_BUNDLE)})\n` +
        `  --version   the version stamped in (default ${CONVOY_VERSION})\n` +
        '  --sign-key  a release key (convoy release keygen): also write FILE.sha256 and FILE.sig\n',
    );
    return;
  }
  const res = await buildAgentBundle({
    out: path.resolve(values.out ?? DEFAULT_BUNDLE),
    version: values.version ?? CONVOY_VERSION,
    ...(values['sign-key'] === undefined ? {} : { signKeyFile: values['sign-key'] }),
  });
  if (values.json === true) process.stdout.write(JSON.stringify(res) + '\n');
  else
    process.stdout.write(
      `agent bundle ${res.version}: ${res.out} (${(res.bytes / 1024).toFixed(0)} KB)${res.signed ? ', signed' : ''}\n`,
    );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    const code = err instanceof ConvoyError ? err.code : 'INTERNAL';
    process.stderr.write(`build-agent: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = code === 'INVALID_ARGUMENT' ? 2 : 1;
  });
}
