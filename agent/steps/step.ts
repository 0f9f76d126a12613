/**
 * What every step type implements, and what it is given. One module per step type lives beside
 * this file; each exports a `StepExecutor` whose `contract` is the written promise
 * docs/recipes.md repeats: what it checks, what it changes, whether it is idempotent, what
 * happens when the agent died in the middle of it, and how it rolls back.
 */
import type { ErrorCode } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { Step } from '../../shared/recipe/types';
import type { Exec } from '../host/exec';
import type { RebootFacts } from '../host/reboot-facts';

/** Resolves secrets by name from the agent's root-only secrets file. */
export interface SecretResolver {
  /** Throws a ConvoyError naming the secret (never its value) when it is not defined. */
  get(name: string): string;
  /** Every secret value known, so that output can be masked before it is stored or sent. */
  values(): readonly string[];
}

export interface StepContext {
  /** `target`, `installed` and `var.NAME` values for `{{...}}` substitution (already applied to the step). */
  readonly vars: Readonly<Record<string, string>>;
  readonly secrets: SecretResolver;
  readonly exec: Exec;
  /** Environment added to every child (APT_CONFIG for an isolated root, PATH for wrappers). */
  readonly env: Readonly<Record<string, string>>;
  /** The agent's state directory: staging and backups live below it unless the step says otherwise. */
  readonly stateDir: string;
  /** Ed25519 public keys that may sign release artifacts (pinned on the agent). */
  readonly releaseKeys: readonly Uint8Array[];
  /** Results of the steps that already ran in this phase run (and earlier phases' recorded results). */
  readonly results: ReadonlyMap<string, StepResult>;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly now: () => number;
  /**
   * Exits the agent for its supervisor to start it again (self-update). Absent where nothing
   * would: a local `phase run`, or an agent started by hand.
   */
  readonly requestRestart?: () => void;
  /** Given by the runner to `reboot` steps only: the journal and the host's boot id. */
  readonly reboot?: RebootHooks;
}

/** A reboot a step journaled before its command ran (agent/phase/journal.ts keeps it). */
export interface JournaledReboot {
  readonly stepId: string;
  /** The boot id when the reboot command was about to run. */
  readonly bootId: string;
  readonly atMs: number;
}

/** What a `reboot` step needs from the phase run around it (agent/steps/reboot.ts). */
export interface RebootHooks {
  readonly facts: RebootFacts;
  /** The reboot this step journaled in an earlier process of the same run, if any. */
  readonly journaled?: JournaledReboot;
  /**
   * Journals (fsynced) that the step reboots from `bootId`, then tells the controller; resolves
   * once the report has left (or after a short bound), before the command runs.
   */
  announce(bootId: string): Promise<void>;
}

export interface StepResult {
  readonly ok: boolean;
  /** When `ok` is false: a catalogue code and a one-line reason (secrets masked). */
  readonly error?: { readonly code: ErrorCode; readonly message: string };
  readonly exitCode?: number | null;
  readonly durationMs: number;
  /** The last lines of output, bounded and masked. */
  readonly outputTail: string;
  /** Set by backup steps: what restore needs to find the backup again. */
  readonly backupId?: string;
  /** Versions the step saw (installed, available, staged), when it reads any. */
  readonly versions?: readonly string[];
  /** Anything else a later step or the controller needs (paths of staged files, ...). */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** What happens to a step the agent was inside of when it died (the resume table's row). */
export type InterruptedPolicy =
  /** The step changes nothing that matters or can safely be repeated: run it again. */
  | 'redo'
  /** Running it again finishes what was started (e.g. `apt-get upgrade` after dpkg was killed). */
  | 'resume'
  /** It must not run again: undo it through the phase's rollback. */
  | 'rollback';

export interface StepContract {
  readonly checks: string;
  readonly changes: string;
  readonly idempotent: boolean;
  readonly interrupted: InterruptedPolicy;
  readonly rollback: string;
}

export interface StepExecutor<S extends Step = Step> {
  readonly type: S['type'];
  readonly contract: StepContract;
  /** Does the work; operational failures come back as `ok: false`, bugs throw. */
  run(step: S, ctx: StepContext): Promise<StepResult>;
  /**
   * Checks the step (placeholders filled) against facts of this host before the phase's first
   * step runs, so that a phase that cannot finish here changes nothing. Returns why it cannot.
   */
  preflight?(step: S): { readonly code: ErrorCode; readonly message: string } | undefined;
}
