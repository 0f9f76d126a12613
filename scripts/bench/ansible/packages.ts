/**
 * The package side of the staged upgrade: one repository of the three packages at FROM and TO,
 * served from the ctl namespace, and one isolated apt root per host (fixtures.md §1).
 *
 * Every root is a copy of one template that has FROM installed and the repository's lists
 * fetched; only its `apt.conf` differs (absolute paths). Resetting a host before a staged run is
 * therefore a fresh copy: FROM installed, an empty archive cache, on both sides alike. `verify`
 * reads dpkg's status file in every root, so a run that upgraded nothing fails the bench.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aptConf, buildDeb, indexRepository, prepareAptRoot } from '../../fixtures/apt-host';
import { HttpRepoProcess } from '../../fixtures/http-repo-process';
import type { Netns } from '../../fixtures/netns';
import { FROM, PACKAGES, TO } from './workloads';

/** Builds the .debs and the index into `dir`; returns the repository directory. */
export async function buildRepository(dir: string): Promise<string> {
  const repoDir = path.join(dir, 'repo');
  mkdirSync(path.join(repoDir, 'pool'), { recursive: true });
  for (const pkg of PACKAGES)
    for (const version of [FROM, TO])
      await buildDeb(path.join(dir, 'build'), path.join(repoDir, 'pool'), { pkg, version });
  await indexRepository(repoDir);
  return repoDir;
}

/** The repository server, listening on the ctl namespace's bridge address. */
export async function serveRepository(netns: Netns, repoDir: string): Promise<HttpRepoProcess> {
  const repo = new HttpRepoProcess({
    root: repoDir,
    host: netns.ctl.address,
    spawn: (cmd, args, opts) => netns.spawnIn(netns.ctl, cmd, args, opts),
  });
  await repo.start();
  return repo;
}

/** The template root: lists fetched and FROM installed, by apt-get run inside the ctl namespace. */
export async function buildTemplateRoot(netns: Netns, root: string, repoUrl: string): Promise<void> {
  const conf = prepareAptRoot(root);
  writeFileSync(path.join(root, 'etc/apt/sources.list'), `deb [trusted=yes] ${repoUrl}/ ./\n`);
  const env = { ...process.env, APT_CONFIG: conf, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', ...PACKAGES.map((p) => `${p}=${FROM}`)], ['clean']]) {
    const r = await netns.execIn(netns.ctl, 'apt-get', args, { env, timeoutMs: 120_000 });
    if (r.code !== 0)
      throw new Error(`template root: apt-get ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  }
  const found = installedVersions(root);
  if (PACKAGES.some((p) => found.get(p) !== FROM))
    throw new Error(`template root: ${JSON.stringify([...found])}`);
}

/** What a host's agent and Ansible tasks need in their environment to act on `root`. */
export function rootEnv(root: string): { APT_CONFIG: string; DPKG_ADMINDIR: string } {
  return { APT_CONFIG: path.join(root, 'apt.conf'), DPKG_ADMINDIR: path.join(root, 'var/lib/dpkg') };
}

/** Replaces `root` with a copy of the template: FROM installed, nothing in the archive cache. */
export function resetRoot(template: string, root: string): void {
  rmSync(root, { recursive: true, force: true });
  cpSync(template, root, { recursive: true });
  writeFileSync(path.join(root, 'apt.conf'), aptConf(root));
  // apt's binary caches name the template's files; apt rebuilds them for this root.
  for (const f of readdirSync(path.join(root, 'var/cache/apt')))
    if (f.endsWith('.bin')) rmSync(path.join(root, 'var/cache/apt', f));
  if (cachedDebs(root).length > 0) throw new Error(`${root}: archive cache not empty after reset`);
}

export function cachedDebs(root: string): string[] {
  return readdirSync(path.join(root, 'var/cache/apt/archives')).filter((f) => f.endsWith('.deb'));
}

/** Package -> version of every package dpkg lists as `install ok installed` in `root`. */
export function installedVersions(root: string): Map<string, string> {
  const found = new Map<string, string>();
  const status = readFileSync(path.join(root, 'var/lib/dpkg/status'), 'utf8');
  for (const stanza of status.split(/\n\n+/)) {
    const field = (name: string): string | undefined =>
      new RegExp(`^${name}: (.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const pkg = field('Package');
    const version = field('Version');
    if (pkg !== undefined && version !== undefined && field('Status') === 'install ok installed')
      found.set(pkg, version);
  }
  return found;
}

/** Throws unless every package is at `version` in every root: the run did its work. */
export function verifyRoots(roots: readonly string[], version: string, what: string): void {
  const wrong = roots.flatMap((root) => {
    const found = installedVersions(root);
    return PACKAGES.filter((p) => found.get(p) !== version).map(
      (p) => `${root}: ${p} ${found.get(p) ?? 'missing'}`,
    );
  });
  if (wrong.length > 0)
    throw new Error(`${what}: ${wrong.length} package(s) not at ${version}: ${wrong.slice(0, 5).join('; ')}`);
}
