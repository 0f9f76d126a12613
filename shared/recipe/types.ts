/**
 * Recipes: the upgrade procedure of one application, as compiled from YAML (see
 * shared/recipe/compile.ts and docs/recipes.md). These are the frozen, validated shapes every
 * other module works with; nothing here parses or checks anything.
 *
 * Strings in step parameters may contain `{{target}}`, `{{installed}}` and `{{var.NAME}}`;
 * they are substituted as data (never through a shell) when a phase runs.
 */

/** The phases of an upgrade, in the order a rollout visits them. */
export const PHASES = ['check', 'download', 'upgrade', 'finalize', 'verify', 'rollback'] as const;
export type PhaseName = (typeof PHASES)[number];

/** When a step runs, by the role of the host it runs on (labels `role=...`). */
export interface StepCondition {
  /** Runs only on hosts with one of these roles. */
  readonly role?: readonly string[];
  /** Runs only on hosts with none of these roles. */
  readonly notRole?: readonly string[];
  /** Runs only when `{{installed}}` satisfies this semver range (`>=4.1.0`). */
  readonly installed?: string;
  /**
   * true: runs only when `{{installed}}` equals `{{target}}` (the rollout's final verify, after
   * finalize); false: only when it does not (the verify right after the host's own upgrade).
   */
  readonly onTarget?: boolean;
}

interface StepBase {
  /** Stable id, unique within the recipe: journals, results and backups refer to it. */
  readonly id: string;
  /** Where the step comes from in the vendor's document (seed file and the line it follows). */
  readonly source: string;
  /** Bound on one attempt, milliseconds. Default per step type. */
  readonly timeoutMs: number;
  /** Further attempts after a failure. Default 0. */
  readonly retries: number;
  readonly when?: StepCondition;
}

/** Runs a program with an argv list; never a shell string. */
export interface ExecStep extends StepBase {
  readonly type: 'exec';
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Exit codes that count as success. Default [0]. */
  readonly acceptExitCodes: readonly number[];
  /** Secret (by name) written to the child's stdin, never to argv or env. */
  readonly stdinSecret?: string;
  /**
   * What a run that finds this step interrupted does: `rollback` (default: Convoy cannot know
   * whether a program is safe to repeat) or `redo` when the recipe author knows it is.
   */
  readonly onInterrupt: 'redo' | 'rollback';
}

export interface AptStep extends StepBase {
  readonly type: 'apt';
  /** `update`; `listUpgradable` (check); `downloadOnly` (stage); `upgrade` (apply only what was staged). */
  readonly action: 'update' | 'listUpgradable' | 'downloadOnly' | 'upgrade';
  /** Package names or patterns; empty means everything upgradable. */
  readonly packages: readonly string[];
  /** BlueMind uses aptitude. Default `apt-get`. */
  readonly frontend: 'apt-get' | 'aptitude';
}

export interface DnfStep extends StepBase {
  readonly type: 'dnf';
  /** `makecache`; `listUpdates` ("no match" is not an error); `downloadOnly`; `upgrade` (from cache, `-C`). */
  readonly action: 'makecache' | 'listUpdates' | 'downloadOnly' | 'upgrade';
  readonly packages: readonly string[];
  /** The vendor's documents say `yum`; dnf accepts the same syntax. Default `yum`. */
  readonly command: 'yum' | 'dnf';
}

export interface GitStep extends StepBase {
  readonly type: 'git';
  /** `fetchTags`; `checkoutTag` (refuses a dirty tree and a downgrade). */
  readonly action: 'fetchTags' | 'checkoutTag';
  /** The working tree. */
  readonly dir: string;
  /** Tag name for a version, e.g. `v{{version}}`-style `v*`; default `v*`. */
  readonly tagPattern: string;
}

export interface ServiceStep extends StepBase {
  readonly type: 'service';
  readonly action: 'stop' | 'start' | 'restart' | 'status';
  readonly name: string;
  /** Used where systemd does not run (test machines, containers): argv per action. */
  readonly commands?: Readonly<Partial<Record<'stop' | 'start' | 'restart' | 'status', readonly string[]>>>;
}

export interface MaintenanceStep extends StepBase {
  readonly type: 'maintenance';
  readonly action: 'on' | 'off';
  /** Exactly one way to switch maintenance mode. */
  readonly argv?: readonly string[];
  readonly flagFile?: string;
  readonly url?: string;
}

export interface BackupStep extends StepBase {
  readonly type: 'backup';
  /** Files and directories archived with a checksum manifest. */
  readonly paths: readonly string[];
  /** A database dump command whose stdout is saved. */
  readonly dumpArgv?: readonly string[];
  /** Where backups are kept on the host. */
  readonly dest: string;
}

export interface RestoreStep extends StepBase {
  readonly type: 'restore';
  /** The id of the backup step whose backup (recorded in its result) is restored. */
  readonly fromStep: string;
}

export interface ArtifactStep extends StepBase {
  readonly type: 'artifact';
  readonly url: string;
  /** File name inside the staging directory: a strict name, no `/`, `..` or NUL. */
  readonly name: string;
  readonly maxBytes: number;
  readonly sha256Url?: string;
  /** Detached Ed25519 signature over the artifact, checked against the agent's pinned release key. */
  readonly signatureUrl: string;
}

export interface BinaryReplaceStep extends StepBase {
  readonly type: 'binary.replace';
  /** The id of the artifact step that staged the new binary. */
  readonly fromStep: string;
  readonly target: string;
  /** e.g. `cap_net_bind_service=+ep`, applied before the rename. */
  readonly setcap?: string;
}

/** Puts back the binary a `binary.replace` step swapped out (its `target.previous`). */
export interface BinaryRestoreStep extends StepBase {
  readonly type: 'binary.restore';
  /** The id of the binary.replace step to undo. */
  readonly fromStep: string;
  /** The same target as that step's. */
  readonly target: string;
}

/**
 * Makes the running agent the target version: done when it already is, otherwise the agent
 * exits for its supervisor (systemd or `convoy-agent supervise`) to start the new bundle, and
 * the interrupted step runs again in the new process, where it is done.
 */
export interface AgentRestartStep extends StepBase {
  readonly type: 'agent.restart';
}

export interface HttpStep extends StepBase {
  readonly type: 'http';
  /** `check` (status and optional JSON field, with retries and backoff) or `request`. */
  readonly action: 'check' | 'request';
  readonly url: string;
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly expectStatus: readonly number[];
  /** Dotted path into a JSON body and the value it must equal. */
  readonly jsonField?: { readonly path: string; readonly equals: string | number | boolean };
  readonly body?: string;
  /** Secret names for HTTP basic credentials. */
  readonly basicAuth?: { readonly user: string; readonly passwordSecret: string };
  /** Pause between check attempts, milliseconds. Default 1000. */
  readonly backoffMs: number;
}

export type Step =
  | ExecStep
  | AptStep
  | DnfStep
  | GitStep
  | ServiceStep
  | MaintenanceStep
  | BackupStep
  | RestoreStep
  | ArtifactStep
  | BinaryReplaceStep
  | BinaryRestoreStep
  | AgentRestartStep
  | HttpStep;

export type StepType = Step['type'];

/** How the installed version and the available versions are read on a host. */
export interface VersionProbe {
  readonly argv: readonly string[];
  /** A regular expression whose first group is a version; for `available`, every match counts. */
  readonly pattern: string;
}

export interface RecipePolicy {
  /** Default true. */
  readonly majorNeedsApproval: boolean;
  /** Default false. */
  readonly allowDowngrade: boolean;
  readonly allowedRange?: string;
  readonly pinnedVersion?: string;
}

/** Shown whenever a plan crosses from a version in `from` to one in `to`. */
export interface Caution {
  readonly from: string;
  readonly to: string;
  readonly message: string;
}

export interface Recipe {
  readonly name: string;
  readonly description: string;
  readonly versions: { readonly installed: VersionProbe; readonly available?: VersionProbe };
  readonly policy: RecipePolicy;
  readonly cautions: readonly Caution[];
  /** Secret names the steps use; values live only in the agent's root-only secrets file. */
  readonly secrets: readonly string[];
  /** Defaults for `{{var.NAME}}`, overridable per host or with `--var`. */
  readonly vars: Readonly<Record<string, string>>;
  readonly phases: {
    readonly check: readonly Step[];
    readonly download: readonly Step[];
    readonly upgrade: readonly Step[];
    /** Runs once per deployment, on the host with this role. */
    readonly finalize?: { readonly role: string; readonly steps: readonly Step[] };
    readonly verify: readonly Step[];
    readonly rollback: readonly Step[];
  };
}
