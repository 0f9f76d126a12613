/** `convoy-agent enroll`: pin the controller's key, create the agent key, write agent.yaml. Once per host. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConvoyError } from '../../shared/errors';
import { reportFailure } from './output';

interface EnrollFlags {
  controller: string;
  token?: string;
  tokenFile?: string;
  controllerKey: string;
  stateDir: string;
  hostname?: string;
  releaseKey: string[];
  json?: boolean;
}

export function registerEnroll(program: Command): void {
  program
    .command('enroll')
    .description("enroll this host: pin the controller's key, create the agent key, write agent.yaml")
    .requiredOption('--controller <addr>', "controller's agent address, host:port or unix:/path")
    .option(
      '--token <token>',
      'one-time enrollment token (prefer --token-file or CONVOY_ENROLL_TOKEN: argv is visible in ps)',
    )
    .option('--token-file <file>', 'read the enrollment token from a file')
    .requiredOption('--controller-key <key>', 'the controller public key to pin (convoy controller pubkey)')
    .requiredOption('--state-dir <dir>', 'where the agent keeps its key, config and journal')
    .option('--hostname <name>', 'host name to report instead of the system one')
    .option(
      '--release-key <key>',
      'a release key (ed25519:...) to trust for signed artifacts such as agent updates; repeatable',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--json', 'print the result as JSON')
    .action(async (flags: EnrollFlags) => {
      try {
        const token =
          flags.token ??
          (flags.tokenFile !== undefined
            ? readTokenFile(flags.tokenFile)
            : process.env['CONVOY_ENROLL_TOKEN']) ??
          '';
        // Loaded only here: enrollment needs proto-loader, which the daemon never loads.
        const { enrollAgent } = await import('../enroll');
        const { releaseKey, ...rest } = flags;
        const res = await enrollAgent({ ...rest, token, releaseKeys: releaseKey });
        if (flags.json === true) process.stdout.write(JSON.stringify(res) + '\n');
        else process.stdout.write(`enrolled as ${res.hostId} (${res.status}); config ${res.configFile}\n`);
      } catch (err) {
        reportFailure(err);
      }
    });
}

/**
 * A token file that is named must be read: an unreadable one (or an empty name) is refused, never
 * a reason to fall back on CONVOY_ENROLL_TOKEN.
 */
function readTokenFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--token-file ${JSON.stringify(file)}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { file },
    );
  }
}
