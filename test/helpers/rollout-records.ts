/**
 * Rollout and host records as the store returns them, for the pure tests of the rollout tables:
 * a three-host deployment (canary h1 in batch 0, h2 and h3 in batch 1) with a nightly window.
 */
import type {
  HostState,
  RolloutHostRecord,
  RolloutRecord,
  RolloutSpec,
} from '../../controller/rollout/model';

/** 03:00-05:00 UTC every night. */
export const NIGHTLY = {
  name: 'night',
  cron: '0 3 * * *',
  durationMs: 2 * 3_600_000,
  timezone: 'UTC',
  cutoffMs: 0,
} as const;

/** Inside the window, and outside it (the fake clock of these tests). */
export const IN_WINDOW = Date.UTC(2026, 11, 8, 3, 30);
export const OUT_OF_WINDOW = Date.UTC(2026, 11, 8, 12, 0);
export const NEXT_OPENING = Date.UTC(2026, 11, 9, 3, 0);

export function rolloutSpec(overrides: Partial<RolloutSpec> = {}): RolloutSpec {
  return {
    deployment: 'mail',
    recipeName: 'bluemind',
    recipeLabel: 'bluemind',
    recipeYaml: '',
    requestedTarget: '4.1.2',
    target: '4.1.2',
    vars: {},
    window: NIGHTLY,
    staging: { cron: null, timezone: 'UTC', jitterMs: 0, concurrency: 2 },
    batches: {
      canary: 1,
      concurrency: { kind: 'count', value: 2 },
      errorThreshold: { kind: 'count', value: 0 },
      pause: { kind: 'none' },
    },
    hosts: [],
    maxFailures: 0,
    approved: false,
    estimateMsPerHost: null,
    finalizeRole: 'core',
    ...overrides,
  };
}

export function rollout(
  overrides: Partial<RolloutRecord> = {},
  spec: Partial<RolloutSpec> = {},
): RolloutRecord {
  return {
    id: 'r-1',
    deployment: 'mail',
    spec: rolloutSpec(spec),
    state: 'upgrading',
    reason: '',
    paused: false,
    pauseUntil: null,
    releasedBatch: 0,
    toleratedFailures: 0,
    finalizeResends: 0,
    stageAt: IN_WINDOW - 3_600_000,
    stagedAt: IN_WINDOW - 1_800_000,
    windowOpenedAt: null,
    finalizeState: null,
    finalizeHost: null,
    createdBy: 'operator',
    createdAt: IN_WINDOW - 7_200_000,
    updatedAt: IN_WINDOW,
    finishedAt: null,
    ...overrides,
  };
}

export function host(
  hostId: string,
  state: HostState,
  overrides: Partial<RolloutHostRecord> = {},
): RolloutHostRecord {
  const batch = hostId === 'h1' ? 0 : 1;
  return {
    rolloutId: 'r-1',
    hostId,
    position: Number(hostId.slice(1)),
    batch,
    role: hostId === 'h1' ? 'core' : 'edge',
    vars: {},
    state,
    phase: null,
    phaseRunId: null,
    installed: '4.1.0',
    staged: '',
    unknown: false,
    reason: '',
    startedAt: null,
    finishedAt: null,
    downtimeMs: null,
    resends: 0,
    ...overrides,
  };
}

/** h1, h2, h3 in the states given. */
export function hosts(...states: HostState[]): RolloutHostRecord[] {
  return states.map((s, i) => host(`h${i + 1}`, s));
}

/** What a Cells agent answers a rollback past its point of no return (held-host.ts). */
export const CELLS_POINT = {
  stepId: 'start-cells',
  backupId: 'r-1-u-backup-data',
  manualRecovery: 'stop cells; restore the data backup shown here; start cells',
} as const;

/** A host held past the point of no return, its reason as the rollout writes it. */
export function heldHost(hostId: string): RolloutHostRecord {
  return host(hostId, 'held', {
    reason:
      'past the point of no return at step start-cells; backup r-1-u-backup-data; manual procedure: ' +
      'stop cells; restore the data backup shown here; start cells',
  });
}
