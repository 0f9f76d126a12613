/**
 * `convoy-agent supervise`: the supervisor SSH enrollment leaves running where systemd does not;
 * it keeps `convoy-agent run` alive, also across a self-update.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../shared/logger';
import { reportFailure } from './output';

export function registerSupervise(program: Command): void {
  program
    .command('supervise')
    .description(
      'keep `convoy-agent run` alive where systemd does not run (restarts it, also after a self-update)',
    )
    .requiredOption('--state-dir <dir>', 'the agent state directory')
    .option('--pid-file <file>', 'where to write the supervisor pid (default STATE/supervisor.pid)')
    .action(async (flags: { stateDir: string; pidFile?: string }) => {
      try {
        const { supervise } = await import('../install/supervise');
        const stateDir = path.resolve(flags.stateDir);
        await supervise({
          script: path.resolve(process.argv[1] ?? ''),
          stateDir,
          pidFile: path.resolve(flags.pidFile ?? path.join(stateDir, 'supervisor.pid')),
          log: createLogger(
            { sink: (line) => process.stderr.write(line), now: Date.now },
            { component: 'supervisor' },
          ),
        });
      } catch (err) {
        reportFailure(err);
      }
    });
}
