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
  STATE_DIR_INVALID: { retryable: false, summary: 'state directory is unusable' },
  STORE_CORRUPT: { retryable: false, summary: 'the SQLite store failed its integrity check' },
  STORE_TOO_NEW: { retryable: false, summary: 'the store was written by a newer Convoy' },
  ALREADY_ENROLLED: { retryable: false, summary: 'the state directory already holds an enrollment' },
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
