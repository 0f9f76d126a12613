/**
 * `convoy release sign FILE --key KEY`: FILE.sha256 and FILE.sig (Ed25519) beside a release file,
 * made with a key from `convoy release keygen`. Needs no controller.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import { parseReleaseKey, signRelease } from '../../../shared/release';
import { printJson, reportFailure } from '../output';

export function registerReleaseSign(release: Command): void {
  release
    .command('sign')
    .description('write FILE.sha256 and FILE.sig (Ed25519) beside a release file')
    .argument('<file>', 'the release file')
    .requiredOption('--key <file>', 'the release key (convoy release keygen)')
    .option('--json', 'print JSON')
    .action((file: string, flags: { key: string; json?: boolean }) => {
      try {
        if (!existsSync(flags.key))
          throw new ConvoyError('INVALID_ARGUMENT', `--key ${flags.key}: no such file`, { file: flags.key });
        const key = parseReleaseKey(readFileSync(flags.key, 'utf8'), flags.key);
        let content: Buffer;
        try {
          content = readFileSync(file);
        } catch (err) {
          throw new ConvoyError(
            'INVALID_ARGUMENT',
            `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
            { file },
          );
        }
        const side = signRelease(content, path.basename(file), key.secretKey);
        writeFileSync(`${file}.sha256`, side.sha256);
        writeFileSync(`${file}.sig`, side.signature);
        const out = {
          file,
          sha256File: `${file}.sha256`,
          signatureFile: `${file}.sig`,
          publicKey: key.publicKey,
        };
        if (flags.json === true) printJson(out);
        else
          process.stdout.write(
            `signed ${file} with ${key.publicKey}: ${out.sha256File}, ${out.signatureFile}\n`,
          );
      } catch (err) {
        reportFailure(err, flags.json === true);
      }
    });
}
