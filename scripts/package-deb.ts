/**
 * `npm run package:deb`: the agent bundle as a Debian package, built with dpkg-deb alone.
 *
 *   node dist/scripts/package-deb.js [--bundle FILE] [--out DIR] [--version X] [--json]
 *
 * The package carries the bundle, a `convoy-agent` command, the systemd unit of SSH enrollment
 * (packaging/systemd/convoy-agent.service) and an enrollment example under /etc; its maintainer
 * scripts (packaging/deb/) create the state and log directories and enable the unit, which waits
 * for enrollment. docs/packaging.md says what goes where and why.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { HOST_PATHS, UNIT_NAME } from '../agent/install/layout';
import { ConvoyError } from '../shared/errors';

const run = promisify(execFile);

// This file runs from scripts/ (ts-jest) and compiled from dist/scripts/: the root is the first
// parent holding package.json.
const ROOT =
  [path.resolve(__dirname, '..'), path.resolve(__dirname, '../..')].find((dir) =>
    existsSync(path.join(dir, 'package.json')),
  ) ?? path.resolve(__dirname, '../..');
export const DEFAULT_DEB_BUNDLE = path.join(ROOT, 'dist/bundle/convoy-agent.js');
export const DEFAULT_DEB_DIR = path.join(ROOT, 'dist/packages');
export const DEB_PACKAGE = 'convoy-agent';

/** Every file of the package: where it comes from (the bundle, or under the root), where it goes. */
const PAYLOAD: readonly { from: string; to: string; mode: number; conffile?: true }[] = [
  { from: '<bundle>', to: HOST_PATHS.bundle, mode: 0o755 },
  { from: 'packaging/deb/convoy-agent', to: '/usr/bin/convoy-agent', mode: 0o755 },
  // /lib, not /etc: /etc/systemd/system is the administrator's (and SSH enrollment's) to override.
  { from: `packaging/systemd/${UNIT_NAME}`, to: `/lib/systemd/system/${UNIT_NAME}`, mode: 0o644 },
  {
    from: 'packaging/deb/enroll.example',
    to: '/etc/convoy-agent/enroll.example',
    mode: 0o644,
    conffile: true,
  },
];
const MAINTAINER_SCRIPTS = ['postinst', 'prerm', 'postrm'] as const;

/**
 * Debian 12 ships nodejs 18 and the bundle refuses Node < 20 at start, so the dependency says so:
 * on Debian 12 it is met by NodeSource's `nodejs` (or Debian 13's own). The unit and the wrapper
 * run /usr/bin/node, which is where either package puts it.
 */
const DEPENDS = 'nodejs (>= 20)';
const MAINTAINER = 'Convoy maintainers <convoy@localhost>';

export interface DebOptions {
  /** The agent bundle (`npm run build:agent`). Default dist/bundle/convoy-agent.js. */
  readonly bundle?: string;
  /** Directory for the .deb. Default dist/packages. */
  readonly outDir?: string;
  /** The package's version, semver. Default: what `node BUNDLE --version` prints. */
  readonly version?: string;
  /** Timestamp of every file and of the archive, for reproducible builds. Default: the bundle's mtime. */
  readonly sourceDateEpoch?: number;
}

export interface DebResult {
  readonly deb: string;
  readonly package: string;
  /** The Debian version: the semver one with `~` before a pre-release, so that it sorts first. */
  readonly version: string;
  readonly bytes: number;
}

export async function packageAgentDeb(options: DebOptions = {}): Promise<DebResult> {
  const bundle = path.resolve(options.bundle ?? DEFAULT_DEB_BUNDLE);
  // Check everything before creating anything, so that a bad input leaves the output dir alone.
  if (!existsSync(bundle) || !statSync(bundle).isFile()) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `bundle ${bundle}: no such file (build it first: npm run build:agent)`,
      { file: bundle },
    );
  }
  const version = debianVersion(options.version ?? (await bundleVersion(bundle)));
  const epoch = options.sourceDateEpoch ?? Math.floor(statSync(bundle).mtimeMs / 1000);
  const outDir = path.resolve(options.outDir ?? DEFAULT_DEB_DIR);
  const deb = path.join(outDir, `${DEB_PACKAGE}_${version}_all.deb`);

  const stage = mkdtempSync(path.join(os.tmpdir(), 'convoy-deb-'));
  try {
    stagePackage(stage, bundle, version);
    touchTree(stage, epoch);
    mkdirSync(outDir, { recursive: true });
    const tmp = `${deb}.tmp-${process.pid}`;
    try {
      await run('dpkg-deb', ['--root-owner-group', '--build', stage, tmp], {
        env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
      });
      renameSync(tmp, deb);
    } finally {
      rmSync(tmp, { force: true });
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return { deb, package: DEB_PACKAGE, version, bytes: statSync(deb).size };
}

/** `1.2.0-rc.1` -> `1.2.0~rc.1`: a `-` would start a Debian revision, and `~` sorts before release. */
export function debianVersion(semver: string): string {
  if (!/^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$/.test(semver)) {
    throw new ConvoyError('INVALID_ARGUMENT', `version ${JSON.stringify(semver)}: must be a semver version`);
  }
  const dash = semver.indexOf('-');
  return dash < 0 ? semver : `${semver.slice(0, dash)}~${semver.slice(dash + 1)}`;
}

async function bundleVersion(bundle: string): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [bundle, '--version'], { timeout: 30_000 });
    return stdout.trim();
  } catch (err) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `bundle ${bundle}: \`node ${bundle} --version\` failed (${err instanceof Error ? err.message.trim() : String(err)}); pass --version`,
      { file: bundle },
    );
  }
}

function stagePackage(stage: string, bundle: string, version: string): void {
  let kib = 0;
  for (const file of PAYLOAD) {
    const dest = path.join(stage, file.to);
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(file.from === '<bundle>' ? bundle : path.join(ROOT, file.from), dest);
    chmodSync(dest, file.mode);
    kib += Math.ceil(statSync(dest).size / 1024);
  }
  const control = path.join(stage, 'DEBIAN');
  mkdirSync(control);
  writeFileSync(path.join(control, 'control'), controlText(version, kib));
  const conffiles = PAYLOAD.filter((f) => f.conffile === true).map((f) => f.to);
  writeFileSync(path.join(control, 'conffiles'), conffiles.map((f) => `${f}\n`).join(''));
  for (const name of MAINTAINER_SCRIPTS) {
    copyFileSync(path.join(ROOT, 'packaging/deb', name), path.join(control, name));
    chmodSync(path.join(control, name), 0o755);
  }
  // dpkg-deb refuses a control directory with group or other write bits; a umask may add them.
  for (const dir of walkDirs(stage)) chmodSync(dir, 0o755);
}

function controlText(version: string, installedKib: number): string {
  return [
    `Package: ${DEB_PACKAGE}`,
    `Version: ${version}`,
    'Architecture: all',
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKib}`,
    `Depends: ${DEPENDS}`,
    'Section: admin',
    'Priority: optional',
    'Description: Convoy agent: upgrades the self-hosted applications of this host',
    ' The Convoy agent runs on every server of a fleet and carries out the upgrade',
    ' steps its controller signs: staged downloads, package upgrades, migrations,',
    ' health checks and rollbacks, resumable after a crash.',
    ' .',
    ' The systemd unit is enabled at install and starts once the host is enrolled',
    ' (see /etc/convoy-agent/enroll.example).',
    '',
  ].join('\n');
}

function walkDirs(dir: string): string[] {
  const subdirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [dir, ...subdirs.flatMap((e) => walkDirs(path.join(dir, e.name)))];
}

/** Same mtime everywhere; dpkg-deb clamps to SOURCE_DATE_EPOCH as well, this covers older ones. */
function touchTree(dir: string, epoch: number): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) touchTree(p, epoch);
    utimesSync(p, epoch, epoch);
  }
  utimesSync(dir, epoch, epoch);
}

function parseFlags(): ReturnType<typeof parseFlagsOf> {
  try {
    return parseFlagsOf(process.argv.slice(2));
  } catch (err) {
    // parseArgs throws a TypeError for an unknown or malformed flag: a usage error, exit 2.
    throw new ConvoyError('INVALID_ARGUMENT', err instanceof Error ? err.message : String(err));
  }
}

function parseFlagsOf(args: string[]) {
  return parseArgs({
    args,
    options: {
      bundle: { type: 'string' },
      out: { type: 'string' },
      version: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
}

async function main(): Promise<void> {
  const { values } = parseFlags();
  if (values.help === true) {
    process.stdout.write(
      'usage: npm run package:deb -- [--bundle FILE] [--out DIR] [--version X] [--json]\n' +
        `  --bundle   the agent bundle (default ${path.relative(process.cwd(), DEFAULT_DEB_BUNDLE)})\n` +
        `  --out      directory for ${DEB_PACKAGE}_VERSION_all.deb (default ${path.relative(process.cwd(), DEFAULT_DEB_DIR)})\n` +
        "  --version  the package version (default: the bundle's own, `node BUNDLE --version`)\n" +
        '  SOURCE_DATE_EPOCH in the environment fixes every timestamp (default: the bundle mtime)\n',
    );
    return;
  }
  const envEpoch = process.env['SOURCE_DATE_EPOCH'];
  if (envEpoch !== undefined && !/^\d+$/.test(envEpoch))
    throw new ConvoyError('INVALID_ARGUMENT', `SOURCE_DATE_EPOCH=${envEpoch}: must be seconds since 1970`);
  const res = await packageAgentDeb({
    ...(values.bundle === undefined ? {} : { bundle: values.bundle }),
    ...(values.out === undefined ? {} : { outDir: values.out }),
    ...(values.version === undefined ? {} : { version: values.version }),
    ...(envEpoch === undefined ? {} : { sourceDateEpoch: Number(envEpoch) }),
  });
  if (values.json === true) process.stdout.write(JSON.stringify(res) + '\n');
  else
    process.stdout.write(`${res.package} ${res.version}: ${res.deb} (${(res.bytes / 1024).toFixed(0)} KB)\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    const code = err instanceof ConvoyError ? err.code : 'INTERNAL';
    process.stderr.write(`package-deb: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = code === 'INVALID_ARGUMENT' ? 2 : 1;
  });
}
