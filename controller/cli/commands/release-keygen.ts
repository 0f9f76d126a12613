/**
 * `convoy release keygen --out FILE`: a release key, the offline side of signed artifacts. It signs
 * what agents stage (an agent self-update's bundle, a Cells binary); agents pin its public key
 * (`--release-key` at enrollment, `releaseKeys` in agent.yaml). Needs no controller.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import { newReleaseKey } from '../../../shared/release';
import { printJson, reportFailure } from '../output';

export function registerReleaseKeygen(release: Command): void {
  release
    .command('keygen')
    .description('create a release key (keep it offline); prints the public key agents pin')
    .requiredOption('--out <file>', 'where to write the secret key (mode 0600; never overwritten)')
    .option('--json', 'print JSON')
    .action((flags: { out: string; json?: boolean }) => {
      try {
        const key = newReleaseKey();
        let fd: number;
        try {
          fd = openSync(flags.out, 'wx', 0o600);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          throw new ConvoyError(
            'INVALID_ARGUMENT',
            `--out ${flags.out}: ${code === 'EEXIST' ? 'exists already; a release key is never overwritten' : `cannot create (${code})`}`,
            { file: flags.out },
          );
        }
        try {
          writeSync(fd, key.secretKeyText);
        } finally {
          closeSync(fd);
        }
        if (flags.json === true) printJson({ keyFile: path.resolve(flags.out), publicKey: key.publicKey });
        else process.stdout.write(`${key.publicKey}\n`);
      } catch (err) {
        reportFailure(err, flags.json === true);
      }
    });
}
