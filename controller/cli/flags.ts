/**
 * Flag values checked while commander reads the command line, with one set of value parsers for
 * every command. A bad value is refused there, before any connection or side effect, in one line
 * that names the flag and the value (`convoy: INVALID_ARGUMENT: --interval "abc": must be a
 * duration such as ...`, exit 2, see ./main.ts); it is never replaced by a default.
 *
 * The agent's CLI has the same module for the parsers it needs (agent/cli/flags.ts): controller/
 * and agent/ do not import each other.
 */
import { Option } from 'commander';
import { parseDuration } from '../../shared/duration';
import { ConvoyError } from '../../shared/errors';
import type { LogLevel } from '../../shared/logger';

/** Reads a flag's text into its value, or throws `refuse('must be ...')`. */
export type ValueParser<T> = (text: string) => T;

/** What a refused value should have been; flagOption adds the flag and the value. */
class ValueRefused extends Error {}

export function refuse(must: string): never {
  throw new ValueRefused(must);
}

/** A flag value refused while the command line is read; main() reports it like any usage error. */
export class FlagValueError extends ConvoyError {
  constructor(flag: string, value: string, must: string) {
    // A pasted file is not worth echoing whole: the start of it says which value it was.
    const shown = value.length > 80 ? `${value.slice(0, 80)}...` : value;
    super('INVALID_ARGUMENT', `${flag} ${JSON.stringify(shown)}: ${must}`, {
      field: flag.replace(/^--/, ''),
    });
  }
}

/**
 * An option whose value goes through `parse` as it is read. The default, given as the text a user
 * would type, is parsed the same way (a wrong default fails at once) and shown as that text.
 */
export function flagOption<T>(
  flags: string,
  description: string,
  parse: ValueParser<T>,
  defaultText?: string,
): Option {
  const option = new Option(flags, description);
  const name = option.long ?? flags;
  const read = (text: string): T => {
    try {
      return parse(text);
    } catch (err) {
      if (err instanceof ValueRefused) throw new FlagValueError(name, text, err.message);
      throw err;
    }
  };
  option.argParser(read);
  if (defaultText !== undefined) option.default(read(defaultText), JSON.stringify(defaultText));
  return option;
}

/** The largest value a `uint32` request field carries; protobuf would wrap a larger one silently. */
export const UINT32_MAX = 4_294_967_295;
/** The longest duration a `uint32` milliseconds field carries (2^32 - 1 ms is 49.7 days). */
export const MAX_UINT32_DURATION = '49d';
/** The longest a Node timer waits (2^31 - 1 ms is 24.8 days); longer, it fires at once. */
export const MAX_TIMER_DURATION = '24d';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const satisfies readonly LogLevel[];

/** `30s`, `15m`, `1h30m` in milliseconds; `bareMs` also takes a plain number as milliseconds. */
export function duration(bounds: { min?: string; max?: string; bareMs?: boolean } = {}): ValueParser<number> {
  const minMs = bounds.min === undefined ? 1 : mustParseDuration(bounds.min);
  const maxMs = bounds.max === undefined ? Number.MAX_SAFE_INTEGER : mustParseDuration(bounds.max);
  const range =
    bounds.min !== undefined && bounds.max !== undefined
      ? ` (${bounds.min} to ${bounds.max})`
      : bounds.max !== undefined
        ? ` (at most ${bounds.max})`
        : bounds.min !== undefined
          ? ` (at least ${bounds.min})`
          : '';
  const must = `must be a duration such as 30s, 15m or 1h${range}`;
  return (text) => {
    const ms = bounds.bareMs === true && /^\d+$/.test(text) ? Number(text) : parseDuration(text);
    if (ms === null || !Number.isSafeInteger(ms) || ms < minMs || ms > maxMs) refuse(must);
    return ms;
  };
}

function mustParseDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms === null) throw new Error(`flag bound ${JSON.stringify(text)} is not a duration`);
  return ms;
}

/** A whole number written in digits (no sign, exponent, hex or blanks) within [min, max]. */
export function wholeNumber(bounds: { min?: number; max?: number } = {}): ValueParser<number> {
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = bounds;
  const must =
    bounds.max === undefined
      ? min === 1
        ? 'must be a positive whole number'
        : `must be a whole number of at least ${min}`
      : `must be a whole number from ${min} to ${max}`;
  return (text) => {
    const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) refuse(must);
    return n;
  };
}

/** One of a fixed set of words, as given. */
export function oneOf<const T extends string>(values: readonly T[]): ValueParser<T> {
  return (text) => {
    if (!(values as readonly string[]).includes(text)) refuse(`use one of ${values.join(', ')}`);
    return text as T;
  };
}

/**
 * An ISO 8601 date or date-time (`2025-06-01`, `2025-06-01T02:00Z`), in milliseconds. The date
 * must come first: Date.parse alone reads `5` as May 2001.
 */
export const isoTime: ValueParser<number> = (text) => {
  const ms = /^\d{4}-\d{2}-\d{2}([T ]|$)/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms)) refuse('must be an ISO time such as 2025-06-01T02:00:00Z');
  return ms;
};

/** Where a server listens: `host:port`, `[v6]:port` (port 0 picks one) or `unix:/absolute/path`. */
export const listenAddress: ValueParser<string> = (text) => {
  if (text.startsWith('unix:')) {
    if (text.charAt(5) !== '/' || text.length < 7) refuse('must be host:port or unix:/absolute/path');
    return text;
  }
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (m === null || Number(m[2]) > 65_535) refuse('must be host:port or unix:/absolute/path');
  return text;
};
