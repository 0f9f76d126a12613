/**
 * The agent's configuration file (`agent.yaml`): parsed, checked field by field with the schema kit
 * (shared/schema.ts), every problem reported at once (`agent.yaml: controllerKey: must be ...`),
 * then compiled to frozen options.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as YamlModule from 'yaml';
import { ConvoyError } from '../shared/errors';
import { parsePublicKey } from '../shared/keys';
import { isLogLevel, type LogLevel } from '../shared/logger';
import {
  arrayOf,
  formatProblem,
  int,
  isMapping,
  object,
  refine,
  spec,
  validate,
  withDefault,
  type Problem,
  type Spec,
} from '../shared/schema';
import { yamlNestingProblem } from '../shared/recipe/yaml-source';

export const CONFIG_FILE = 'agent.yaml';
export const KEY_FILE = 'agent.key';

/** What the file may say. */
export interface AgentConfigFile {
  /** Controller agent address: `host:port` or `unix:/path`. */
  controller: string;
  /** The controller's public key pinned at enrollment, `ed25519:<base64>`. */
  controllerKey: string;
  /** Host id received at enrollment. */
  hostId: string;
  /** Directory holding the key and the sequence journal. Default: the config file's directory. */
  stateDir?: string;
  /** Host name to report instead of os.hostname(). */
  hostname?: string;
  /** Default 'info'. */
  logLevel?: string;
  /** First reconnect delay ceiling, ms. Default 500. */
  reconnectInitialMs?: number;
  /** Largest reconnect delay ceiling, ms. Default 30000. */
  reconnectMaxMs?: number;
  /** Allowed clock difference with the controller, ms. Default 60000. */
  clockSkewMs?: number;
  /** Root-only JSON file of secret values by name, for recipe steps. Optional. */
  secretsFile?: string;
  /** Ed25519 public keys (`ed25519:<base64>`) allowed to sign release artifacts. Default none. */
  releaseKeys?: string[];
}

export interface AgentConfig {
  readonly file: string;
  readonly controller: string;
  readonly controllerKey: Uint8Array;
  readonly hostId: string;
  readonly stateDir: string;
  readonly hostname: string | undefined;
  readonly logLevel: LogLevel;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  readonly clockSkewMs: number;
  readonly secretsFile: string | undefined;
  readonly releaseKeys: readonly Uint8Array[];
}

/** A config file that did not load: the message lists every problem; `problems` has them one by one. */
export class AgentConfigError extends ConvoyError {
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
  ) {
    super('CONFIG_INVALID', `${file}: ${problems.map(formatProblem).join('; ')}`, {
      file,
      field: problems[0]?.path ?? '',
    });
  }
}

/** One problem with the whole file (unreadable, not YAML). */
const whole = (file: string, message: string): AgentConfigError =>
  new AgentConfigError(file, [{ path: '', message }]);

/** A public key, `ed25519:<base64>`, as its 32 bytes. */
const publicKey = (): Spec<Uint8Array> =>
  spec((v) => {
    if (typeof v !== 'string' || v.trim() === '') return 'must be a non-empty string';
    const key = parsePublicKey(v);
    return key === null ? 'must be an Ed25519 public key (ed25519:<base64>)' : { ok: key };
  });

const nonBlank = (): Spec<string> =>
  spec((v) => (typeof v === 'string' && v.trim() !== '' ? { ok: v } : 'must be a non-empty string'));

const millis = (min: number, max: number, fallback: number): Spec<number> =>
  withDefault(int({ min, max }), fallback);

// Every field of AgentConfigFile, checked; the defaults are the ones documented there.
const FIELDS = {
  controller: refine(nonBlank(), (v) => (isAddress(v) ? null : 'must be host:port or unix:/path')),
  controllerKey: publicKey(),
  hostId: refine(nonBlank(), (v) =>
    /^[A-Za-z0-9_-]{1,64}$/.test(v) ? null : 'must be 1-64 letters, digits, - or _',
  ),
  stateDir: nonBlank(),
  hostname: nonBlank(),
  logLevel: withDefault(
    spec<LogLevel>((v) =>
      typeof v === 'string' && isLogLevel(v) ? { ok: v } : 'must be debug, info, warn or error',
    ),
    'info',
  ),
  reconnectInitialMs: millis(10, 600_000, 500),
  reconnectMaxMs: millis(10, 3_600_000, 30_000),
  clockSkewMs: millis(0, 3_600_000, 60_000),
  secretsFile: nonBlank(),
  releaseKeys: withDefault(arrayOf(publicKey()), []),
} satisfies Record<keyof AgentConfigFile, Spec<unknown>>;

const CONFIG = object(FIELDS, { optional: ['stateDir', 'hostname', 'secretsFile'] });

/** Reads and compiles a config file; throws CONFIG_INVALID listing every problem. */
export function loadAgentConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw whole(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return compileAgentConfig(text, file);
}

export function compileAgentConfig(text: string, file: string): AgentConfig {
  const raw = parseConfigText(text, file);
  if (!isMapping(raw)) throw whole(file, 'must be a mapping of fields');
  const { value: c, problems } = validate(CONFIG, raw);
  if (c === undefined || problems.length > 0) throw new AgentConfigError(file, problems);
  const dir = path.dirname(file);
  return Object.freeze({
    file,
    controller: c.controller,
    controllerKey: c.controllerKey,
    hostId: c.hostId,
    stateDir: path.resolve(dir, c.stateDir ?? '.'),
    hostname: c.hostname,
    logLevel: c.logLevel,
    reconnectInitialMs: c.reconnectInitialMs,
    reconnectMaxMs: Math.max(c.reconnectMaxMs, c.reconnectInitialMs),
    clockSkewMs: c.clockSkewMs,
    secretsFile: c.secretsFile === undefined ? undefined : path.resolve(dir, c.secretsFile),
    releaseKeys: Object.freeze([...c.releaseKeys]),
  });
}

/**
 * YAML is a superset of JSON, and `convoy-agent enroll` writes the JSON form: the daemon reads
 * that with JSON.parse and never loads the YAML library (about 5 MB of resident memory in a
 * process whose budget is 60 MB). A hand-written YAML file goes through the full parser.
 */
function parseConfigText(text: string, file: string): unknown {
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all (YAML flow mappings allow more): let the YAML parser explain.
    }
  }
  // Required lazily, for the reason above.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Y = require('yaml') as typeof YamlModule;
  const tooDeep = yamlNestingProblem(Y, text);
  if (tooDeep !== null) throw whole(file, tooDeep);
  const doc = Y.parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw whole(file, `not valid YAML: ${first?.message.split('\n')[0] ?? ''}`);
  }
  try {
    // Aliases are refused outright: a config file has no use for them (billion laughs).
    return doc.toJS({ maxAliasCount: 0 }) as unknown;
  } catch (err) {
    throw whole(file, (err as Error).message);
  }
}

/** `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export function isAddress(text: string): boolean {
  if (text.startsWith('unix:')) return text.length > 6 && text.charAt(5) === '/';
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  return m !== null && Number(m[2]) > 0 && Number(m[2]) < 65536;
}
