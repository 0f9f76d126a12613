/** Options every operator command shares, and the wrapper that turns failures into exit codes. */
import type { Command } from 'commander';
import { ConvoyError } from '../../shared/errors';
import { parseLabels, type Labels } from '../../shared/labels';
import { connectOperator, type ConnectionFlags, type OperatorClient } from './client';
import { reportFailure } from './output';

export interface CommonFlags extends ConnectionFlags {
  json?: boolean;
}

export function withConnectionOptions(cmd: Command): Command {
  return cmd
    .option(
      '--state-dir <dir>',
      "the controller's state directory (its unix socket lives there) [env CONVOY_STATE_DIR]",
    )
    .option('--controller <addr>', 'operator API over TCP, host:port [env CONVOY_CONTROLLER]')
    .option('--operator-token-file <file>', 'bearer token for --controller [env CONVOY_OPERATOR_TOKEN]')
    .option('--json', 'print JSON for scripts');
}

/**
 * Checks the arguments with `parse` (before any connection, so usage errors come first), then
 * runs `fn` with a connected client; any failure prints one line and sets a non-zero exit.
 */
export async function withClient<A = undefined>(
  flags: CommonFlags,
  fn: (client: OperatorClient, args: A) => Promise<void>,
  parse?: () => A,
): Promise<void> {
  let client: OperatorClient | undefined;
  try {
    const args = parse === undefined ? (undefined as A) : parse();
    client = connectOperator(flags);
    await fn(client, args);
  } catch (err) {
    reportFailure(err, flags.json === true);
  } finally {
    client?.close();
  }
}

/** The JSON document a `{ json }` answer carries (rollouts, plans, deployments, events). */
export function parseDoc<T>(res: unknown): T {
  return JSON.parse((res as { json: string }).json) as T;
}

/** Parses a `k=v,...` flag, turning a bad pair into a usage error that names the flag. */
export function parseLabelsFlag(flag: string, text: string | undefined): Labels {
  try {
    return parseLabels(text ?? '');
  } catch (err) {
    throw new ConvoyError('INVALID_ARGUMENT', `${flag}: ${(err as Error).message}`);
  }
}
