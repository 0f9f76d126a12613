/**
 * The three YAML loaders under one contract for the fuzz tests: each input gives a frozen result
 * or a ConvoyError with the loader's code whose message starts with the file name; nothing else.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compileAgentConfig } from '../../../agent/config';
import { ConvoyError, type ErrorCode } from '../../../shared/errors';
import { loadFleetText } from '../../../shared/fleet/load';
import { compileRecipe, RecipeError } from '../../../shared/recipe/compile';
import type { Problem } from '../../../shared/schema';

export const ROOT = path.resolve(__dirname, '../../..');

export interface Loader {
  readonly name: string;
  readonly file: string;
  readonly code: ErrorCode;
  readonly load: (text: string) => unknown;
  /** Real, valid files of this kind: the seeds that mutations start from. */
  readonly samples: readonly string[];
}

const KEY = 'ed25519:' + Buffer.alloc(32, 1).toString('base64');

/** The first fleet example of docs/fleet.md, so that the fuzz starts from what operators copy. */
function docFleet(): string {
  const doc = readFileSync(path.join(ROOT, 'docs/fleet.md'), 'utf8');
  const m = /```yaml\n(windows:[\s\S]*?)```/.exec(doc);
  if (m?.[1] === undefined) throw new Error('docs/fleet.md has no fleet example');
  // The second deployment points at a recipe file the docs do not ship.
  return m[1].replace('./recipes/wiki.yaml', 'cells');
}

export const LOADERS: readonly Loader[] = [
  {
    name: 'recipe',
    file: 'recipe.yaml',
    code: 'RECIPE_INVALID',
    load: (text) => compileRecipe(text, 'recipe.yaml'),
    samples: readdirSync(path.join(ROOT, 'recipes'))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => readFileSync(path.join(ROOT, 'recipes', f), 'utf8')),
  },
  {
    name: 'fleet',
    file: '/srv/convoy/fleet.yaml',
    code: 'INVALID_ARGUMENT',
    load: (text) => loadFleetText(text, '/srv/convoy/fleet.yaml'),
    samples: [docFleet()],
  },
  {
    name: 'agent config',
    file: '/etc/convoy/agent.yaml',
    code: 'CONFIG_INVALID',
    load: (text) => compileAgentConfig(text, '/etc/convoy/agent.yaml'),
    samples: [
      `controller: 127.0.0.1:4860\ncontrollerKey: ${KEY}\nhostId: h-0123456789abcdef\nlogLevel: warn\n` +
        `reconnectInitialMs: 500\nreleaseKeys:\n  - ${KEY}\n`,
      JSON.stringify({ controller: 'unix:/run/convoy.sock', controllerKey: KEY, hostId: 'h-1' }, null, 2),
    ],
  },
];

export type Outcome = { ok: true; value: unknown } | { ok: false; error: ConvoyError };

/**
 * Loads and checks the contract. Any other throw (TypeError, RangeError, a YAML library error)
 * fails the test with that error, which is what the fuzz hunts for.
 */
export function loadChecked(loader: Loader, text: string): Outcome {
  let value: unknown;
  try {
    value = loader.load(text);
  } catch (err) {
    if (!(err instanceof ConvoyError)) throw err;
    expect(err.code).toBe(loader.code);
    expect(err.message.startsWith(`${loader.file}: `)).toBe(true);
    expect(err.message).not.toMatch(/\n\s+at /); // no stack trace inside the message
    for (const p of problemsOf(err)) {
      expect(typeof p.path).toBe('string');
      expect(p.message.length).toBeGreaterThan(0);
    }
    return { ok: false, error: err };
  }
  expect(Object.isFrozen(value)).toBe(true);
  return { ok: true, value };
}

/** The problems a loader error lists (the agent config has only its message). */
export function problemsOf(err: ConvoyError): readonly Problem[] {
  if (err instanceof RecipeError) return err.problems;
  const problems = (err as ConvoyError & { problems?: readonly Problem[] }).problems;
  return problems ?? [];
}

/** True when Object.prototype gained anything: the one outcome pollution tests must never see. */
export function prototypePolluted(): boolean {
  const probe = {} as Record<string, unknown>;
  return (
    probe['polluted'] !== undefined ||
    Object.getOwnPropertyNames(Object.prototype).some((k) => k === 'polluted' || k === 'isAdmin')
  );
}
