/**
 * What the rollout tests on BlueMind fleets (flow, netns, partition, disk full) read to judge a
 * rollout, all from files and the CLI (never by dialing a namespace): `rollout status --json` (the
 * controller's RolloutView), `convoy status`, events, the store's rows, an agent's phase journal, a
 * host's dpkg log.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PHASE_JOURNAL_FILE } from '../../agent/phase/journal';
import { PHASE_STATE_DIR } from '../../agent/phase/summary';
import { RESTING_ROLLOUT_STATES, isIn, type RolloutState } from '../../controller/rollout/model';
import type { RolloutHostView, RolloutView } from '../../controller/rollout/view';
import type { EventView } from '../../controller/store/events';
import type { BlueMindFleet, FleetHost } from '../../scripts/fixtures/bluemind-fleet';
import { queryStore } from './store-query';
import { waitFor } from './wait';

/** One entry of `convoy events --json`: a rollout's events always carry an object (its `rolloutId`). */
export type EventDoc = Omit<EventView, 'data'> & { readonly data: Readonly<Record<string, unknown>> };

export interface PhaseRunRow {
  host_id: string;
  phase: string;
  state: string;
  started_at: number;
}

/** One host of `convoy status --json`. */
export interface HostStatusDoc {
  id: string;
  online: boolean;
  /** Null until the host belongs to a deployment. */
  app: {
    deployment: string;
    application: string;
    installed: string;
    staged: string;
    maintenance: boolean;
    lastBackupId: string;
    lastHealth: string;
    /** The rollout the host is in, or null. */
    rollout: string | null;
  } | null;
}

/** The rollout stopped: finished, or waiting for an operator. */
export function isResting(r: { readonly state: string }): boolean {
  return isIn(RESTING_ROLLOUT_STATES, r.state);
}

export function rolloutStatus(fleet: BlueMindFleet, id: string): Promise<RolloutView> {
  return fleet.cliJson<RolloutView>('rollout', 'status', id);
}

/** Polls `rollout status` until `done` holds; on timeout the error carries the last status and the logs. */
export async function waitForRollout(
  fleet: BlueMindFleet,
  id: string,
  what: string,
  done: (doc: RolloutView) => boolean,
  timeoutMs = 90_000,
): Promise<RolloutView> {
  let last: RolloutView | undefined;
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

/** What the store says of a rollout: enough to wait on, and far cheaper to poll than a CLI process. */
export interface StoredRollout extends Pick<RolloutView, 'id' | 'state' | 'reason' | 'paused'> {
  readonly finalizeState: string | null;
  readonly hosts: readonly Pick<
    RolloutHostView,
    'hostId' | 'batch' | 'state' | 'phase' | 'installed' | 'staged' | 'reason'
  >[];
}

export async function storedRollout(fleet: BlueMindFleet, id: string): Promise<StoredRollout | undefined> {
  const [r] = await queryStore<{
    state: RolloutState;
    reason: string;
    paused: number;
    finalize_state: string | null;
  }>(fleet.stateDir, 'SELECT state, reason, paused, finalize_state FROM rollouts WHERE id = ?', [id]);
  if (r === undefined) return undefined;
  const hosts = await queryStore<StoredRollout['hosts'][number]>(
    fleet.stateDir,
    `SELECT host_id AS hostId, batch, state, phase, installed, staged, reason
       FROM rollout_hosts WHERE rollout_id = ? ORDER BY position`,
    [id],
  );
  return {
    id,
    state: r.state,
    reason: r.reason,
    paused: r.paused === 1,
    finalizeState: r.finalize_state,
    hosts,
  };
}

/**
 * Polls the store until `done` holds, then answers with `rollout status --json`; on timeout the
 * error carries the last row seen and the processes' logs.
 */
export async function waitForStoredRollout(
  fleet: BlueMindFleet,
  id: string,
  what: string,
  done: (r: StoredRollout) => boolean,
  timeoutMs = 60_000,
): Promise<RolloutView> {
  let last: StoredRollout | undefined;
  try {
    await waitFor(
      `rollout ${id} ${what}`,
      async () => {
        last = await storedRollout(fleet, id);
        return last !== undefined && done(last);
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${JSON.stringify(last, null, 1)}\n${fleet.dump()}`);
  }
  return rolloutStatus(fleet, id);
}

/**
 * Waits until the engine has written the rollout's reason `times` more times, each time a new
 * value: it looked at the rollout again that often and decided to wait again. Only for a reason
 * that changes on every look, such as the window countdown ("only 9m58s left in window night").
 */
export async function waitForReasonRewrites(
  fleet: BlueMindFleet,
  id: string,
  times: number,
  timeoutMs = 30_000,
): Promise<RolloutView> {
  const seen: string[] = [];
  const rewritten = (r: StoredRollout): boolean => {
    if (seen[seen.length - 1] !== r.reason) seen.push(r.reason);
    return seen.length > times;
  };
  try {
    return await waitForStoredRollout(
      fleet,
      id,
      `to have its reason rewritten ${times} times`,
      rewritten,
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}
reasons seen: ${JSON.stringify(seen)}`);
  }
}

/**
 * Waits until the controller's engine has looked at the unfinished rollouts `ticks` more times
 * (`engineTicks` in the rollout's status), for a check that nothing moved meanwhile.
 */
export async function letEngineTick(fleet: BlueMindFleet, id: string, ticks: number): Promise<void> {
  const from = (await rolloutStatus(fleet, id)).engineTicks;
  await waitFor(
    `${ticks} more looks by the engine`,
    async () => (await rolloutStatus(fleet, id)).engineTicks >= from + ticks || undefined,
    30_000,
    100,
  );
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

/** The fleet host's row in a rollout (a status doc or a stored rollout). */
export function rolloutHost<H extends { readonly hostId: string }>(
  r: { readonly id: string; readonly hosts: readonly H[] },
  h: FleetHost,
): H {
  const found = r.hosts.find((x) => x.hostId === h.hostId);
  if (found === undefined) throw new Error(`host ${h.name} is not in rollout ${r.id}`);
  return found;
}

/** Every host as `convoy status` shows it. */
export async function hostStatuses(fleet: BlueMindFleet): Promise<HostStatusDoc[]> {
  return (await fleet.cliJson<{ hosts: HostStatusDoc[] }>('status')).hosts;
}

export async function hostStatus(fleet: BlueMindFleet, hostId: string): Promise<HostStatusDoc | undefined> {
  return (await hostStatuses(fleet)).find((h) => h.id === hostId);
}

export function rolloutEvents(fleet: BlueMindFleet, id: string, hostId?: string): Promise<EventDoc[]> {
  const host = hostId === undefined ? [] : ['--host', hostId];
  return fleet.cliJson<EventDoc[]>('events', '--rollout', id, ...host, '--limit', '1000');
}

/** The kinds of a host's `rollout.host.*` events, in order. */
export function hostEventKinds(events: readonly EventDoc[], h: FleetHost): string[] {
  return events.filter((e) => e.hostId === h.hostId && e.kind.startsWith('rollout.host.')).map((e) => e.kind);
}

/** The id of the first event of `kind` (for `hostId`, when given); throws when there is none. */
export function eventId(events: readonly EventDoc[], kind: string, hostId: string | null = null): number {
  const e = events.find((x) => x.kind === kind && (hostId === null || x.hostId === hostId));
  if (e === undefined) throw new Error(`no ${kind} event${hostId === null ? '' : ` for ${hostId}`}`);
  return e.id;
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

/** The bm-core version the host's dpkg database says is installed. */
export function installedBmCore(host: FleetHost): Promise<string | undefined> {
  return host.apt.installedVersion('bm-core');
}
