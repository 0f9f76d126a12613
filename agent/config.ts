/**
 * The agent's configuration file (`agent.yaml`): parsed, checked field by field with every problem
 * reported at once (`agent.yaml: controllerKey: must be ...`), then compiled to frozen options.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as YamlModule from 'yaml';
import { ConvoyError } from '../shared/errors';
import { parsePublicKey } from '../shared/keys';
import { isLogLevel, type LogLevel } from '../shared/logger';
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

const KNOWN_FIELDS = new Set([
  'controller',
  'controllerKey',
  'hostId',
  'stateDir',
  'hostname',
  'logLevel',
  'reconnectInitialMs',
  'reconnectMaxMs',
  'clockSkewMs',
  'secretsFile',
  'releaseKeys',
]);

/** Reads and compiles a config file; throws CONFIG_INVALID listing every problem. */
export function loadAgentConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConvoyError(
      'CONFIG_INVALID',
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { file },
    );
  }
  return compileAgentConfig(text, file);
}

export function compileAgentConfig(text: string, file: string): AgentConfig {
  const raw = parseConfigText(text, file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConvoyError('CONFIG_INVALID', `${file}: must be a mapping of fields`, { file });
  }
  const fields = raw as Record<string, unknown>;
  const problems: { field: string; message: string }[] = [];
  const problem = (field: string, message: string): void => void problems.push({ field, message });
  for (const key of Object.keys(fields)) if (!KNOWN_FIELDS.has(key)) problem(key, 'unknown field');

  const str = (field: string, required: boolean): string | undefined => {
    const v = fields[field];
    if (v === undefined || v === null) {
      if (required) problem(field, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || v.trim() === '') return void problem(field, 'must be a non-empty string');
    return v;
  };
  const num = (field: string, fallback: number, min: number, max: number): number => {
    const v = fields[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problem(field, `must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return v;
  };

  const controller = str('controller', true);
  if (controller !== undefined && !isAddress(controller))
    problem('controller', 'must be host:port or unix:/path');
  const keyText = str('controllerKey', true);
  const controllerKey = keyText === undefined ? null : parsePublicKey(keyText);
  if (keyText !== undefined && controllerKey === null)
    problem('controllerKey', 'must be an Ed25519 public key (ed25519:<base64>)');
  const hostId = str('hostId', true);
  if (hostId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(hostId))
    problem('hostId', 'must be 1-64 letters, digits, - or _');
  const stateDir = str('stateDir', false);
  const hostname = str('hostname', false);
  const logLevel = str('logLevel', false) ?? 'info';
  if (!isLogLevel(logLevel)) problem('logLevel', 'must be debug, info, warn or error');
  const reconnectInitialMs = num('reconnectInitialMs', 500, 10, 600_000);
  const reconnectMaxMs = num('reconnectMaxMs', 30_000, 10, 3_600_000);
  const clockSkewMs = num('clockSkewMs', 60_000, 0, 3_600_000);
  const secretsFile = str('secretsFile', false);
  const releaseKeys = keyList(fields['releaseKeys'], (message) => problem('releaseKeys', message));

  if (
    problems.length > 0 ||
    controller === undefined ||
    controllerKey === null ||
    hostId === undefined ||
    !isLogLevel(logLevel)
  ) {
    const list = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
    throw new ConvoyError('CONFIG_INVALID', `${file}: ${list}`, { file, field: problems[0]?.field ?? '' });
  }
  return Object.freeze({
    file,
    controller,
    controllerKey,
    hostId,
    stateDir: path.resolve(path.dirname(file), stateDir ?? '.'),
    hostname,
    logLevel,
    reconnectInitialMs,
    reconnectMaxMs: Math.max(reconnectMaxMs, reconnectInitialMs),
    clockSkewMs,
    secretsFile: secretsFile === undefined ? undefined : path.resolve(path.dirname(file), secretsFile),
    releaseKeys,
  });
}

function keyList(value: unknown, problem: (message: string) => void): Uint8Array[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problem('must be a list of Ed25519 public keys');
    return [];
  }
  const keys: Uint8Array[] = [];
  value.forEach((item: unknown, i) => {
    const key = typeof item === 'string' ? parsePublicKey(item) : null;
    if (key === null) problem(`[${i}] must be an Ed25519 public key (ed25519:<base64>)`);
    else keys.push(key);
  });
  return keys;
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
  if (tooDeep !== null) throw new ConvoyError('CONFIG_INVALID', `${file}: ${tooDeep}`, { file });
  const doc = Y.parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw new ConvoyError(
      'CONFIG_INVALID',
      `${file}: not valid YAML: ${first?.message.split('\n')[0] ?? ''}`,
      { file },
    );
  }
  try {
    // Aliases are refused outright: a config file has no use for them (billion laughs).
    return doc.toJS({ maxAliasCount: 0 }) as unknown;
  } catch (err) {
    throw new ConvoyError('CONFIG_INVALID', `${file}: ${(err as Error).message}`, { file });
  }
}

/** `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export function isAddress(text: string): boolean {
  if (text.startsWith('unix:')) return text.length > 6 && text.charAt(5) === '/';
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  return m !== null && Number(m[2]) > 0 && Number(m[2]) < 65536;
}
