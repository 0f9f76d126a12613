/**
 * The one catalogue of Convoy error codes. Codes are stable and never reused; each is documented
 * in docs/errors.md (a unit test keeps the two in step). `retryable` says whether the same request
 * may succeed later without an operator changing anything.
 */
export const ERROR_CATALOGUE = {
  // Envelopes, in the order verification checks them.
  /** Signature is not 64 bytes, or the payload is empty or larger than the limit. */
  ENVELOPE_BAD_SIZE: { retryable: false, summary: 'envelope signature or payload has a bad size' },
  /** The key id names no key the verifier trusts. */
  ENVELOPE_UNKNOWN_KEY: { retryable: false, summary: 'envelope signed by an unknown key' },
  /** The signature's S component is not below the group order L (a malleated signature). */
  ENVELOPE_NON_CANONICAL: { retryable: false, summary: 'envelope signature is not canonical' },
  /** The signature does not verify over the domain prefix and payload bytes. */
  ENVELOPE_BAD_SIGNATURE: { retryable: false, summary: 'envelope signature does not verify' },
  /** The signed payload is not the JSON object the protocol defines. */
  ENVELOPE_MALFORMED: { retryable: false, summary: 'envelope payload is malformed' },
  /** The payload is addressed to another agent (or, for results, another controller). */
  ENVELOPE_WRONG_AUDIENCE: { retryable: false, summary: 'envelope addressed to someone else' },
  /** expiresAt is in the past. */
  ENVELOPE_EXPIRED: { retryable: false, summary: 'envelope has expired' },
  /** issuedAt lies further in the future than the skew allowance: one of the clocks is wrong. */
  CLOCK_SKEW: { retryable: true, summary: 'envelope issued in the future beyond the clock skew allowance' },
  /** seq is not above the last accepted sequence number. */
  ENVELOPE_REPLAY: { retryable: false, summary: 'envelope sequence number was already used' },
  /** Same seq as the last accepted envelope but a different payload. */
  ENVELOPE_SEQ_CONFLICT: {
    retryable: false,
    summary: 'envelope reuses a sequence number with other content',
  },

  // Enrollment and identity.
  TOKEN_UNKNOWN: { retryable: false, summary: 'enrollment token is unknown' },
  TOKEN_EXPIRED: { retryable: false, summary: 'enrollment token has expired' },
  TOKEN_USED_UP: { retryable: false, summary: 'enrollment token has no uses left' },
  ENROLL_RATE_LIMITED: { retryable: true, summary: 'too many enrollment attempts; retry later' },
  CONTROLLER_KEY_MISMATCH: { retryable: false, summary: 'controller key differs from the pinned key' },
  HOST_UNKNOWN: { retryable: false, summary: 'no such host' },
  HOST_PENDING: { retryable: true, summary: 'host awaits approval' },
  HOST_REVOKED: { retryable: false, summary: 'host has been revoked' },
  CHALLENGE_FAILED: { retryable: false, summary: 'agent could not prove it holds its enrolled key' },
  PROTOCOL_VIOLATION: { retryable: false, summary: 'peer sent a message out of order' },

  // Operator API and CLI.
  UNAUTHENTICATED: { retryable: false, summary: 'operator call without valid credentials' },
  INVALID_ARGUMENT: { retryable: false, summary: 'a request argument is invalid' },
  CONTROLLER_UNREACHABLE: { retryable: true, summary: 'the controller does not answer' },
  HOST_OFFLINE: { retryable: true, summary: 'host has no live connection' },
  COMMAND_TIMEOUT: { retryable: true, summary: 'no answer from the agent in time' },
  COMMAND_REFUSED: { retryable: false, summary: 'agent refused the command' },

  // Configuration and local state.
  CONFIG_INVALID: { retryable: false, summary: 'configuration file is invalid' },
  /** A recipe failed to compile (every problem listed with its path), or a placeholder has no value. */
  RECIPE_INVALID: { retryable: false, summary: 'recipe is invalid' },
  STATE_DIR_INVALID: { retryable: false, summary: 'state directory is unusable' },
  STORE_CORRUPT: { retryable: false, summary: 'the SQLite store failed its integrity check' },
  STORE_TOO_NEW: { retryable: false, summary: 'the store was written by a newer Convoy' },
  ALREADY_ENROLLED: { retryable: false, summary: 'the state directory already holds an enrollment' },
  /** Another agent supervisor already runs with this state directory. */
  ALREADY_RUNNING: { retryable: false, summary: 'an agent supervisor already runs here' },
  /** The installed agent (its supervisor or systemd unit) did not start. */
  AGENT_START_FAILED: { retryable: true, summary: 'the installed agent did not start' },
  /** The host's Node.js is older than the agent needs. */
  NODE_TOO_OLD: { retryable: false, summary: 'the host runs a Node.js older than the agent needs' },
  /** A step asked the agent to restart itself, but nothing would start it again. */
  AGENT_NOT_SUPERVISED: { retryable: false, summary: 'the agent runs without a supervisor to restart it' },

  // SSH bootstrap (`convoy hosts enroll --ssh`, `decommission --ssh`).
  /** The SSH server's host key is not pinned: nothing was sent, not even credentials. */
  HOST_KEY_UNKNOWN: { retryable: false, summary: "the SSH server's host key is not pinned" },
  /** The SSH server presented another key than the pinned one: nothing was sent. */
  HOST_KEY_MISMATCH: { retryable: false, summary: "the SSH server's host key does not match the pinned one" },
  /** SSH authentication was refused for every key offered. */
  SSH_AUTH_FAILED: { retryable: false, summary: 'SSH authentication failed' },
  /** The SSH server could not be reached or the session broke. */
  SSH_UNREACHABLE: { retryable: true, summary: 'the SSH server could not be reached' },
  /** A command run over SSH failed; its message names the command and its output. */
  REMOTE_COMMAND_FAILED: { retryable: false, summary: 'a command run over SSH failed' },

  // Step execution on the agent (agent/steps/).
  /** A step's program exited with a code it does not accept, or a step could not do its work. */
  /** A phase command arrived while another phase runs on the host: one phase at a time. */
  PHASE_BUSY: { retryable: true, summary: 'another phase is running on this host' },
  STEP_FAILED: { retryable: false, summary: 'a step failed' },
  /** A step ran out of its time bound and was killed. */
  STEP_TIMEOUT: { retryable: true, summary: 'a step did not finish in time' },
  /** A step names a secret the host's secrets file does not define. */
  SECRET_UNKNOWN: { retryable: false, summary: 'a step names a secret this host does not have' },
  /** A health check did not see the expected answer before its time bound. */
  HEALTH_CHECK_FAILED: { retryable: true, summary: 'the health check did not pass in time' },
  /** An artifact (or its checksum or signature) could not be fetched: network error or HTTP status. */
  ARTIFACT_UNAVAILABLE: { retryable: true, summary: 'an artifact could not be downloaded' },
  /** An artifact is larger than the step's byte cap; the download stopped at the cap. */
  ARTIFACT_TOO_LARGE: { retryable: false, summary: 'an artifact exceeds its byte cap' },
  /** An artifact's name, checksum or signature is wrong: nothing was staged. */
  ARTIFACT_REJECTED: { retryable: false, summary: 'an artifact failed verification' },
  /** The new version is older than the installed one and no signed permit names it. */
  DOWNGRADE_REFUSED: { retryable: false, summary: 'a downgrade without a signed permit was refused' },
  /** A backup's manifest, archive or dump does not match its checksums: nothing was restored. */
  BACKUP_CORRUPT: { retryable: false, summary: 'a backup failed its checksums' },
  /** A staged-only upgrade needs packages that are not in the package cache: nothing was installed. */
  STAGED_CACHE_INCOMPLETE: {
    retryable: false,
    summary: 'the upgrade needs packages that were not downloaded ahead',
  },
  /** A download does not fit in the free space where it is staged, or filled the disk: nothing was staged. */
  DISK_FULL: { retryable: false, summary: 'not enough disk space to stage a download' },
  /** A git working tree has uncommitted or untracked changes, so a checkout was refused. */
  DIRTY_TREE: { retryable: false, summary: 'the working tree has local changes' },

  // Reboots (agent/steps/reboot.ts, controller/rollout/reboot-wait.ts).
  /** A reboot step ran its command, but the boot id had not changed when its bound ran out. */
  REBOOT_DID_NOT_HAPPEN: { retryable: false, summary: 'the reboot command ran but the host did not reboot' },
  /** A host that started a reboot step did not come back within the step's bound. */
  REBOOT_TIMEOUT: { retryable: false, summary: 'a rebooting host did not come back within the bound' },
  /** A reboot step without `command` on a host where systemd is not PID 1. */
  REBOOT_COMMAND_MISSING: {
    retryable: false,
    summary: 'the reboot step has no command and systemd does not run here',
  },

  // Package versions and the way back (apt and dnf steps: pin, restorePrevious).
  /** A pinned package's application version is not offered by the repository: refused at plan time. */
  TARGET_NOT_OFFERED: { retryable: false, summary: 'the repository does not offer the pinned version' },
  /** The package cache does not hold exactly the pinned versions: refused before dpkg or rpm ran. */
  STAGED_VERSION_MISMATCH: {
    retryable: false,
    summary: 'the staged packages are not the pinned versions',
  },
  /** Read back from the package database or the binary, a version is not the one the step or the plan had to reach. */
  VERSION_MISMATCH: { retryable: false, summary: 'the version read back is not the expected one' },
  /** The installed version of a package cannot be kept (or was lost), so there is no way back to it. */
  PREVIOUS_UNAVAILABLE: { retryable: false, summary: 'the previous version of a package is not available' },

  // Application recipes: exec as a user, service commands, the point of no return (issue 13, apps).
  /** An exec step names a user (`user:`) this host does not know: nothing ran. */
  EXEC_USER_UNKNOWN: { retryable: false, summary: 'an exec step names a user this host does not have' },
  /** Systemd does not run on the host and a service step gives no command for its action. */
  SERVICE_COMMAND_MISSING: {
    retryable: false,
    summary: 'no systemd and no command for a service step: the recipe must say how',
  },
  /** A rollback was refused: the upgrade passed a step the recipe declares as its point of no return. */
  PAST_POINT_OF_NO_RETURN: {
    retryable: false,
    summary: 'the host is past the point of no return: recover by hand from the backup',
  },

  // Deployments and rollouts (controller/rollout/).
  /** No deployment of that name was applied (`convoy apply fleet.yaml`). */
  DEPLOYMENT_UNKNOWN: { retryable: false, summary: 'no such deployment' },
  /** No rollout has that id. */
  ROLLOUT_UNKNOWN: { retryable: false, summary: 'no such rollout' },
  /** The deployment already has an unfinished rollout: one at a time. */
  ROLLOUT_EXISTS: { retryable: true, summary: 'the deployment already has an unfinished rollout' },
  /** The action does not apply to the rollout's current state (resume of a finished rollout...). */
  ROLLOUT_STATE: { retryable: false, summary: 'the rollout is not in a state that allows this' },
  /** The jump is one the policy lets through only with --approve (a major upgrade). */
  APPROVAL_REQUIRED: { retryable: false, summary: 'the upgrade needs --approve' },
  /** The policy refuses the target: a downgrade, a pinned version, a range. */
  POLICY_REFUSED: { retryable: false, summary: 'the upgrade policy refuses this target' },
  /** The target version is not offered to every host (their check lists what they can get). */
  TARGET_UNAVAILABLE: { retryable: false, summary: 'the target version is not available on every host' },

  // Rails around a rollout (issue 13: read-back, phase run policy, loop guard, cautions).
  // VERSION_MISMATCH (above, with the package codes) also fails a host whose version read back
  // after verify is not the planned one (installed X, planned Y).
  /** A host phase was interrupted or re-sent more times than the loop guard allows. */
  PHASE_LOOP: { retryable: false, summary: 'a phase kept being interrupted; the loop guard stopped it' },
  /** A mutating `phase run` on a host that a running rollout holds; --override --reason goes around it. */
  ROLLOUT_LOCKED: { retryable: true, summary: 'a running rollout holds this host' },
  /** `--override` without `--reason` (or the reverse): going around the policy needs a written reason. */
  OVERRIDE_REASON_REQUIRED: { retryable: false, summary: 'an override needs a reason' },
  /** A rollout start whose cautions the operator did not acknowledge (--acknowledge-cautions). */
  CAUTION_UNACKNOWLEDGED: { retryable: false, summary: 'the rollout has cautions to acknowledge' },
} as const satisfies Record<string, { retryable: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Context carried with an error; ids only, never secrets. */
export interface ErrorContext {
  readonly hostId?: string;
  readonly file?: string;
  readonly field?: string;
  readonly seq?: number;
  readonly phase?: string;
  readonly step?: string;
}

/** An operational failure from the catalogue: logged, reported and maybe retried. */
export class ConvoyError extends Error {
  override readonly name = 'ConvoyError';
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly context: ErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.retryable = ERROR_CATALOGUE[code].retryable;
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CATALOGUE, value);
}

/** A message safe to show on one line: the error's own message, or a generic one for non-errors. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
