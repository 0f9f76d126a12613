/**
 * The gRPC edge for errors: domain code throws ConvoyError; handlers answer with a status whose
 * details start with the catalogue code, and whose metadata carries it, so the CLI can print a
 * one-line reason and scripts can branch on the code.
 */
import * as grpc from '@grpc/grpc-js';
import { ConvoyError, type ErrorCode } from '../shared/errors';
import type { Logger } from '../shared/logger';

const STATUS_BY_CODE: Partial<Record<ErrorCode, grpc.status>> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  HOST_UNKNOWN: grpc.status.NOT_FOUND,
  TOKEN_UNKNOWN: grpc.status.PERMISSION_DENIED,
  TOKEN_EXPIRED: grpc.status.PERMISSION_DENIED,
  TOKEN_USED_UP: grpc.status.PERMISSION_DENIED,
  ALREADY_ENROLLED: grpc.status.ALREADY_EXISTS,
  ENROLL_RATE_LIMITED: grpc.status.RESOURCE_EXHAUSTED,
  HOST_REVOKED: grpc.status.FAILED_PRECONDITION,
  HOST_PENDING: grpc.status.FAILED_PRECONDITION,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
};

export function toServiceError(err: unknown, log: Logger): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  if (err instanceof ConvoyError) {
    metadata.set('convoy-error-code', err.code);
    return {
      code: STATUS_BY_CODE[err.code] ?? grpc.status.FAILED_PRECONDITION,
      details: `${err.code}: ${err.message}`,
      metadata,
    };
  }
  // Anything else is a bug: log it whole, tell the caller little.
  log.error('internal error in a handler', { err });
  return { code: grpc.status.INTERNAL, details: 'internal error; see the controller log' };
}

/** Wraps an async unary handler so that throws become statuses. */
export function unary<Req, Res>(
  log: Logger,
  fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request, call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err, log)),
    );
  };
}
