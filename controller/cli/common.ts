/** Options every operator command shares, and the wrapper that turns failures into exit codes. */
import type { Command } from 'commander';
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

/** Runs `fn` with a connected client; any failure prints one line and sets a non-zero exit. */
export async function withClient(
  flags: CommonFlags,
  fn: (client: OperatorClient) => Promise<void>,
): Promise<void> {
  let client: OperatorClient | undefined;
  try {
    client = connectOperator(flags);
    await fn(client);
  } catch (err) {
    reportFailure(err, flags.json === true);
  } finally {
    client?.close();
  }
}
