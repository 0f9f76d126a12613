import {
  createLogger,
  isLogLevel,
  REDACTED,
  silentLogger,
  type LoggerOptions,
  type LogLevel,
} from './logger';

const FIXED_NOW = Date.UTC(2025, 5, 1, 12, 30, 45, 678);

/** A logger writing into an array, with a fixed clock; `records()` parses every line. */
function capture(options: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  const logger = createLogger({ sink: (line) => lines.push(line), now: () => FIXED_NOW, ...options });
  const records = (): Record<string, unknown>[] =>
    lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, records };
}

describe('createLogger', () => {
  it('writes one JSON object per line with ts, level and msg first', () => {
    const { logger, lines } = capture();
    logger.info('agent connected', { hostId: 'host-a' });
    expect(lines).toEqual([
      '{"ts":"2025-06-01T12:30:45.678Z","level":"info","msg":"agent connected","hostId":"host-a"}\n',
    ]);
  });

  it('adds the fields of a child logger, and of a child of a child, to every line', () => {
    const { logger, records } = capture();
    const child = logger.child({ component: 'gateway' });
    const grandchild = child.child({ hostId: 'host-a' });
    child.warn('slow');
    grandchild.error('lost', { seq: 7 });
    logger.info('plain');
    expect(records()).toEqual([
      { ts: '2025-06-01T12:30:45.678Z', level: 'warn', msg: 'slow', component: 'gateway' },
      {
        ts: '2025-06-01T12:30:45.678Z',
        level: 'error',
        msg: 'lost',
        component: 'gateway',
        hostId: 'host-a',
        seq: 7,
      },
      { ts: '2025-06-01T12:30:45.678Z', level: 'info', msg: 'plain' },
    ]);
  });

  it('lets call fields override child fields of the same name', () => {
    const { logger, records } = capture();
    logger.child({ hostId: 'host-a' }).info('moved', { hostId: 'host-b' });
    expect(records()[0]?.['hostId']).toBe('host-b');
  });

  it('stamps each line with the clock it is given', () => {
    const lines: string[] = [];
    let nowMs = Date.UTC(2024, 0, 2, 3, 4, 5);
    const logger = createLogger({ sink: (line) => lines.push(line), now: () => nowMs });
    logger.info('first');
    nowMs += 1500;
    logger.info('second');
    expect(lines.map((l) => (JSON.parse(l) as { ts: string }).ts)).toEqual([
      '2024-01-02T03:04:05.000Z',
      '2024-01-02T03:04:06.500Z',
    ]);
  });

  const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
  it.each<[LogLevel | undefined, LogLevel[]]>([
    [undefined, ['info', 'warn', 'error']],
    ['debug', ['debug', 'info', 'warn', 'error']],
    ['info', ['info', 'warn', 'error']],
    ['warn', ['warn', 'error']],
    ['error', ['error']],
  ])('at level %p writes only %p', (level, expected) => {
    const { logger, records } = capture(level === undefined ? {} : { level });
    for (const l of LEVELS) logger[l](`at ${l}`);
    expect(records().map((r) => r['level'])).toEqual(expected);
    expect(records().map((r) => r['msg'])).toEqual(expected.map((l) => `at ${l}`));
  });

  it('applies the level threshold to child loggers too', () => {
    const { logger, lines } = capture({ level: 'warn' });
    const child = logger.child({ component: 'x' });
    child.info('dropped');
    child.debug('dropped');
    child.warn('kept');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('"msg":"kept"');
  });

  it.each([
    'token',
    'password',
    'secret',
    'authorization',
    'Authorization',
    'apiToken',
    'passphrase',
    'privateKey',
  ])('replaces the value of a field named %s with [redacted]', (name) => {
    const { logger, lines, records } = capture();
    logger.info('login', { [name]: 'hunter2-value', user: 'ops' });
    expect(records()[0]).toEqual(expect.objectContaining({ [name]: REDACTED, user: 'ops' }));
    expect(lines[0]).not.toContain('hunter2-value');
  });

  it('redacts secret fields that are objects, arrays or numbers, not only strings', () => {
    const { logger, lines, records } = capture();
    logger.info('x', { credentials: { user: 'u', pass: 'p4ss' }, tokens: ['t1', 't2'], secret: 1234 });
    expect(records()[0]).toEqual(
      expect.objectContaining({ credentials: REDACTED, tokens: REDACTED, secret: REDACTED }),
    );
    expect(lines[0]).not.toMatch(/p4ss|t1|t2|1234/);
  });

  it('redacts secret fields nested in objects and arrays', () => {
    const { logger, lines, records } = capture();
    logger.info('request', {
      request: { headers: { authorization: 'Bearer abc.def', accept: 'json' } },
      hosts: [{ id: 'host-a', token: 'enroll-tok-1' }],
    });
    expect(records()[0]).toEqual(
      expect.objectContaining({
        request: { headers: { authorization: REDACTED, accept: 'json' } },
        hosts: [{ id: 'host-a', token: REDACTED }],
      }),
    );
    expect(lines[0]).not.toMatch(/abc\.def|enroll-tok-1/);
  });

  it('redacts secret fields bound on a child logger', () => {
    const { logger, lines, records } = capture();
    logger.child({ password: 'child-pass', component: 'cli' }).info('x');
    expect(records()[0]).toEqual(expect.objectContaining({ password: REDACTED, component: 'cli' }));
    expect(lines[0]).not.toContain('child-pass');
  });

  it('masks secret values inside messages and string fields wherever they appear', () => {
    const { logger, lines, records } = capture({ secrets: ['s3cr3t-v4lue', 'tok_XYZ'] });
    logger.info('connecting with s3cr3t-v4lue and again s3cr3t-v4lue', {
      url: 'https://ops:tok_XYZ@example.test/',
      nested: { list: ['pre-tok_XYZ-post', 42] },
    });
    expect(records()[0]).toEqual(
      expect.objectContaining({
        msg: `connecting with ${REDACTED} and again ${REDACTED}`,
        url: `https://ops:${REDACTED}@example.test/`,
        nested: { list: [`pre-${REDACTED}-post`, 42] },
      }),
    );
    expect(lines[0]).not.toMatch(/s3cr3t-v4lue|tok_XYZ/);
  });

  it('masks secret values in child fields and ignores empty secrets', () => {
    const { logger, records } = capture({ secrets: ['', 'hush'] });
    logger.child({ note: 'hush-hush' }).info('plain message');
    expect(records()[0]).toEqual(
      expect.objectContaining({ msg: 'plain message', note: `${REDACTED}-${REDACTED}` }),
    );
  });

  it('serialises Error values as their name and message', () => {
    const { logger, records } = capture();
    const err = new TypeError('bad input');
    logger.error('failed', { err, nested: { cause: new RangeError('too big') } });
    expect(records()[0]).toEqual(
      expect.objectContaining({
        err: { name: 'TypeError', message: 'bad input' },
        nested: { cause: { name: 'RangeError', message: 'too big' } },
      }),
    );
  });

  it('masks secret values inside Error messages', () => {
    const { logger, lines, records } = capture({ secrets: ['pw-123'] });
    logger.error('failed', { err: new Error('login with pw-123 refused') });
    expect(records()[0]?.['err']).toEqual({ name: 'Error', message: `login with ${REDACTED} refused` });
    expect(lines[0]).not.toContain('pw-123');
  });

  it('keeps numbers, booleans and null as they are', () => {
    const { logger, records } = capture();
    logger.info('values', { n: 3, ok: false, none: null });
    expect(records()[0]).toEqual(expect.objectContaining({ n: 3, ok: false, none: null }));
  });
});

describe('silentLogger', () => {
  it('accepts every level and child without throwing', () => {
    expect(() => {
      silentLogger.debug('a');
      silentLogger.info('b');
      silentLogger.warn('c');
      silentLogger.error('d', { err: new Error('e') });
      silentLogger.child({ x: 1 }).error('f');
    }).not.toThrow();
  });
});

describe('isLogLevel', () => {
  it.each<[string, boolean]>([
    ['debug', true],
    ['info', true],
    ['warn', true],
    ['error', true],
    ['warning', false],
    ['INFO', false],
    ['', false],
    ['toString', false],
    ['__proto__', false],
  ])('says whether %p is a log level (%p)', (value, expected) => {
    expect(isLogLevel(value)).toBe(expected);
  });
});
