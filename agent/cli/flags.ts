/**
 * Flag values checked while commander reads the command line: a bad value is refused there, before
 * anything runs, in one line naming the flag and the value (`convoy-agent: INVALID_ARGUMENT:
 * --log-level "loud": use one of debug, info, warn, error`, exit 2), never replaced by a default.
 *
 * The operator CLI's controller/cli/flags.ts has the same shape with more parsers (durations,
 * counts, addresses); agent/ and controller/ do not import each other, and the agent needs only
 * the choice of a word.
 */
import { Option } from 'commander';
import { ConvoyError } from '../../shared/errors';
import type { LogLevel } from '../../shared/logger';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const satisfies readonly LogLevel[];

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

/** An option whose value must be one of `values`, checked as it is read. */
export function oneOfOption<const T extends string>(
  flags: string,
  description: string,
  values: readonly T[],
): Option {
  const option = new Option(flags, description);
  const name = option.long ?? flags;
  return option.argParser((text: string): T => {
    if (!(values as readonly string[]).includes(text))
      throw new FlagValueError(name, text, `use one of ${values.join(', ')}`);
    return text as T;
  });
}
