/**
 * Enrollment over SSH and the agent's self-update, on N hosts built as network namespaces, each
 * with its own OpenSSH server (docs/benchmarks.md, "Enrollment over SSH and self-update"):
 *
 *   - the agent bundle: `build-agent.js` wall time and the file's size
 *   - `convoy hosts enroll --ssh` of all N at once, then again (every run must change nothing)
 *   - each bundled agent's VmRSS after 5 s idle (the `run` child of each `convoy-agent supervise`)
 *   - a rollout of recipes/convoy-agent.yaml from 0.1.0 to a signed 0.1.1, all N in one batch
 *
 * The hosts are ./enroll-fleet's: the controller and every CLI in the ctl namespace, each host's
 * sshd and release server in its own. This process only reads files and /proc.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import type { RolloutView } from '../../controller/rollout/view';
import { HttpRepoProcess } from '../fixtures/http-repo-process';
import { enrollUnavailableReason, startFleet, tailOf, type SshFleet } from './enroll-fleet';
import { openWindowYaml } from './open-window';
import { CONVOY, ROOT } from './paths';
import { readRssBreakdown, runNode, sleep, type RssBreakdown } from './proc';
import type { Teardown } from './teardown';
import { note, type Workspace } from './workspace';
import { childrenOf } from '../fixtures/pids';

const BUILD_AGENT = path.join(ROOT, 'dist/scripts/build-agent.js');
const AGENT_RECIPE = path.join(ROOT, 'recipes/convoy-agent.yaml');
/** The agent version enrolled, and the one the self-update rolls out. */
export const FROM = '0.1.0';
export const TO = '0.1.1';
/** How long the agents sit idle after the second enrollment before their RSS is read. */
const IDLE_MS = 5000;
const ENROLL_TIMEOUT_MS = 180_000;
const ROLLOUT_TIMEOUT_MS = 300_000;

export interface EnrollBenchOptions {
  readonly hosts: number;
}

/** Everything the enrollment part measured, raw; or why it did not run. */
export type EnrollResult =
  | { readonly skipped: string; readonly hosts: number }
  | (EnrollMeasurements & { readonly skipped?: undefined });

export interface EnrollMeasurements {
  readonly hosts: number;
  readonly bundleBytes: number;
  /** `build-agent.js --version 0.1.0` from spawn to exit, and the signed 0.1.1 build, ms. */
  readonly bundleBuildMs: number;
  readonly signedBuildMs: number;
  /** First enrollment: first spawn to last exit, and each CLI's spawn to exit, ms. */
  readonly enrollWallMs: number;
  readonly enrollPerHostMs: readonly number[];
  readonly rerunWallMs: number;
  readonly rerunPerHostMs: readonly number[];
  /** Memory of each host's agent (`run`) and its supervisor after IDLE_MS. */
  readonly agentRss: readonly RssBreakdown[];
  readonly supervisorRss: readonly RssBreakdown[];
  /** The self-update's batches: `canary` hosts alone, then `concurrency` at a time. */
  readonly batches: { readonly canary: number; readonly concurrency: number };
  /** From spawning `rollout start` to the rollout's finishedAt, ms. */
  readonly selfUpdateMs: number;
  /** The machine's 1-minute load average when the enrollments began. */
  readonly loadAvg1m: number;
}

interface EnrollJson {
  readonly hostId: string;
  readonly changed: boolean;
  readonly online: boolean;
}

/** `build-agent.js` as `npm run build` runs it; its wall time and the bundle's size. */
async function buildBundle(
  out: string,
  version: string,
  signKey?: string,
): Promise<{ ms: number; bytes: number }> {
  const args = [
    '--out',
    out,
    '--version',
    version,
    ...(signKey === undefined ? [] : ['--sign-key', signKey]),
  ];
  const r = await runNode(BUILD_AGENT, args);
  if (r.code !== 0) throw new Error(`build-agent ${version}: ${r.stderr.trim()}`);
  return { ms: r.wallMs, bytes: statSync(out).size };
}

interface EnrollRound {
  readonly wallMs: number;
  readonly perHostMs: number[];
  readonly results: EnrollJson[];
}

/** `convoy hosts enroll --ssh` of every host at once; throws unless each one exits 0. */
async function enrollAll(fleet: SshFleet, bundle: string, releaseKey: string): Promise<EnrollRound> {
  const started = process.hrtime.bigint();
  const runs = await Promise.all(
    fleet.hosts.map((h, i) =>
      fleet.cli(
        [
          'hosts',
          'enroll',
          '--ssh',
          `root@${h.sshd.host}:${h.sshd.port}`,
          '--identity',
          fleet.client.privateKeyFile,
          '--host-key',
          h.sshd.hostKeyFingerprint,
          '--bundle',
          bundle,
          '--release-key',
          releaseKey,
          '--labels',
          `bench=enroll,idx=${i}`,
          '--json',
        ],
        ENROLL_TIMEOUT_MS,
      ),
    ),
  );
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const results = runs.map((r, i) => {
    if (r.code !== 0) throw new Error(`hosts enroll of host ${i} exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as EnrollJson;
  });
  return { wallMs, perHostMs: runs.map((r) => r.wallMs), results };
}

/** Enrolls every host, then again: the first run must enroll each, the second change nothing. */
async function enrollTwice(
  fleet: SshFleet,
  bundle: string,
  releaseKey: string,
): Promise<{ first: EnrollRound; rerun: EnrollRound; ids: string[] }> {
  note(`enroll: convoy hosts enroll --ssh of ${fleet.hosts.length} hosts at once`);
  const first = await enrollAll(fleet, bundle, releaseKey);
  if (!first.results.every((r) => r.changed && r.online))
    throw new Error(`first enrollment: ${JSON.stringify(first.results)}`);
  const ids = first.results.map((r) => r.hostId);
  if (new Set(ids).size !== ids.length) throw new Error(`duplicate host ids: ${ids.join(', ')}`);
  note(`enroll: ${Math.round(first.wallMs)} ms; again, which must change nothing`);
  const rerun = await enrollAll(fleet, bundle, releaseKey);
  const changed = rerun.results.filter((r, i) => r.changed || r.hostId !== ids[i]);
  if (changed.length > 0)
    throw new Error(`the second enrollment changed something: ${JSON.stringify(changed)}`);
  return { first, rerun, ids };
}

/** Median of three readings 200 ms apart: one garbage collection can move a single one by MBs. */
async function steadyRss(pid: number): Promise<RssBreakdown> {
  const samples: RssBreakdown[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(200);
    samples.push(readRssBreakdown(pid));
  }
  const mid = samples.sort((a, b) => a.rssKb - b.rssKb)[1];
  if (mid === undefined || Number.isNaN(mid.rssKb)) throw new Error(`no VmRSS for pid ${pid}`);
  return mid;
}

/** Each host's supervisor and its one `convoy-agent.js run` child, VmRSS in kB. */
async function idleRss(fleet: SshFleet): Promise<{ agent: RssBreakdown[]; supervisor: RssBreakdown[] }> {
  const agentRss: RssBreakdown[] = [];
  const supervisorRss: RssBreakdown[] = [];
  for (const [i, h] of fleet.hosts.entries()) {
    const supervisor = Number(readFileSync(path.join(h.state, 'supervisor.pid'), 'utf8').trim());
    const children = childrenOf(supervisor);
    const agent = children[0];
    if (children.length !== 1 || agent === undefined)
      throw new Error(`host ${i}: supervisor ${supervisor} has ${children.length} children, expected 1`);
    const argv = readFileSync(`/proc/${agent}/cmdline`, 'utf8').split('\0');
    if (!argv.some((a) => a.endsWith('/convoy-agent.js')) || !argv.includes('run'))
      throw new Error(`host ${i}: pid ${agent} is not the bundled agent: ${argv.join(' ')}`);
    agentRss.push(await steadyRss(agent));
    supervisorRss.push(await steadyRss(supervisor));
  }
  return { agent: agentRss, supervisor: supervisorRss };
}

/** The agents' deployment: one release server per host, on that host's own loopback. */
function agentsFleetYaml(
  ids: readonly string[],
  urls: readonly string[],
  batch: EnrollMeasurements['batches'],
): string {
  const deployment = {
    name: 'convoy-agents',
    recipe: AGENT_RECIPE,
    target: TO,
    window: 'open',
    staging: { concurrency: ids.length },
    batches: { ...batch, errorThreshold: 0 },
    hosts: ids.map((id, i) => ({ id, vars: { releaseUrl: urls[i] ?? '', node: process.execPath } })),
  };
  return ['windows:', openWindowYaml('open'), stringify({ deployments: [deployment] })].join('\n');
}

/** Rolls 0.1.1 out to every host; returns `rollout start` to finishedAt, ms. */
async function selfUpdate(
  fleet: SshFleet,
  ids: readonly string[],
  releases: string,
  batch: EnrollMeasurements['batches'],
): Promise<number> {
  await Promise.all(
    fleet.netns.hosts.map(async (ns) => {
      const repo = new HttpRepoProcess({
        root: releases,
        spawn: (cmd, args, opts) => fleet.netns.spawnIn(ns, cmd, args, opts),
      });
      fleet.repos.push(repo);
      await repo.start();
    }),
  );
  const file = path.join(fleet.ws.root, 'agents.fleet.yaml');
  writeFileSync(
    file,
    agentsFleetYaml(
      ids,
      fleet.repos.map((r) => r.url),
      batch,
    ),
  );
  const applied = await fleet.cli(['apply', file]);
  if (applied.code !== 0) throw new Error(`convoy apply: ${applied.stderr.trim()}`);
  const startedAt = Date.now();
  const started = await fleet.cliJson<RolloutView>(['rollout', 'start', 'convoy-agents', '--stage-now']);
  const watch = await fleet.cli(['rollout', 'watch', started.id, '--json'], ROLLOUT_TIMEOUT_MS);
  const doc = JSON.parse(watch.stdout || '{}') as Partial<RolloutView>;
  if (watch.code !== 0 || doc.state !== 'succeeded' || doc.finishedAt == null)
    throw new Error(`agent rollout ${started.id} ended ${doc.state ?? '?'}: ${doc.reason ?? watch.stderr}`);
  const { hosts } = await fleet.cliJson<{ hosts: { id: string; agentVersion: string }[] }>(['hosts', 'list']);
  const behind = ids.filter((id) => hosts.find((h) => h.id === id)?.agentVersion !== TO);
  if (behind.length > 0) throw new Error(`after the rollout, ${behind.join(', ')} do not report agent ${TO}`);
  return doc.finishedAt - startedAt;
}

export async function benchEnroll(
  ws: Workspace,
  opts: EnrollBenchOptions,
  teardown: Teardown,
): Promise<EnrollResult> {
  const unavailable = enrollUnavailableReason();
  if (unavailable !== undefined) {
    note(`enroll: skipped: ${unavailable}`);
    return { skipped: unavailable, hosts: opts.hosts };
  }
  note(`enroll: building the agent bundle ${FROM}`);
  const bundle = path.join(ws.root, `bundle-${FROM}/convoy-agent.js`);
  const built = await buildBundle(bundle, FROM);
  const releaseKeyFile = path.join(ws.root, 'release.key');
  const keygen = await runNode(CONVOY, ['release', 'keygen', '--out', releaseKeyFile]);
  if (keygen.code !== 0) throw new Error(`convoy release keygen: ${keygen.stderr.trim()}`);
  const releaseKey = keygen.stdout.trim();

  note(`enroll: ${opts.hosts} network namespaces, one sshd each; the controller in another`);
  const fleet = await startFleet(ws, opts.hosts, teardown);
  try {
    const loadAvg1m = os.loadavg()[0] ?? NaN;
    const { first, rerun, ids } = await enrollTwice(fleet, bundle, releaseKey);
    note(`enroll: ${Math.round(rerun.wallMs)} ms; agents idle ${IDLE_MS / 1000} s, then their RSS`);
    await sleep(IDLE_MS);
    const rss = await idleRss(fleet);

    note(`enroll: building the signed ${TO} and rolling it out to every agent in one batch`);
    const releases = path.join(ws.root, 'releases');
    const signed = await buildBundle(path.join(releases, TO, 'convoy-agent.js'), TO, releaseKeyFile);
    const batches = { canary: 0, concurrency: opts.hosts };
    const selfUpdateMs = await selfUpdate(fleet, ids, releases, batches);
    note(`enroll: every agent reports ${TO} after ${Math.round(selfUpdateMs)} ms`);
    return {
      hosts: opts.hosts,
      bundleBytes: built.bytes,
      bundleBuildMs: built.ms,
      signedBuildMs: signed.ms,
      enrollWallMs: first.wallMs,
      enrollPerHostMs: first.perHostMs,
      rerunWallMs: rerun.wallMs,
      rerunPerHostMs: rerun.perHostMs,
      agentRss: rss.agent,
      supervisorRss: rss.supervisor,
      batches,
      selfUpdateMs,
      loadAvg1m,
    };
  } catch (err) {
    for (const [i, h] of fleet.hosts.entries())
      note(`host ${i} agent.log:\n${tailOf(path.join(h.log, 'agent.log'))}`);
    throw err;
  } finally {
    await fleet.stop();
  }
}
