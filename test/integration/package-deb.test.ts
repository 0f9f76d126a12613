/**
 * The agent's .deb, built by scripts/package-deb.ts and installed with the real dpkg into isolated
 * roots (fixtures.md §1): what lands where with which mode, what the maintainer scripts do on
 * install, upgrade, remove and purge, and that `Depends: nodejs (>= 20)` is real. A stub `nodejs`
 * package built here satisfies (or, at 18, fails) the dependency. The machine's own dpkg database
 * and /var/lib/convoy-agent must not change.
 *
 * The bundles are built into the test's directory by the compiled builder (dist/, which `npm test`
 * builds first) rather than taken from dist/bundle, so that the test picks their versions: a
 * pre-release shows the semver -> Debian mapping end to end, and its release an upgrade.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { ConvoyError } from '../../shared/errors';
import { DEB_PACKAGE, packageAgentDeb, type DebResult } from '../../scripts/package-deb';
import { hostState } from '../helpers/host-state';
import { ROOT, tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const BUILDER = path.join(ROOT, 'dist/scripts/build-agent.js');
const PACKAGER = path.join(ROOT, 'dist/scripts/package-deb.js');
const EPOCH = 1_700_000_000;
const WANTS_LINK = 'etc/systemd/system/multi-user.target.wants/convoy-agent.service';

interface Result {
  readonly code: number | null;
  readonly out: string;
}

function sh(cmd: string, args: readonly string[]): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Like sh, but this process keeps reaping its own children meanwhile (see the supervisor test). */
function shAsync(cmd: string, args: readonly string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

function mustSh(cmd: string, args: readonly string[]): string {
  const r = sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.out}`);
  return r.out;
}

/** An empty dpkg database in a directory (what `dpkg --root` needs to find there). */
function makeRoot(dir: string): string {
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log'])
    mkdirSync(path.join(dir, d), { recursive: true });
  writeFileSync(path.join(dir, 'var/lib/dpkg/status'), '');
  return dir;
}

/** dpkg acting on `root` only; maintainer scripts run here with DPKG_ROOT=root. */
function dpkgArgs(root: string, args: readonly string[]): string[] {
  return [
    `--root=${root}`,
    `--admindir=${root}/var/lib/dpkg`,
    '--force-script-chrootless',
    '--force-not-root',
    `--log=${root}/var/log/dpkg.log`,
    ...args,
  ];
}

const dpkg = (root: string, args: readonly string[]): Result => sh('dpkg', dpkgArgs(root, args));

function status(root: string, pkg = DEB_PACKAGE): string {
  const r = sh('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-W', '-f=${Status} ${Version}', pkg]);
  return r.code === 0 ? r.out.trim() : `not known (${r.out.trim()})`;
}

/** A `nodejs` package with no files: enough for dpkg to judge the dependency. */
function stubNodejs(dir: string, version: string): string {
  const tree = path.join(dir, `nodejs-${version}`);
  mkdirSync(path.join(tree, 'DEBIAN'), { recursive: true });
  writeFileSync(
    path.join(tree, 'DEBIAN/control'),
    `Package: nodejs\nVersion: ${version}\nArchitecture: all\nMaintainer: Convoy tests <tests@convoy.invalid>\nDescription: stub nodejs ${version}\n`,
  );
  const deb = path.join(dir, `nodejs_${version}_all.deb`);
  mustSh('dpkg-deb', ['--root-owner-group', '--build', tree, deb]);
  return deb;
}

function buildBundle(dir: string, version: string): string {
  if (!existsSync(BUILDER)) throw new Error(`${BUILDER} is missing: run npm run build first`);
  const out = path.join(dir, version, 'convoy-agent.js');
  mustSh(process.execPath, [BUILDER, '--out', out, '--version', version]);
  return out;
}

// existsSync follows links, and the enablement link's absolute target exists only inside the root.
const linkExists = (file: string): boolean => lstatSync(file, { throwIfNoEntry: false }) !== undefined;
const mode = (file: string): string => (statSync(file).mode & 0o7777).toString(8);
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The machine's own packaging state; no test may change it. */
const MACHINE_PATHS = [
  '/var/lib/dpkg/status',
  '/var/lib/convoy-agent',
  '/var/log/convoy-agent',
  `/${WANTS_LINK}`,
];

describe('convoy-agent .deb', () => {
  const hostBefore = hostState(MACHINE_PATHS);
  let base: string;
  let rc: DebResult;
  let release: DebResult;
  let node18: string;
  let node20: string;

  beforeAll(async () => {
    base = tempDir('deb');
    rc = await packageAgentDeb({
      bundle: buildBundle(base, '1.2.3-rc.1'),
      outDir: path.join(base, 'out'),
      sourceDateEpoch: EPOCH,
    });
    release = await packageAgentDeb({
      bundle: buildBundle(base, '1.2.3'),
      outDir: path.join(base, 'out'),
      sourceDateEpoch: EPOCH,
    });
    node18 = stubNodejs(base, '18.19.0+dfsg-6~deb12u2');
    node20 = stubNodejs(base, '20.0.0');
  });
  afterAll(() => {
    rmSync(base, { recursive: true, force: true });
    expect(hostState(MACHINE_PATHS)).toBe(hostBefore);
  });

  it('is named and versioned from the bundle, with a pre-release sorting before its release', () => {
    expect(rc).toMatchObject({ package: 'convoy-agent', version: '1.2.3~rc.1' });
    expect(path.basename(rc.deb)).toBe('convoy-agent_1.2.3~rc.1_all.deb');
    expect(sh('dpkg', ['--compare-versions', rc.version, 'lt', release.version]).code).toBe(0);
  });

  it('declares its dependency, conffile and maintainer scripts', () => {
    const info = mustSh('dpkg-deb', ['--info', rc.deb]);
    expect(info).toMatch(/^ Depends: nodejs \(>= 20\)$/m);
    expect(info).toMatch(/^ Architecture: all$/m);
    expect(info).toMatch(/^ Installed-Size: \d+$/m);
    for (const script of ['postinst', 'prerm', 'postrm']) expect(info).toMatch(new RegExp(`\\s${script}\\s`));
    const conffiles = mustSh('sh', ['-c', `dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles`, 'x', rc.deb]);
    expect(conffiles).toBe('/etc/convoy-agent/enroll.example\n');
  });

  it('is reproducible: the same bundle and timestamp give the same bytes', async () => {
    const again = await packageAgentDeb({
      bundle: path.join(base, '1.2.3-rc.1', 'convoy-agent.js'),
      outDir: path.join(base, 'again'),
      sourceDateEpoch: EPOCH,
    });
    expect(sha256(again.deb)).toBe(sha256(rc.deb));
  });

  it("refuses to configure beside Debian 12's nodejs 18", () => {
    const root = makeRoot(path.join(base, 'root18'));
    expect(dpkg(root, ['-i', node18])).toMatchObject({ code: 0 });
    const r = dpkg(root, ['-i', rc.deb]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('depends on nodejs (>= 20)');
    expect(status(root)).not.toMatch(/^install ok installed/);
    expect(existsSync(path.join(root, 'var/lib/convoy-agent'))).toBe(false);
  });

  describe('in a root with nodejs 20', () => {
    let root: string;
    const at = (p: string) => path.join(root, p);

    beforeAll(() => {
      root = makeRoot(path.join(base, 'root'));
      const r = dpkg(root, ['-i', node20]);
      if (r.code !== 0) throw new Error(`installing the nodejs stub failed:\n${r.out}`);
    });

    it('installs the bundle, the command, the unit and the example, and enables the unit', () => {
      const r = dpkg(root, ['-i', rc.deb]);
      expect(r).toMatchObject({ code: 0 });
      expect(status(root)).toBe('install ok installed 1.2.3~rc.1');
      const listed = mustSh('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-L', DEB_PACKAGE]).split('\n');
      for (const file of [
        '/usr/lib/convoy-agent/convoy-agent.js',
        '/usr/bin/convoy-agent',
        '/lib/systemd/system/convoy-agent.service',
        '/etc/convoy-agent/enroll.example',
      ])
        expect(listed).toContain(file);
      expect(mode(at('usr/lib/convoy-agent/convoy-agent.js'))).toBe('755');
      expect(mode(at('usr/bin/convoy-agent'))).toBe('755');
      expect(mode(at('lib/systemd/system/convoy-agent.service'))).toBe('644');
      expect(readFileSync(at('lib/systemd/system/convoy-agent.service'), 'utf8')).toBe(
        readFileSync(path.join(ROOT, 'packaging/systemd/convoy-agent.service'), 'utf8'),
      );
      const conffiles = mustSh('dpkg-query', [
        `--admindir=${root}/var/lib/dpkg`,
        '-W',
        '-f=${Conffiles}',
        DEB_PACKAGE,
      ]);
      expect(conffiles).toMatch(/^ \/etc\/convoy-agent\/enroll\.example [0-9a-f]{32}$/m);
      // Created by postinst, not shipped: removing the package must not delete an enrollment.
      expect(mode(at('var/lib/convoy-agent'))).toBe('700');
      expect(mode(at('var/log/convoy-agent'))).toBe('750');
      expect(readlinkSync(at(WANTS_LINK))).toBe('/lib/systemd/system/convoy-agent.service');
    });

    it('runs the installed bundle with node', () => {
      const out = mustSh(process.execPath, [at('usr/lib/convoy-agent/convoy-agent.js'), '--version']);
      expect(out.trim()).toBe('1.2.3-rc.1');
      expect(readFileSync(at('usr/bin/convoy-agent'), 'utf8')).toContain(
        'exec /usr/bin/node /usr/lib/convoy-agent/convoy-agent.js "$@"',
      );
    });

    it("upgrades keeping the enrollment, the operator's conffile edit and a disabled unit", () => {
      writeFileSync(at('var/lib/convoy-agent/agent.yaml'), 'hostId: h1\n');
      writeFileSync(at('etc/convoy-agent/enroll.example'), '# controller: ctl.example:4860\n');
      rmSync(at(WANTS_LINK)); // what `systemctl disable` does
      const r = dpkg(root, ['-i', release.deb]);
      expect(r).toMatchObject({ code: 0 });
      expect(status(root)).toBe('install ok installed 1.2.3');
      expect(readFileSync(at('var/lib/convoy-agent/agent.yaml'), 'utf8')).toBe('hostId: h1\n');
      expect(readFileSync(at('etc/convoy-agent/enroll.example'), 'utf8')).toBe(
        '# controller: ctl.example:4860\n',
      );
      expect(linkExists(at(WANTS_LINK))).toBe(false);
      const out = mustSh(process.execPath, [at('usr/lib/convoy-agent/convoy-agent.js'), '--version']);
      expect(out.trim()).toBe('1.2.3');
    });

    it('removes the files but keeps the enrollment, after stopping the fallback supervisor', async () => {
      mustSh('systemctl', ['--quiet', `--root=${root}`, 'enable', 'convoy-agent.service']);
      // Stands for `convoy-agent supervise`: prerm recognises a supervisor by that argument.
      const supervisor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'supervise'], {
        stdio: 'ignore',
      });
      const exited = new Promise((resolve) => supervisor.once('exit', resolve));
      writeFileSync(at('var/lib/convoy-agent/supervisor.pid'), `${supervisor.pid}\n`);
      // What a self-update leaves beside the bundle (binary.replace).
      writeFileSync(at('usr/lib/convoy-agent/convoy-agent.js.previous'), '');
      try {
        // Async: a supervisor that is our child stays a zombie (alive to prerm's `kill -0`) until
        // this process reaps it, which a synchronous spawn would not let it do.
        expect(await shAsync('dpkg', dpkgArgs(root, ['--remove', DEB_PACKAGE]))).toMatchObject({ code: 0 });
        await waitFor(
          'the supervisor to stop',
          () => supervisor.exitCode !== null || supervisor.signalCode !== null,
        );
      } finally {
        supervisor.kill('SIGKILL');
        await exited;
      }
      expect(supervisor.signalCode).toBe('SIGTERM');
      expect(status(root)).toMatch(/^deinstall ok config-files/);
      expect(existsSync(at('usr/lib/convoy-agent'))).toBe(false);
      expect(existsSync(at('usr/bin/convoy-agent'))).toBe(false);
      expect(existsSync(at('lib/systemd/system/convoy-agent.service'))).toBe(false);
      expect(existsSync(at('var/lib/convoy-agent/agent.yaml'))).toBe(true);
      expect(existsSync(at('etc/convoy-agent/enroll.example'))).toBe(true);
    });

    it('purges the state and log directories, the conffile and the enablement', () => {
      expect(dpkg(root, ['--purge', DEB_PACKAGE])).toMatchObject({ code: 0 });
      expect(status(root)).toMatch(/^not known|^unknown ok not-installed/);
      for (const gone of ['var/lib/convoy-agent', 'var/log/convoy-agent', 'etc/convoy-agent/enroll.example'])
        expect([gone, existsSync(at(gone))]).toEqual([gone, false]);
      expect(linkExists(at(WANTS_LINK))).toBe(false);
    });
  });
});

describe('package-deb with bad input', () => {
  let base: string;
  beforeEach(() => (base = tempDir('deb-bad')));
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('names the missing bundle and writes nothing', async () => {
    const missing = path.join(base, 'nope/convoy-agent.js');
    const outDir = path.join(base, 'out');
    const err: unknown = await packageAgentDeb({ bundle: missing, outDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConvoyError);
    expect((err as ConvoyError).code).toBe('INVALID_ARGUMENT');
    expect((err as ConvoyError).message).toContain(missing);
    expect(existsSync(outDir)).toBe(false);
  });

  it('refuses a version that is not semver, before writing anything', async () => {
    const bundle = path.join(base, 'convoy-agent.js');
    writeFileSync(bundle, '');
    const outDir = path.join(base, 'out');
    await expect(packageAgentDeb({ bundle, outDir, version: '1.2' })).rejects.toThrow(
      /"1\.2": must be a semver/,
    );
    expect(existsSync(outDir)).toBe(false);
  });

  it('exits 2 from the command line, naming the file', () => {
    if (!existsSync(PACKAGER)) throw new Error(`${PACKAGER} is missing: run npm run build first`);
    const missing = path.join(base, 'missing.js');
    const r = sh(process.execPath, [PACKAGER, '--bundle', missing, '--out', path.join(base, 'out')]);
    expect(r.code).toBe(2);
    expect(r.out).toContain(`package-deb: INVALID_ARGUMENT: bundle ${missing}: no such file`);
    expect(existsSync(path.join(base, 'out'))).toBe(false);
  });
});
