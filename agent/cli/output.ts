/** How `convoy-agent` reports a failure: one line, `convoy-agent: CODE: reason`, and the exit code. */
import { ConvoyError } from '../../shared/errors';

/** Exit codes: 1 an operation failed, 2 the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function reportFailure(err: unknown): void {
  const code = err instanceof ConvoyError ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`convoy-agent: ${code}: ${message.split('\n')[0] ?? ''}\n`);
  process.exitCode = code === 'INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
}
