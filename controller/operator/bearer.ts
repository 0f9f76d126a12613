/** The operator API over TCP: a bearer token from the state directory guards every call. */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';

export const OPERATOR_TOKEN_FILE = 'operator.token';

export async function loadOrCreateOperatorToken(stateDir: string): Promise<string> {
  const file = path.join(stateDir, OPERATOR_TOKEN_FILE);
  try {
    const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const token = randomBytes(32).toString('base64url');
    try {
      await handle.writeFile(token + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await fs.readFile(file, 'utf8')).trim();
  }
}

/** Wraps every handler of a service so that a call without the right bearer token is refused. */
export function requireBearer(
  handlers: grpc.UntypedServiceImplementation,
  token: string,
): grpc.UntypedServiceImplementation {
  const expected = Buffer.from(`Bearer ${token}`);
  const allowed = (metadata: grpc.Metadata): boolean => {
    const given = metadata.get('authorization')[0];
    const bytes = Buffer.from(typeof given === 'string' ? given : '');
    return bytes.length === expected.length && timingSafeEqual(bytes, expected);
  };
  const denied = {
    code: grpc.status.UNAUTHENTICATED,
    details: 'UNAUTHENTICATED: missing or wrong operator token',
  };
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    // Handler shapes differ by call type; each receives (call, callback?) and we only gate entry.
    const inner = handler as (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      cb?: grpc.sendUnaryData<unknown>,
    ) => void;
    out[name] = ((call: grpc.ServerUnaryCall<unknown, unknown>, cb?: grpc.sendUnaryData<unknown>) => {
      if (allowed(call.metadata)) return inner(call, cb);
      if (cb !== undefined) return cb(denied);
      call.emit('error', denied);
    }) as grpc.UntypedHandleCall;
  }
  return out;
}
