/** `convoy ping`: a signed no-op to every matching agent, one line per round trip. */
import type { Command } from 'commander';
import { parseDuration } from '../../../shared/duration';
import { ConvoyError } from '../../../shared/errors';
import { parseLabels } from '../../../shared/labels';
import type { WirePingResult } from '../../../proto/wire';
import { withClient, withConnectionOptions, type CommonFlags } from '../common';
import { EXIT_FAILURE, printJson } from '../output';

export function registerPing(program: Command): void {
  withConnectionOptions(program.command('ping'))
    .description('send a signed no-op to every matching agent and print each round trip')
    .option('--select <labels>', 'only hosts with these labels, k=v,...')
    .option('--timeout <duration>', 'how long to wait for each agent', '5s')
    .action((flags: CommonFlags & { select?: string; timeout: string }) =>
      withClient(flags, async (client) => {
        const timeoutMs = parseDuration(flags.timeout);
        if (timeoutMs === null)
          throw new ConvoyError(
            'INVALID_ARGUMENT',
            `--timeout ${JSON.stringify(flags.timeout)}: must be a duration such as 5s`,
          );
        const results: WirePingResult[] = [];
        await client.stream<WirePingResult>(
          'Ping',
          { selector: parseLabels(flags.select ?? ''), timeoutMs },
          (r) => {
            results.push(r);
            if (flags.json !== true) process.stdout.write(pingLine(r) + '\n');
          },
        );
        const ok = results.filter((r) => r.outcome === 'ok').length;
        if (flags.json === true) printJson({ results, ok, total: results.length });
        else process.stdout.write(`${ok}/${results.length} answered\n`);
        if (ok < results.length || results.length === 0) process.exitCode = EXIT_FAILURE;
      }),
    );
}

function pingLine(r: WirePingResult): string {
  if (r.outcome === 'ok') return `${r.hostId}  ${r.hostname}  ok  ${r.rttMs.toFixed(1)} ms  seq ${r.seq}`;
  return `${r.hostId}  ${r.hostname}  ${r.outcome}  ${r.errorCode}: ${r.message}`;
}
