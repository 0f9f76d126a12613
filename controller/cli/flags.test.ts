import { Command } from 'commander';
import {
  duration,
  flagOption,
  FlagValueError,
  isoTime,
  listenAddress,
  oneOf,
  wholeNumber,
  type ValueParser,
} from './flags';

/** The value, or `refused: <what it must be>`. */
function outcome<T>(parse: ValueParser<T>, text: string): T | string {
  try {
    return parse(text);
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
}

describe('flag values', () => {
  const DURATION = 'refused: must be a duration such as 30s, 15m or 1h';
  it.each<[string, ValueParser<number>, string, number | string]>([
    ['a duration', duration(), '1h30m', 5_400_000],
    ['a duration', duration(), '500ms', 500],
    ['a duration', duration(), 'forever', DURATION],
    ['a duration', duration(), '-5m', DURATION],
    ['a duration', duration(), '0s', DURATION],
    ['a duration', duration(), '', DURATION],
    ['a duration', duration(), '500', DURATION],
    ['a duration', duration(), '1h1h', DURATION],
    ['a bounded duration', duration({ min: '100ms', max: '1d' }), '100ms', 100],
    ['a bounded duration', duration({ min: '100ms', max: '1d' }), '99ms', `${DURATION} (100ms to 1d)`],
    ['a bounded duration', duration({ min: '100ms', max: '1d' }), '1d1ms', `${DURATION} (100ms to 1d)`],
    ['a duration or bare ms', duration({ bareMs: true }), '500', 500],
    ['a duration or bare ms', duration({ bareMs: true }), '2s', 2000],
    ['a duration or bare ms', duration({ bareMs: true }), '0', DURATION],
    ['a duration or bare ms', duration({ bareMs: true }), 'NaN', DURATION],
    ['a whole number', wholeNumber(), '7', 7],
    ['a whole number', wholeNumber(), '0', 'refused: must be a positive whole number'],
    ['a whole number', wholeNumber(), '1e3', 'refused: must be a positive whole number'],
    ['a whole number', wholeNumber(), '0x10', 'refused: must be a positive whole number'],
    ['a whole number', wholeNumber(), ' 3', 'refused: must be a positive whole number'],
    ['a whole number', wholeNumber(), '99999999999999999999', 'refused: must be a positive whole number'],
    ['a bounded whole number', wholeNumber({ max: 4096 }), '4096', 4096],
    [
      'a bounded whole number',
      wholeNumber({ max: 4096 }),
      '4097',
      'refused: must be a whole number from 1 to 4096',
    ],
    ['an ISO time', isoTime, '2025-06-01T02:00:00Z', Date.UTC(2025, 5, 1, 2)],
    ['an ISO time', isoTime, '5', 'refused: must be an ISO time such as 2025-06-01T02:00:00Z'],
    ['an ISO time', isoTime, '2024-13-45T99:99', 'refused: must be an ISO time such as 2025-06-01T02:00:00Z'],
    ['an ISO time', isoTime, 'March 7', 'refused: must be an ISO time such as 2025-06-01T02:00:00Z'],
  ])('%s: %j reads as %j', (_what, parse, text, expected) => {
    expect(outcome(parse, text)).toEqual(expected);
  });

  it.each([
    ['127.0.0.1:4860', true],
    ['0.0.0.0:0', true],
    ['[::1]:4860', true],
    ['ctl.example.org:7443', true],
    ['unix:/run/convoy.sock', true],
    ['nowhere', false],
    ['127.0.0.1', false],
    ['127.0.0.1:70000', false],
    ['unix:relative.sock', false],
    ['$(reboot):1', false],
  ])('a listen address: %j accepted %s', (text, ok) => {
    expect(outcome(listenAddress, text)).toBe(
      ok ? text : 'refused: must be host:port or unix:/absolute/path',
    );
  });

  it('a word from a list', () => {
    const level = oneOf(['debug', 'info'] as const);
    expect(outcome(level, 'info')).toBe('info');
    expect(outcome(level, 'INFO')).toBe('refused: use one of debug, info');
  });
});

describe('flagOption', () => {
  const program = (): Command =>
    new Command('t')
      .exitOverride()
      .addOption(flagOption('--every <duration>', 'how often', duration(), '1s'))
      .action(() => undefined);

  it('parses the default as the user would type it, and shows it as typed', () => {
    const p = program().parse([], { from: 'user' });
    expect(p.opts()).toEqual({ every: 1000 });
    expect(p.helpInformation()).toContain('how often (default: "1s")');
  });

  it('hands the command the parsed value', () => {
    expect(program().parse(['--every', '2m'], { from: 'user' }).opts()).toEqual({ every: 120_000 });
  });

  it('refuses a bad value naming the flag and the value, as a usage error', () => {
    let thrown: unknown;
    try {
      program().parse(['--every', 'often'], { from: 'user' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(FlagValueError);
    expect(thrown).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: '--every "often": must be a duration such as 30s, 15m or 1h',
      context: { field: 'every' },
    });
  });

  it('shows the start of a long value only', () => {
    expect(() => program().parse(['--every', 'x'.repeat(10_000)], { from: 'user' })).toThrow(
      `--every "${'x'.repeat(80)}...": must be`,
    );
  });
});
