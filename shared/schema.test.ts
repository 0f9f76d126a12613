import {
  arrayOf,
  at,
  bool,
  duration,
  enumOf,
  formatProblem,
  from,
  int,
  literal,
  nonEmptyStr,
  nullable,
  object,
  oneOfByField,
  oneOrMany,
  recordOf,
  refine,
  str,
  validate,
  withDefault,
  type Spec,
} from './schema';

/** The problems of validating `value`, as `path: message` lines. */
function problemsOf<T>(s: Spec<T>, value: unknown): string[] {
  return validate(s, value).problems.map(formatProblem);
}

describe('schema', () => {
  describe('paths', () => {
    it.each([
      ['', 'name', 'name'],
      ['phases', 'upgrade', 'phases.upgrade'],
      ['phases.upgrade[2]', 'timeout', 'phases.upgrade[2].timeout'],
      ['env', 'MY VAR', 'env["MY VAR"]'],
      ['', '__proto__', '__proto__'],
      ['steps', 'binary.replace', 'steps["binary.replace"]'],
    ])('joins %j and %j as %j', (path, key, expected) => {
      expect(at(path, key)).toBe(expected);
    });
  });

  describe('scalars', () => {
    it.each<[string, unknown, unknown, Spec<unknown>]>([
      ['str', 'x', 'x', str()],
      ['str (empty)', '', '', str()],
      ['nonEmptyStr', ' a ', ' a ', nonEmptyStr()],
      ['int', 10, 10, int({ min: 0, max: 10 })],
      ['bool', false, false, bool()],
      ['duration', '1h30m', 5_400_000, duration()],
      ['enumOf', 'b', 'b', enumOf(['a', 'b'])],
      ['literal', 'exec', 'exec', literal('exec')],
    ])('%s accepts %j', (_name, input, expected, s) => {
      expect(validate(s, input)).toEqual({ value: expected, problems: [] });
    });

    it.each<[string, unknown, string, Spec<unknown>]>([
      ['str', 5, 'must be a string', str()],
      ['str', 'a\0b', 'must not contain NUL', str()],
      ['nonEmptyStr', '  ', 'must be a non-empty string', nonEmptyStr()],
      ['int', 11, 'must be an integer from 0 to 10', int({ min: 0, max: 10 })],
      ['int', 1.5, 'must be an integer >= 1', int({ min: 1 })],
      ['int', '3', 'must be an integer', int()],
      ['bool', 'yes', 'must be true or false', bool()],
      ['duration', '-5s', 'must be a positive duration such as 30s, 10m or 1h (got "-5s")', duration()],
      ['duration', 'soon', '(got "soon")', duration()],
      ['duration', 30, '(got 30)', duration()],
      ['duration', '2m', 'must be at most 60s', duration({ maxMs: 60_000 })],
      ['enumOf', 'c', 'must be one of a, b (got "c")', enumOf(['a', 'b'])],
    ])('%s refuses %j', (_name, input, message, s) => {
      const [problem, ...rest] = problemsOf(s, input);
      expect(problem).toContain(message);
      expect(rest).toEqual([]);
    });

    it('refine adds a check on an accepted value only', () => {
      const even = refine(int(), (v) => (v % 2 === 0 ? null : 'must be even'));
      expect(problemsOf(even, 3)).toEqual(['must be even']);
      expect(problemsOf(even, 'x')).toEqual([expect.stringMatching(/^must be an integer/)]);
      expect(validate(even, 4).value).toBe(4);
    });
  });

  describe('lists and records', () => {
    it('checks every item and reports each by index', () => {
      expect(problemsOf(arrayOf(int()), [1, 'a', 2, true])).toEqual([
        '[1]: must be an integer',
        '[3]: must be an integer',
      ]);
    });

    it('enforces a minimum length and uniqueness', () => {
      expect(problemsOf(arrayOf(str(), { min: 1 }), [])).toEqual(['must have at least 1 item']);
      expect(problemsOf(arrayOf(str(), { unique: true }), ['a', 'b', 'a'])).toEqual(['[2]: is listed twice']);
      expect(problemsOf(arrayOf(str()), 'a')).toEqual(['must be a list']);
    });

    it('oneOrMany turns a single item into a list of one', () => {
      expect(validate(oneOrMany(nonEmptyStr()), 'core').value).toEqual(['core']);
      expect(validate(oneOrMany(nonEmptyStr()), ['a', 'b']).value).toEqual(['a', 'b']);
      expect(problemsOf(oneOrMany(nonEmptyStr()), '')).toEqual(['must be a non-empty string']);
    });

    it('builds records as null-prototype objects and refuses __proto__ keys', () => {
      const { value } = validate(recordOf(str()), { a: 'x', constructor: 'y' });
      expect(Object.getPrototypeOf(value)).toBeNull();
      expect({ ...value }).toEqual({ a: 'x', constructor: 'y' });
      const input = JSON.parse('{"__proto__": {"polluted": "yes"}, "ok": "1"}') as unknown;
      expect(problemsOf(recordOf(str()), input)).toEqual([
        '__proto__: is not allowed as a key',
        '__proto__: must be a string',
      ]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('checks record keys with a pattern', () => {
      const env = recordOf(str(), { re: /^[A-Z_]+$/, what: 'an upper-case name' });
      expect(problemsOf(env, { GOOD: 'x', 'bad key': 'y' })).toEqual([
        '["bad key"]: key must be an upper-case name',
      ]);
    });
  });

  describe('object', () => {
    const probe = object(
      {
        name: nonEmptyStr(),
        timeoutMs: from('timeout', withDefault(duration(), 1000)),
        tags: withDefault(arrayOf(str()), []),
        note: str(),
      },
      { optional: ['note'] },
    );

    it('applies defaults, renames input keys and leaves absent optional fields out', () => {
      expect(validate(probe, { name: 'a' }).value).toEqual({ name: 'a', timeoutMs: 1000, tags: [] });
      expect(validate(probe, { name: 'a', timeout: '2s', note: null }).value).toEqual({
        name: 'a',
        timeoutMs: 2000,
        tags: [],
      });
    });

    it('reports every problem at once: unknown, required and bad fields', () => {
      expect(problemsOf(probe, { timeout: 'soon', tags: [1], extra: true, timeoutMs: 5 })).toEqual([
        'extra: unknown field (known: name, timeout, tags, note)',
        'timeoutMs: unknown field (known: name, timeout, tags, note)',
        'name: is required',
        'timeout: must be a positive duration such as 30s, 10m or 1h (got "soon")',
        'tags[0]: must be a string',
      ]);
    });

    it('reports __proto__ as an unknown field and never copies input keys', () => {
      const input = JSON.parse('{"name": "a", "__proto__": {"polluted": 1}}') as unknown;
      expect(problemsOf(probe, input)).toEqual([
        '__proto__: unknown field (known: name, timeout, tags, note)',
      ]);
    });

    it('refuses what is not a mapping', () => {
      expect(problemsOf(probe, ['a'])).toEqual(['must be a mapping of fields']);
      expect(problemsOf(probe, 'a')).toEqual(['must be a mapping of fields']);
      expect(problemsOf(probe, null)).toEqual(['is required']);
    });

    it('drops unknown fields instead of reporting them when told to ignore them', () => {
      const lenient = object({ name: nonEmptyStr() }, { unknownFields: 'ignore' });
      const input = JSON.parse('{"name": "a", "newer": 1, "__proto__": {"polluted": 1}}') as unknown;
      expect(validate(lenient, input)).toEqual({ value: { name: 'a' }, problems: [] });
      expect(problemsOf(lenient, { newer: 1 })).toEqual(['name: is required']);
    });

    it('takes null or absent as the value of a nullable field, and checks anything else', () => {
      const s = object({ code: nullable(int()) });
      expect(validate(s, { code: null }).value).toEqual({ code: null });
      expect(validate(s, {}).value).toEqual({ code: null });
      expect(validate(s, { code: 3 }).value).toEqual({ code: 3 });
      expect(problemsOf(s, { code: 'x' })).toEqual(['code: must be an integer']);
    });

    it('runs cross-field checks with whichever fields were accepted', () => {
      const pair = object(
        { a: int(), b: int() },
        {
          optional: ['a', 'b'],
          check: (v, path, problems) => {
            if ((v.a === undefined) === (v.b === undefined))
              problems.push({ path, message: 'needs exactly one of a, b' });
          },
        },
      );
      expect(problemsOf(pair, { a: 1 })).toEqual([]);
      expect(problemsOf(pair, {})).toEqual(['needs exactly one of a, b']);
      expect(problemsOf(pair, { a: 'x' })).toEqual(['a: must be an integer', 'needs exactly one of a, b']);
    });
  });

  describe('oneOfByField', () => {
    const shape = oneOfByField('type', {
      circle: object({ type: literal('circle'), r: int({ min: 1 }) }),
      square: object({ type: literal('square'), side: int({ min: 1 }) }),
    });

    it('checks the variant the discriminator names', () => {
      expect(validate(shape, { type: 'circle', r: 2 }).value).toEqual({ type: 'circle', r: 2 });
      expect(problemsOf(shape, { type: 'square', r: 2 })).toEqual([
        'r: unknown field (known: type, side)',
        'side: is required',
      ]);
    });

    it('reports an unknown or missing discriminator once, listing the allowed values', () => {
      expect(problemsOf(shape, { type: 'triangle', r: 'x' })).toEqual([
        'type: unknown type "triangle" (one of circle, square)',
      ]);
      expect(problemsOf(shape, { r: 1 })).toEqual(['type: is required (one of circle, square)']);
      expect(problemsOf(shape, { type: 'constructor' })).toEqual([
        'type: unknown type "constructor" (one of circle, square)',
      ]);
    });
  });
});
