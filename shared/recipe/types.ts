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
  /**
   * Once this step (of upgrade or finalize) completed, the vendor gives no way back (a Cells
   * binary that migrated its data): the agent refuses the automatic rollback and reports the host
   * past the point of no return, with the backup id and the recipe's `manualRecovery`. Default false.
   */
  readonly pointOfNoReturn?: boolean;
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
  /**
   * Runs the program as this account (uid, gid and HOME from `getent passwd`), e.g. ownCloud's
   * occ as the owner of config.php. An unknown user fails the step (EXEC_USER_UNKNOWN) before
   * anything runs. Default: the agent's own user.
   */
  readonly user?: string;
  /**
   * The step succeeds only when stdout names this version as a whole (`1.6.3`, not `1.6.30`):
   * `{{target}}` for a verify that the program reports the planned version.
   */
  readonly expectVersion?: string;
}

/**
 * Every installed package matching `packages` (names or globs) goes to exactly the package version
 * of application version `version` (usually `{{target}}`); docs/recipes.md says how it maps.
 */
export interface PackagePin {
  readonly packages: readonly string[];
  readonly version: string;
}

export interface AptStep extends StepBase {
  readonly type: 'apt';
  /**
   * `update`; `listUpgradable` (check); `downloadOnly` (stage, and keep the installed versions);
   * `upgrade` (apply only what was staged); `restorePrevious` (reinstall what `fromStep` kept).
   */
  readonly action: 'update' | 'listUpgradable' | 'downloadOnly' | 'upgrade' | 'restorePrevious';
  /** Package names or patterns; empty means everything upgradable. */
  readonly packages: readonly string[];
  /** BlueMind uses aptitude. Default `apt-get`. */
  readonly frontend: 'apt-get' | 'aptitude';
  /** listUpgradable, downloadOnly, upgrade: the versions the pinned packages must reach. */
  readonly pin?: PackagePin;
  /** restorePrevious only, and required there: the id of the downloadOnly step that kept the files. */
  readonly fromStep?: string;
}

/**
 * Every *installed* package matching `packages` (names or globs) goes to exactly the package
 * version of application version `version` (usually `{{target}}`): RPM's VERSION field equal to
 * it (the highest release), Debian's upstream part equal to it (the highest revision).
 */
export interface PackagePin {
  readonly packages: readonly string[];
  readonly version: string;
}

export interface DnfStep extends StepBase {
  readonly type: 'dnf';
  /**
   * `makecache`; `listUpdates` ("no match" is not an error); `downloadOnly` (also keeps the
   * installed versions' RPMs); `upgrade` (from cache, `-C`); `restorePrevious` (the RPMs
   * `fromStep` kept, from local disk only); `verifyPinned` (the installed versions are the pin's).
   */
  readonly action:
    'makecache' | 'listUpdates' | 'downloadOnly' | 'upgrade' | 'restorePrevious' | 'verifyPinned';
  readonly packages: readonly string[];
  /** The vendor's documents say `yum`; dnf accepts the same syntax. Default `yum`. */
  readonly command: 'yum' | 'dnf';
  /** Exactly these versions (listUpdates, downloadOnly, upgrade; required by verifyPinned). */
  readonly pin?: PackagePin;
  /** restorePrevious: the id of the downloadOnly step whose kept RPMs are reinstalled. */
  readonly fromStep?: string;
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
  /**
   * Loads the backup's database dump: this program gets the dump on stdin (`mysql owncloud`),
   * after the files were restored. Without it a dump is verified but not loaded.
   */
  readonly loadArgv?: readonly string[];
  /** The account that runs `loadArgv` (as exec's `user`). */
  readonly user?: string;
  /**
   * `skip`: when `fromStep` never completed in this run, there is nothing to restore and the step
   * succeeds (a rollback sent before the checkpoint, which precedes every change). Default `fail`.
   */
  readonly whenMissing?: 'fail' | 'skip';
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

/**
 * Reboots the host: `always`, or `ifRequired` when the package manager says so (Debian's
 * /var/run/reboot-required, RHEL's `needs-restarting -r` exit 1). The agent journals the boot id
 * before the command runs; the step completes in the agent that starts after the boot, when it
 * sees a new boot id. `timeoutMs` (YAML `timeout`, default 15m) bounds the wait for the host to
 * come back, on the agent and on the controller alike.
 */
export interface RebootStep extends StepBase {
  readonly type: 'reboot';
  readonly reboot: 'ifRequired' | 'always';
  /** How to reboot. Default `systemctl reboot` where systemd is PID 1; elsewhere required at run time. */
  readonly command?: readonly string[];
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
  | RebootStep
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
  /**
   * What an operator does by hand when a host is past a step marked `pointOfNoReturn` (shown with
   * the backup id); required when a step is so marked.
   */
  readonly manualRecovery?: string;
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
