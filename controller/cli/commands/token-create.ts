/** `convoy token create`: a one-time enrollment token, printed once (only its hash is stored). */
import type { Command } from 'commander';
import { parseDuration } from '../../../shared/duration';
import { ConvoyError } from '../../../shared/errors';
import type { Labels } from '../../../shared/labels';
import type { WireCreatedToken } from '../../../proto/wire';
import { parseLabelsFlag, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson } from '../output';

interface TokenFlags extends CommonFlags {
  ttl: string;
  uses: string;
  labels?: string;
  requireApproval?: boolean;
}

export function registerTokenCreate(token: Command): void {
  withConnectionOptions(token.command('create'))
    .description('create a one-time enrollment token (shown once; only its hash is stored)')
    .option('--ttl <duration>', 'lifetime, e.g. 15m, 1h, 2d', '1h')
    .option('--uses <n>', 'how many agents may enroll with it', '1')
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
  const ttlMs = parseDuration(flags.ttl);
  if (ttlMs === null)
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--ttl ${JSON.stringify(flags.ttl)}: must be a duration such as 15m or 1h`,
    );
  const uses = Number(flags.uses);
  if (!Number.isInteger(uses) || uses < 1)
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--uses ${JSON.stringify(flags.uses)}: must be a positive integer`,
    );
  return {
    ttlMs,
    uses,
    labels: parseLabelsFlag('--labels', flags.labels),
    requireApproval: flags.requireApproval === true,
  };
}
