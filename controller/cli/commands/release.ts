/**
 * `convoy release keygen|sign`: the offline side of signed artifacts. A release key signs what
 * agents stage (an agent self-update's bundle, a Cells binary); agents pin its public key
 * (`--release-key` at enrollment, `releaseKeys` in agent.yaml). Needs no controller.
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import { newReleaseKey, parseReleaseKey, signRelease } from '../../../shared/release';
import { printJson, reportFailure } from '../output';

export function registerRelease(program: Command): void {
  const release = program.command('release').description('release keys and signatures for signed artifacts');

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
