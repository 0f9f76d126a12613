/** `convoy token create`: a one-time enrollment token, printed once (only its hash is stored). */
import type { Command } from 'commander';
import type { Labels } from '../../../shared/labels';
import type { WireCreatedToken } from '../../../proto/wire';
import { parseLabelsFlag, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { duration, flagOption, UINT32_MAX, wholeNumber } from '../flags';
import { printJson } from '../output';

interface TokenFlags extends CommonFlags {
  ttl: number;
  uses: number;
  labels?: string;
  requireApproval?: boolean;
}

export function registerTokenCreate(token: Command): void {
  withConnectionOptions(token.command('create'))
    .description('create a one-time enrollment token (shown once; only its hash is stored)')
    .addOption(flagOption('--ttl <duration>', 'lifetime, e.g. 15m, 1h, 2d', duration(), '1h'))
    .addOption(
      flagOption(
        '--uses <n>',
        'how many agents may enroll with it',
        // The controller sets its own bound; this one keeps the number intact on the wire.
        wholeNumber({ max: UINT32_MAX }),
        '1',
      ),
    )
    .option('--labels <labels>', 'labels for every host enrolled with it, k=v,...')
    .option('--require-approval', 'keep new hosts pending until `convoy hosts approve ID`')
    .action((flags: TokenFlags) =>
      withClient(
        flags,
        async (client, request) => {
          const created = await client.call<WireCreatedToken>('CreateToken', request);
          const expiresAt = new Date(created.expiresAtMs).toISOString();
          if (flags.json === true) return printJson({ ...created, expiresAt });
          process.stdout.write(created.token + '\n');
          process.stderr.write(`token ${created.tokenId}: ${created.uses} use(s), expires ${expiresAt}\n`);
        },
        () => tokenRequest(flags),
      ),
    );
}

function tokenRequest(flags: TokenFlags): {
  ttlMs: number;
  uses: number;
  labels: Labels;
  requireApproval: boolean;
} {
  return {
    ttlMs: flags.ttl,
    uses: flags.uses,
    labels: parseLabelsFlag('--labels', flags.labels),
    requireApproval: flags.requireApproval === true,
  };
}
