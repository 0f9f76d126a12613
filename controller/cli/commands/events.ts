/** `convoy events`: the audit log (hash-chained), newest `--limit`, of a rollout or a host. */
import type { Command } from 'commander';
import type { EventView } from '../../store/events';
import { parseDoc, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { flagOption, wholeNumber } from '../flags';
import { printJson } from '../output';

type EventsFlags = CommonFlags & { rollout?: string; host?: string; limit: number };

export function registerEvents(program: Command): void {
  withConnectionOptions(program.command('events'))
    .description('the audit log (hash-chained): who did what and when')
    .option('--rollout <id>', 'only events of this rollout')
    .option('--host <id>', 'only events of this host')
    .addOption(
      flagOption(
        '--limit <n>',
        'the newest n',
        // The controller answers with at most this many (controller/rollout/service.ts).
        wholeNumber({ max: 100_000 }),
        '200',
      ),
    )
    .action((flags: EventsFlags) =>
      withClient(flags, async (client) => {
        const events = parseDoc<EventView[]>(
          await client.call('ListEvents', {
            rolloutId: flags.rollout ?? '',
            hostId: flags.host ?? '',
            limit: flags.limit,
          }),
        );
        if (flags.json === true) return printJson(events);
        for (const e of events) {
          const { rolloutId: _r, ...data } = e.data as Record<string, unknown>;
          const detail = Object.keys(data).length > 0 ? ` ${JSON.stringify(data)}` : '';
          process.stdout.write(
            `${new Date(e.at).toISOString()} ${e.actor} ${e.kind}${e.hostId ? ` host=${e.hostId}` : ''}${detail}\n`,
          );
        }
      }),
    );
}
