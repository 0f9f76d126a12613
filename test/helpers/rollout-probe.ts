/**
 * What the rollout tests on BlueMind fleets (netns, partition, disk full) read to judge a rollout, all from files and the CLI
 * (never by dialing a namespace): `rollout status --json`, `convoy status`, events, the store's
 * phase runs, an agent's phase journal, a host's dpkg log.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PHASE_JOURNAL_FILE } from '../../agent/phase/journal';
import { PHASE_STATE_DIR } from '../../agent/phase/summary';
import type { BlueMindFleet, FleetHost } from '../../scripts/fixtures/bluemind-fleet';
import { queryStore } from './store-query';
import { waitFor } from './wait';

/** States a rollout stops in: finished, or waiting for an operator. */
export const FINISHED = ['succeeded', 'held', 'halted', 'failed', 'aborted', 'rolled-back'];

export interface RolloutHostDoc {
  hostId: string;
  hostname: string;
  batch: number;
  state: string;
  phase: string | null;
  unknown: boolean;
  reason: string;
  startedAt: number | null;
  installed: string;
  staged: string;
}

export interface RolloutDoc {
  id: string;
  state: string;
  reason: string;
  paused: boolean;
  finalize: { state: string | null; host: string | null };
  hosts: RolloutHostDoc[];
}

export interface EventDoc {
  id: number;
  kind: string;
  hostId: string | null;
  data?: Record<string, unknown>;
}

export interface PhaseRunRow {
  host_id: string;
  phase: string;
  state: string;
  started_at: number;
}

export interface HostStatusDoc {
  id: string;
  online: boolean;
  /** Null until the host belongs to a deployment. */
  app: { maintenance: boolean; installed: string } | null;
}

export function rolloutStatus(fleet: BlueMindFleet, id: string): Promise<RolloutDoc> {
  return fleet.cliJson<RolloutDoc>('rollout', 'status', id);
}

export async function waitForRollout(
  fleet: BlueMindFleet,
  id: string,
  what: string,
  done: (doc: RolloutDoc) => boolean,
  timeoutMs = 90_000,
): Promise<RolloutDoc> {
  let last: RolloutDoc | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        last = await rolloutStatus(fleet, id);
        return done(last) ? last : undefined;
      },
      timeoutMs,
      200,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last)}\n${fleet.dump()}`);
  }
}

/** Starts a rollout of mail-prod to the highest version offered, once every agent is online. */
export async function startRollout(fleet: BlueMindFleet, ...extra: string[]): Promise<string> {
  // `start` refuses while an agent is offline, and on a loaded machine the fleet's 500 ms
  // heartbeats can lapse for a moment (the agents reconnect at once): start when all are back.
  for (let attempt = 1; ; attempt++) {
    await fleet.waitOnline(fleet.hosts.length, 60_000);
    const r = await fleet.cli('rollout', 'start', 'mail-prod', '--to', 'latest', ...extra);
    if (r.code === 0) return r.stdout.trim();
    if (attempt >= 5 || !r.stderr.includes('HOST_OFFLINE'))
      throw new Error(`rollout start exited ${r.code}: ${r.stderr}\n${fleet.dump()}`);
  }
}

export async function hostStatus(fleet: BlueMindFleet, hostId: string): Promise<HostStatusDoc | undefined> {
  return (await fleet.cliJson<{ hosts: HostStatusDoc[] }>('status')).hosts.find((h) => h.id === hostId);
}

export function rolloutEvents(fleet: BlueMindFleet, id: string, hostId?: string): Promise<EventDoc[]> {
  const host = hostId === undefined ? [] : ['--host', hostId];
  return fleet.cliJson<EventDoc[]>('events', '--rollout', id, ...host, '--limit', '1000');
}

/** Every phase run the controller wrote ahead for this rollout (its run ids start with the rollout id). */
export function phaseRuns(fleet: BlueMindFleet, id: string): Promise<PhaseRunRow[]> {
  return queryStore<PhaseRunRow>(
    fleet.stateDir,
    'SELECT host_id, phase, state, started_at FROM phase_runs WHERE run_id LIKE ? ORDER BY started_at',
    [`${id}-%`],
  );
}

export interface AgentJournal {
  runId: string;
  phase: string;
  state: string;
}

/** The agent's phase journal (agent/phase/journal.ts), read from its state directory. */
export function agentJournal(host: FleetHost): AgentJournal | undefined {
  const file = path.join(host.agentDir, PHASE_STATE_DIR, PHASE_JOURNAL_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as AgentJournal;
  } catch {
    return undefined; // Mid-rename: the next poll reads it whole.
  }
}

/** Lines of the host's dpkg log recording `upgrade bm-core OLD NEW` to `version`: one per unpack. */
export function dpkgUpgrades(host: FleetHost, version: string): number {
  const log = path.join(host.apt.root, 'var/log/dpkg.log');
  if (!existsSync(log)) return 0;
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => / upgrade bm-core:\S* \S+ (\S+)$/.test(l) && l.endsWith(` ${version}`)).length;
}
