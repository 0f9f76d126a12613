/**
 * Structured JSON logging: one object per line with `ts`, `level`, `msg` and the bound context
 * (`component`, `hostId`, ...). Ids travel as fields, never baked into the message (style.md §20).
 *
 * Pure by construction: the caller supplies the sink and the clock, so shared/ does no I/O.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Receives one complete JSON line, newline included. */
  readonly sink: (line: string) => void;
  /** Lines below this level are dropped. Default 'info'. */
  readonly level?: LogLevel;
  /** The clock stamping each line (ms since the epoch); the caller's, as shared/ reads none. */
  readonly now: () => number;
  /** Exact strings to mask wherever they appear (secret values resolved at run time). */
  readonly secrets?: readonly string[];
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values never reach a log, whatever they hold. */
const SECRET_FIELD = /token|secret|password|passphrase|private|authorization|credential/i;
export const REDACTED = '[redacted]';

export function isLogLevel(value: string): value is LogLevel {
  return Object.prototype.hasOwnProperty.call(LEVEL_RANK, value);
}

export function createLogger(options: LoggerOptions, bound: LogFields = {}): Logger {
  const threshold = LEVEL_RANK[options.level ?? 'info'];
  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVEL_RANK[level] < threshold) return;
    const ts = new Date(options.now()).toISOString();
    // ts, level and msg come first and always win: a field cannot forge them.
    const record = Object.assign({ ts, level, msg }, bound, fields, { ts, level, msg });
    const line = JSON.stringify(redactValue(record, options.secrets ?? [], 0));
    options.sink(line + '\n');
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

/** A logger that drops everything, for library callers that pass none. */
export const silentLogger: Logger = createLogger({ sink: () => undefined, level: 'error', now: () => 0 }, {});

function redactValue(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (typeof value === 'string') return maskSecrets(value, secrets);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: maskSecrets(value.message, secrets) };
  if (typeof value !== 'object' || value === null) return value;
  // Deep or circular structures are cut rather than logged unredacted.
  if (depth > 6) return '[truncated]';
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function')
    return redactValue((value as { toJSON(): unknown }).toJSON(), secrets, depth + 1);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secrets, depth + 1));
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, inner] of Object.entries(value)) {
    // Ids (tokenId, keyId) name a secret without being one.
    const secret = SECRET_FIELD.test(key) && !/Id$/.test(key);
    out[key] = secret ? REDACTED : redactValue(inner, secrets, depth + 1);
  }
  return out;
}

function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join(REDACTED);
  }
  return out;
}
