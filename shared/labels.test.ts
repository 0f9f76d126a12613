import { formatLabels, labelProblem, matchesSelector, parseLabels } from './labels';

describe('parseLabels', () => {
  it('parses comma-separated key=value pairs', () => {
    expect(parseLabels('role=core,site=paris')).toEqual({ role: 'core', site: 'paris' });
  });

  it.each<[string, string]>([
    ['an empty string', ''],
    ['only whitespace', '  \t '],
  ])('returns no labels for %s', (_name, text) => {
    expect(Object.keys(parseLabels(text))).toEqual([]);
  });

  it.each<[string, string, string]>([
    ['a command substitution', '$(touch /tmp/pwn)', '$(touch /tmp/pwn)'],
    ['an SQL injection', "'; DROP TABLE hosts;--", "'; DROP TABLE hosts;--"],
    ['backticks', '`id`', '`id`'],
    ['an = after the first one', 'a=b', 'a=b'],
    ['double quotes and a backslash', '"x\\"y', '"x\\"y'],
    [
      'shell operators',
      'x && rm -rf / ; echo | cat > /etc/passwd',
      'x && rm -rf / ; echo | cat > /etc/passwd',
    ],
    ['leading and trailing spaces', '  spaced  ', '  spaced  '],
    ['non-ASCII text', 'île-de-france 🚚', 'île-de-france 🚚'],
    ['an empty value', '', ''],
  ])('keeps a value with %s verbatim', (_name, value, expected) => {
    const labels = parseLabels(`k=${value}`);
    expect(labels['k']).toBe(expected);
    expect(Object.keys(labels)).toEqual(['k']);
  });

  it('keeps metacharacters verbatim alongside other labels', () => {
    expect(parseLabels("role=core,cmd=$(touch /tmp/pwn),sql='; DROP TABLE hosts;--,eq=a=b")).toEqual({
      role: 'core',
      cmd: '$(touch /tmp/pwn)',
      sql: "'; DROP TABLE hosts;--",
      eq: 'a=b',
    });
  });

  it('trims whitespace around keys', () => {
    expect(parseLabels(' role =core, site=paris')).toEqual({ role: 'core', site: 'paris' });
  });

  it('lets a later pair override an earlier pair with the same key', () => {
    expect(parseLabels('role=core,role=edge')).toEqual({ role: 'edge' });
  });

  it.each<[string, string, RegExp]>([
    ['a pair without =', 'role', /label "role" must look like key=value/],
    ['a second pair without =', 'role=core,site', /label "site" must look like key=value/],
    ['a pair starting with =', '=core', /label "=core" must look like key=value/],
    ['a trailing comma', 'role=core,', /label "" must look like key=value/],
    ['an empty pair in the middle', 'a=1,,b=2', /label "" must look like key=value/],
    ['a key of only spaces', '  =core', /key must be 1-63 characters/],
    ['a key of 64 characters', `${'k'.repeat(64)}=v`, /key must be 1-63 characters/],
    ['a value of 254 characters', `k=${'v'.repeat(254)}`, /value must be at most 253 characters/],
    ['a NUL in the key', 'ro\u0000le=core', /key must not contain "=" or control characters/],
    ['an escape character in the key', 'ro\u001ble=core', /key must not contain "=" or control characters/],
    ['a newline in the value', 'role=core\nsite=paris', /value must not contain control characters/],
    ['a DEL in the value', 'role=co\u007fre', /value must not contain control characters/],
    ['a carriage return in the value', 'role=core\r', /value must not contain control characters/],
    ['a tab in the value', 'role=a\tb', /value must not contain control characters/],
  ])('throws for %s', (_name, text, message) => {
    expect(() => parseLabels(text)).toThrow(message);
  });

  it('accepts a key of exactly 63 characters and a value of exactly 253 characters', () => {
    const key = 'k'.repeat(63);
    const value = 'v'.repeat(253);
    expect(parseLabels(`${key}=${value}`)).toEqual({ [key]: value });
  });

  it('stores a __proto__ label as data without polluting Object.prototype', () => {
    const labels = parseLabels('__proto__=x,constructor=y,role=core');
    expect(Object.keys(labels).sort()).toEqual(['__proto__', 'constructor', 'role']);
    expect(labels['__proto__']).toBe('x');
    expect(labels['constructor']).toBe('y');
    expect(Object.getPrototypeOf(labels)).toBeNull();
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('x');
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['role']).toBeUndefined();
  });
});

describe('labelProblem', () => {
  it.each<[string | null, string, string]>([
    [null, 'role', 'core'],
    ['key must be 1-63 characters', '', 'core'],
    ['key must not contain "=" or control characters', 'a=b', 'core'],
    ['value must be at most 253 characters', 'role', 'x'.repeat(254)],
    ['value must not contain control characters', 'role', 'a\u0000'],
  ])('returns %j for key %j and the given value', (expected, key, value) => {
    expect(labelProblem(key, value)).toBe(expected);
  });
});

describe('matchesSelector', () => {
  const labels = parseLabels('role=core,site=paris,tier=1');

  it.each<[string, string, boolean]>([
    ['an empty selector', '', true],
    ['one matching pair', 'role=core', true],
    ['all pairs matching', 'role=core,site=paris,tier=1', true],
    ['a pair with another value', 'role=edge', false],
    ['one matching and one mismatching pair', 'role=core,site=lyon', false],
    ['a key the host lacks', 'zone=a', false],
    ['a value that differs only in case', 'role=Core', false],
    ['a value with a trailing space', 'role=core ', false],
    ['an inherited property name', 'constructor=y', false],
    ['a __proto__ key', '__proto__=x', false],
  ])('given %s returns %p', (_name, selector, expected) => {
    expect(matchesSelector(labels, parseLabels(selector))).toBe(expected);
  });

  it('does not match inherited properties of plain-object labels', () => {
    const plain: Record<string, string> = { role: 'core' };
    expect(matchesSelector(plain, { toString: 'x' })).toBe(false);
    expect(matchesSelector(plain, parseLabels('hasOwnProperty=x'))).toBe(false);
  });

  it('matches a __proto__ label when the host has that label', () => {
    expect(matchesSelector(parseLabels('__proto__=x'), parseLabels('__proto__=x'))).toBe(true);
    expect(matchesSelector(parseLabels('__proto__=x'), parseLabels('__proto__=y'))).toBe(false);
  });
});

describe('formatLabels', () => {
  it('prints pairs in insertion order and round-trips through parseLabels', () => {
    const text = 'role=core,cmd=$(touch /tmp/pwn),eq=a=b';
    expect(formatLabels(parseLabels(text))).toBe(text);
  });
});
