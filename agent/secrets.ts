/**
 * Secrets by name, resolved only on the agent from a root-only file (mode 0600, owned by the
 * agent's user). Recipes, the store, logs and command lines only ever carry the names.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConvoyError } from '../shared/errors';
import type { SecretResolver } from './steps/step';

/** Reads `{"name": "value", ...}` (JSON, which is also YAML) and checks who may read it. */
export function loadSecretsFile(file: string): SecretResolver {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    throw new ConvoyError('CONFIG_INVALID', `${file}: cannot read the secrets file`, { file });
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new ConvoyError(
      'CONFIG_INVALID',
      `${file}: secrets file must not be readable by others (chmod 600)`,
      { file },
    );
  }
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
    throw new ConvoyError('CONFIG_INVALID', `${file}: secrets file must belong to the agent's user`, {
      file,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    // Never echo the parser's message: it may quote the file's content.
    throw new ConvoyError('CONFIG_INVALID', `${file}: secrets file must be a JSON object of strings`, {
      file,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConvoyError('CONFIG_INVALID', `${file}: secrets file must be a JSON object of strings`, {
      file,
    });
  }
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') {
      throw new ConvoyError('CONFIG_INVALID', `${file}: secret ${JSON.stringify(name)} must be a string`, {
        file,
        field: name,
      });
    }
    map.set(name, value);
  }
  return secretsFromMap(map);
}

export function secretsFromMap(map: ReadonlyMap<string, string>): SecretResolver {
  return {
    get(name: string): string {
      const value = map.get(name);
      if (value === undefined)
        throw new ConvoyError(
          'CONFIG_INVALID',
          `secret ${JSON.stringify(name)} is not defined on this host`,
          { field: name },
        );
      return value;
    },
    values: () => [...map.values()].filter((v) => v.length > 0),
  };
}
