/** `convoy ping`: a signed no-op to every matching agent, one line per round trip. */
import type { Command } from 'commander';
import type { Labels } from '../../../shared/labels';
import type { WirePingResult } from '../../../proto/wire';
import { parseLabelsFlag, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { duration, flagOption, MAX_UINT32_DURATION } from '../flags';
import { EXIT_FAILURE, printJson } from '../output';

export function registerPing(program: Command): void {
  withConnectionOptions(program.command('ping'))
    .description('send a signed no-op to every matching agent and print each round trip')
    .option('--select <labels>', 'only hosts with these labels, k=v,...')
    .addOption(
      flagOption(
        '--timeout <duration>',
        'how long to wait for each agent',
        duration({ max: MAX_UINT32_DURATION }),
        '5s',
      ),
    )
    .action((flags: PingFlags) =>
      withClient(
        flags,
        async (client, request) => {
          const results: WirePingResult[] = [];
          await client.stream<WirePingResult>('Ping', request, (r) => {
            results.push(r);
            if (flags.json !== true) process.stdout.write(pingLine(r) + '\n');
          });
          const ok = results.filter((r) => r.outcome === 'ok').length;
          if (flags.json === true) printJson({ results, ok, total: results.length });
          else process.stdout.write(`${ok}/${results.length} answered\n`);
          if (ok < results.length || results.length === 0) process.exitCode = EXIT_FAILURE;
        },
        () => pingRequest(flags),
      ),
    );
}

type PingFlags = CommonFlags & { select?: string; timeout: number };

function pingRequest(flags: PingFlags): { selector: Labels; timeoutMs: number } {
  return { selector: parseLabelsFlag('--select', flags.select), timeoutMs: flags.timeout };
}

function pingLine(r: WirePingResult): string {
  if (r.outcome === 'ok') return `${r.hostId}  ${r.hostname}  ok  ${r.rttMs.toFixed(1)} ms  seq ${r.seq}`;
  return `${r.hostId}  ${r.hostname}  ${r.outcome}  ${r.errorCode}: ${r.message}`;
}
