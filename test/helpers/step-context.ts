/**
 * A real, minimal StepContext for running one step executor in a test: the real `execOnHost`
 * (steps must run real programs), secrets from a Map, a temp state directory, a silent logger,
 * and an AbortController the test may fire. A state directory it makes is removed by cleanup(), or
 * at the latest after the test file.
 */
import { rmSync } from 'node:fs';
import { execOnHost } from '../../agent/host/exec';
import { secretsFromMap } from '../../agent/secrets';
import type { SecretResolver, StepContext, StepExecutor, StepResult } from '../../agent/steps/step';
import { silentLogger } from '../../shared/logger';
import type { Step } from '../../shared/recipe/types';
import { tempDir } from './processes';

export interface TestStepContext extends StepContext {
  readonly abort: AbortController;
  /** Deletes the state directory when this helper created it. */
  readonly cleanup: () => void;
}

export interface StepContextOptions {
  readonly vars?: Readonly<Record<string, string>>;
  readonly env?: Readonly<Record<string, string>>;
  readonly secrets?: ReadonlyMap<string, string>;
  readonly stateDir?: string;
  readonly results?: ReadonlyMap<string, StepResult>;
}

/** The agent's own in-memory resolver, so tests see exactly what steps see in production. */
export function secretsOf(map: ReadonlyMap<string, string>): SecretResolver {
  return secretsFromMap(map);
}

/** State directories this helper made and nobody removed yet. */
const madeStateDirs = new Set<string>();

// Jest loads this module once per test file, so this hook runs after each file that imports it:
// a test that never calls cleanup() still leaves no state directory behind.
afterAll(() => {
  for (const dir of madeStateDirs) rmSync(dir, { recursive: true, force: true });
  madeStateDirs.clear();
});

export function stepContext(options: StepContextOptions = {}): TestStepContext {
  const abort = new AbortController();
  const stateDir = options.stateDir ?? tempDir('state');
  if (options.stateDir === undefined) madeStateDirs.add(stateDir);
  return {
    vars: options.vars ?? {},
    secrets: secretsOf(options.secrets ?? new Map()),
    exec: execOnHost,
    env: options.env ?? {},
    stateDir,
    releaseKeys: [],
    results: options.results ?? new Map(),
    log: silentLogger,
    signal: abort.signal,
    now: Date.now,
    abort,
    cleanup: () => {
      if (!madeStateDirs.delete(stateDir)) return;
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Runs one step in a fresh context (`options` as for stepContext), and removes its state directory after. */
export async function runStep<S extends Step>(
  executor: StepExecutor<S>,
  step: S,
  options: StepContextOptions = {},
): Promise<StepResult> {
  const ctx = stepContext(options);
  try {
    return await executor.run(step, ctx);
  } finally {
    ctx.cleanup();
  }
}

/** What the phase runner takes as `RunnerDeps.context`: everything but vars, results and signal. */
export function runnerContext(
  options: StepContextOptions = {},
): Omit<StepContext, 'vars' | 'results' | 'signal'> {
  const ctx = stepContext(options);
  return {
    secrets: ctx.secrets,
    exec: ctx.exec,
    env: ctx.env,
    stateDir: ctx.stateDir,
    releaseKeys: ctx.releaseKeys,
    log: ctx.log,
    now: ctx.now,
  };
}

/** The fields every step has, with test defaults: a generous timeout and no retries. */
export function stepBase(id: string): Pick<Step, 'id' | 'source' | 'timeoutMs' | 'retries'> {
  return { id, source: 'test', timeoutMs: 60_000, retries: 0 };
}
