/** `convoy controller pubkey`: the key agents pin at enrollment. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { WireControllerInfo } from '../../../proto/wire';
import { readSigningKey, signingKeyPath } from '../../signing-key';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson, reportFailure } from '../output';

export function registerControllerPubkey(controller: Command): void {
  withConnectionOptions(controller.command('pubkey'))
    .description("print the controller's public key, which agents pin at enrollment")
    .action((flags: CommonFlags) => printPubkey(flags));
}

/** Reads the key file when the state directory is at hand, else asks the running controller. */
async function printPubkey(flags: CommonFlags): Promise<void> {
  const stateDir =
    flags.stateDir ?? (flags.controller === undefined ? process.env['CONVOY_STATE_DIR'] : undefined);
  if (stateDir !== undefined && existsSync(signingKeyPath(stateDir))) {
    try {
      const key = await readSigningKey(stateDir);
      if (flags.json === true) printJson({ publicKey: key.publicText, keyId: key.keyId });
      else process.stdout.write(key.publicText + '\n');
    } catch (err) {
      reportFailure(err, flags.json === true);
    }
    return;
  }
  await withClient(flags, async (client) => {
    const info = await client.call<WireControllerInfo>('GetControllerInfo', {});
    if (flags.json === true) printJson(info);
    else process.stdout.write(info.publicKey + '\n');
  });
}
