/**
 * The recipe loader, the fleet loader and the agent config loader under random input: YAML-ish
 * token soup, random structured values, and mutations of the real files (line edits and values
 * swapped deep inside). Every input ends in a frozen result or the loader's ConvoyError naming the
 * file (loadChecked); a TypeError, RangeError or a YAML library error fails the property.
 */
import fc from 'fast-check';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { compileRecipeData, RecipeError } from '../../shared/recipe/compile';
import { LOADERS, loadChecked, prototypePolluted, type Loader } from './helpers/loaders';
import { fuzzParams, heapUsedMb } from './helpers/runs';

const hostileString = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\0',
    'a\0b',
    '$(touch /tmp/convoy-fuzz-pwn)',
    '`id`',
    '../../etc/passwd',
    '__proto__',
    'constructor',
    '-1',
    '1e309',
    '0x7fffffffffffffff',
    '99999999999999999999',
    '1h1h',
    '-5m',
    '25%%',
    'ünïcödé ☃ 𝔘',
    '\u202e\u200b',
    '*a',
    '&a',
    '!!js/undefined',
    '{{secret.x}}',
    '{{var.nope}}',
    '{{',
    '(',
    '[',
  ),
  fc.string({ maxLength: 40 }),
  fc.constant('x'.repeat(5_000)),
);

/** Pieces of YAML syntax and of our field names, strung together into mostly invalid files. */
const yamlToken = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(': ', '- ', '\n', '  ', '    ', '{', '}', '[', ']', ', ', '? ') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '&a ',
      '*a',
      '!!str ',
      '!!map ',
      '<<: ',
      "'",
      '"',
      '# c',
      '|',
      '>-',
      '---\n',
      '...\n',
      '%YAML 1.1\n',
      '\t',
      '\r\n',
    ),
  },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'name',
      'phases',
      'check',
      'upgrade',
      'steps',
      'type',
      'run',
      'argv',
      'timeout',
      'versions',
      'installed',
      'pattern',
      'vars',
      'secrets',
      'policy',
      'windows',
      'deployments',
      'hosts',
      'recipe',
      'batches',
      'cron',
      'duration',
      'controller',
      'controllerKey',
      'hostId',
      'releaseKeys',
      '__proto__',
      'constructor',
    ),
  },
  { weight: 3, arbitrary: hostileString.filter((s) => s.length < 100) },
);
const yamlSoup = fc.array(yamlToken, { maxLength: 80 }).map((parts) => parts.join(''));

/** A JSON-like value with hostile keys and strings mixed in. */
const structured = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), hostileString),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.oneof(
        fc.constantFrom('__proto__', 'constructor', 'prototype', '<<', 'name', 'phases', 'steps'),
        fc.string({ maxLength: 10 }),
      ),
      tie('value'),
      { maxKeys: 5 },
    ),
  ),
})).value;

/** Replaces the value at a randomly chosen path of `data` (choices picks each step). */
function replaceAt(data: unknown, choices: readonly number[], value: unknown, depth = 0): unknown {
  const choice = choices[depth];
  if (choice === undefined || typeof data !== 'object' || data === null) return value;
  if (Array.isArray(data)) {
    if (data.length === 0) return value;
    const copy = [...data] as unknown[];
    const i = choice % copy.length;
    copy[i] = replaceAt(copy[i], choices, value, depth + 1);
    return copy;
  }
  const keys = Object.keys(data);
  if (keys.length === 0) return value;
  const key = keys[choice % keys.length] ?? '';
  return { ...data, [key]: replaceAt((data as Record<string, unknown>)[key], choices, value, depth + 1) };
}

/** Line-level edits of a real file: delete, duplicate, swap, re-indent, or splice in a token. */
const lineEdit = fc.tuple(
  fc.constantFrom('delete', 'duplicate', 'swap', 'indent', 'dedent', 'splice'),
  fc.nat(),
  fc.nat(),
  yamlToken,
);

function applyLineEdits(text: string, edits: readonly (readonly [string, number, number, string])[]): string {
  const lines = text.split('\n');
  for (const [op, a, b, token] of edits) {
    const i = a % lines.length;
    const j = b % lines.length;
    const line = lines[i] ?? '';
    if (op === 'delete') lines.splice(i, 1);
    else if (op === 'duplicate') lines.splice(i, 0, line);
    else if (op === 'swap') [lines[i], lines[j]] = [lines[j] ?? '', line];
    else if (op === 'indent') lines[i] = '  ' + line;
    else if (op === 'dedent') lines[i] = line.replace(/^ {1,2}/, '');
    else lines[i] = line.slice(0, b % (line.length + 1)) + token + line.slice(b % (line.length + 1));
  }
  return lines.join('\n');
}

const yamlSamples = (loader: Loader): string[] =>
  loader.samples.filter((s) => !s.trimStart().startsWith('{'));

describe.each(LOADERS.map((l, i) => [l.name, l, i] as const))('fuzz › %s loader', (_name, loader, salt) => {
  it('answers YAML-ish token soup with a result or its error naming the file', () => {
    fc.assert(
      fc.property(yamlSoup, (text) => void loadChecked(loader, text)),
      fuzzParams(200, 10 + salt),
    );
    expect(prototypePolluted()).toBe(false);
  });

  it('answers random structured values (as YAML and as JSON) with a result or its error', () => {
    fc.assert(
      fc.property(structured, fc.boolean(), (value, asJson) => {
        const text = asJson ? JSON.stringify(value) : stringifyYaml(value);
        loadChecked(loader, text);
        expect(prototypePolluted()).toBe(false);
      }),
      fuzzParams(150, 20 + salt),
    );
  });

  it('answers line edits of the real files with a result or its error', () => {
    const samples = yamlSamples(loader);
    fc.assert(
      fc.property(fc.nat(), fc.array(lineEdit, { minLength: 1, maxLength: 4 }), (pick, edits) => {
        loadChecked(loader, applyLineEdits(samples[pick % samples.length] ?? '', edits));
      }),
      fuzzParams(120, 30 + salt),
    );
    expect(prototypePolluted()).toBe(false);
  });

  it('answers real files with one value replaced anywhere by a hostile one with a result or its error', () => {
    const parsed = loader.samples.map((s) => parseYaml(s) as unknown);
    fc.assert(
      fc.property(fc.nat(), fc.array(fc.nat(), { maxLength: 8 }), structured, (pick, path, value) => {
        const data = replaceAt(parsed[pick % parsed.length], path, value);
        loadChecked(loader, stringifyYaml(data));
        expect(prototypePolluted()).toBe(false);
      }),
      fuzzParams(120, 40 + salt),
    );
  });
});

describe('fuzz › recipe data from the wire (compileRecipeData, as the agent re-validates it)', () => {
  it('answers any JSON value with a Recipe or a RecipeError, never a TypeError', () => {
    const samples = LOADERS[0]?.samples.map((s) => parseYaml(s) as unknown) ?? [];
    fc.assert(
      fc.property(fc.nat(), fc.array(fc.nat(), { maxLength: 8 }), structured, (pick, path, value) => {
        // JSON round trip: exactly what crosses the wire, __proto__ keys included as own keys.
        const data = JSON.parse(
          JSON.stringify(replaceAt(samples[pick % samples.length], path, value)) ?? 'null',
        ) as unknown;
        try {
          expect(Object.isFrozen(compileRecipeData(data, 'wire'))).toBe(true);
        } catch (err) {
          if (!(err instanceof RecipeError)) throw err;
          expect(err.problems.length).toBeGreaterThan(0);
        }
        expect(prototypePolluted()).toBe(false);
      }),
      fuzzParams(400, 50),
    );
  });
});

describe('fuzz › loader memory', () => {
  it('keeps the heap flat over thousands of loads of hostile files', () => {
    const texts = fc.sample(
      fc.oneof(
        yamlSoup,
        structured.map((v) => stringifyYaml(v)),
      ),
      { numRuns: 80, seed: 60 },
    );
    const loadAll = (): void => {
      for (const loader of LOADERS) for (const t of texts) loadChecked(loader, t);
    };
    loadAll(); // warm-up: lazily required modules, JIT, caches
    const before = heapUsedMb();
    for (let i = 0; i < 3; i++) loadAll();
    const after = heapUsedMb();
    console.log(
      `loader heap: ${before.toFixed(1)} MB after ${texts.length * LOADERS.length} warm-up loads, ` +
        `${after.toFixed(1)} MB after ${texts.length * LOADERS.length * 3} more (growth ${(after - before).toFixed(1)} MB)`,
    );
    expect(after - before).toBeLessThan(20);
  });
});
