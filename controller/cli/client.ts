/**
 * How CLI commands reach a running controller: `--state-dir DIR` (its unix socket) or
 * `--controller ADDR` (TCP with the operator token), or CONVOY_STATE_DIR / CONVOY_CONTROLLER.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ConvoyError, isErrorCode } from '../../shared/errors';
import { loadConvoyProtos } from '../../proto/load';
import { OPERATOR_SOCKET } from '../operator-socket';
import { OPERATOR_TOKEN_FILE } from '../operator/bearer';

export interface ConnectionFlags {
  stateDir?: string;
  controller?: string;
  operatorTokenFile?: string;
}

export interface OperatorClient {
  /** Calls a unary method with a deadline; failures become ConvoyErrors with a one-line reason. */
  call<Res>(method: string, request: object, timeoutMs?: number): Promise<Res>;
  /** Calls a server-streaming method, handing each message to `onMessage`. */
  stream<Msg>(method: string, request: object, onMessage: (m: Msg) => void): Promise<void>;
  readonly target: string;
  close(): void;
}

export function resolveTarget(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): { target: string; token?: string } {
  const controller =
    flags.controller ?? (flags.stateDir === undefined ? env['CONVOY_CONTROLLER'] : undefined);
  const stateDir = flags.stateDir ?? env['CONVOY_STATE_DIR'];
  if (controller !== undefined && controller !== '') {
    return { target: controller, token: operatorToken(flags, env, stateDir) };
  }
  if (stateDir !== undefined && stateDir !== '') {
    return { target: `unix:${path.resolve(stateDir, OPERATOR_SOCKET)}` };
  }
  throw new ConvoyError(
    'INVALID_ARGUMENT',
    'say where the controller is: --state-dir DIR or --controller ADDR (or CONVOY_STATE_DIR / CONVOY_CONTROLLER)',
  );
}

/**
 * The bearer token: `--operator-token-file` when given (it must hold one), else
 * CONVOY_OPERATOR_TOKEN, else the state directory's operator.token when there is one.
 */
function operatorToken(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  stateDir: string | undefined,
): string | undefined {
  if (flags.operatorTokenFile !== undefined) return readOperatorToken(flags.operatorTokenFile);
  if (env['CONVOY_OPERATOR_TOKEN']) return env['CONVOY_OPERATOR_TOKEN'];
  const file = stateDir === undefined ? undefined : path.join(stateDir, OPERATOR_TOKEN_FILE);
  if (file === undefined || !existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim();
}

/** A token file that is named must hold a token: never a silent call without one. */
function readOperatorToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--operator-token-file ${JSON.stringify(file)}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { file },
    );
  }
  // The message never quotes the file's content: it may be the secret.
  if (token === '')
    throw new ConvoyError('INVALID_ARGUMENT', `--operator-token-file ${JSON.stringify(file)}: is empty`, {
      file,
    });
  return token;
}

export function connectOperator(flags: ConnectionFlags): OperatorClient {
  const { target, token } = resolveTarget(flags);
  if (target.startsWith('unix:') && !existsSync(target.slice(5))) {
    throw new ConvoyError(
      'CONTROLLER_UNREACHABLE',
      `no controller socket at ${target.slice(5)}: is the controller running?`,
    );
  }
  const { OperatorService } = loadConvoyProtos();
  const client = new OperatorService(target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  }) as unknown as Record<string, (...args: unknown[]) => unknown> & grpc.Client;
  const metadata = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    return md;
  };
  return {
    target,
    close: () => client.close(),
    call: <Res>(method: string, request: object, timeoutMs = 15_000) =>
      new Promise<Res>((resolve, reject) => {
        const fn = client[method];
        if (fn === undefined) return reject(new Error(`no operator method ${method}`));
        fn.call(
          client,
          request,
          metadata(),
          { deadline: Date.now() + timeoutMs },
          (err: grpc.ServiceError | null, res: Res) =>
            err ? reject(fromServiceError(err, target)) : resolve(res),
        );
      }),
    stream: <Msg>(method: string, request: object, onMessage: (m: Msg) => void) =>
      new Promise<void>((resolve, reject) => {
        const fn = client[method];
        if (fn === undefined) return reject(new Error(`no operator method ${method}`));
        const call = fn.call(client, request, metadata()) as grpc.ClientReadableStream<Msg>;
        call.on('data', onMessage);
        call.on('error', (err: grpc.ServiceError) => reject(fromServiceError(err, target)));
        call.on('end', () => resolve());
      }),
  };
}

/** Status details look like `CODE: message`; anything else is a transport failure. */
export function fromServiceError(err: grpc.ServiceError, target: string): ConvoyError {
  const m = /^([A-Z_]+): (.*)$/s.exec(err.details ?? '');
  if (m !== null && m[1] !== undefined && isErrorCode(m[1])) return new ConvoyError(m[1], m[2] ?? '');
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
    return new ConvoyError(
      'CONTROLLER_UNREACHABLE',
      `controller at ${target} does not answer (${err.details || 'unavailable'})`,
    );
  }
  if (err.code === grpc.status.UNAUTHENTICATED) return new ConvoyError('UNAUTHENTICATED', err.details);
  return new ConvoyError('CONTROLLER_UNREACHABLE', `controller at ${target}: ${err.details || err.message}`);
}
