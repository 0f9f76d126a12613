/** `convoy-agent run`: the daemon. Connects to the controller and serves its signed commands until stopped. */
import path from 'node:path';
import type { Command } from 'commander';
import { ConvoyError } from '../../shared/errors';
import { createLogger, type LogLevel } from '../../shared/logger';
import { Agent } from '../agent';
import { CONFIG_FILE, loadAgentConfig } from '../config';
import { readAgentKey } from '../identity';
import { RESTART_EXIT_CODE } from '../install/systemd-unit';
import { LOG_LEVELS, oneOfOption } from './flags';
import { reportFailure } from './output';

interface RunFlags {
  stateDir?: string;
  config?: string;
  logLevel?: LogLevel;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('connect to the controller and serve its signed commands until stopped')
    .option('--state-dir <dir>', `directory holding ${CONFIG_FILE}`)
    .option('--config <file>', 'the agent configuration file')
    .addOption(oneOfOption('--log-level <level>', 'override the configured log level', LOG_LEVELS))
    .action(async (flags: RunFlags) => {
      try {
        await runAgent(flags);
      } catch (err) {
        reportFailure(err);
      }
    });
}

async function runAgent(flags: RunFlags): Promise<void> {
  if (flags.config === undefined && flags.stateDir === undefined) {
    throw new ConvoyError('INVALID_ARGUMENT', 'say which agent to run: --state-dir DIR or --config FILE');
  }
  const file = flags.config ?? path.join(flags.stateDir ?? '.', CONFIG_FILE);
  const config = loadAgentConfig(path.resolve(file));
  const key = readAgentKey(config.stateDir);
  const level = flags.logLevel ?? config.logLevel;
  const log = createLogger(
    { sink: (line) => process.stderr.write(line), level, now: Date.now },
    { component: 'agent', hostId: config.hostId },
  );
  // systemd names each service run (INVOCATION_ID); `convoy-agent supervise` marks its child.
  const supervised = process.env['CONVOY_SUPERVISED'] === '1' || process.env['INVOCATION_ID'] !== undefined;
  const requestRestart = (): void => {
    log.info('exiting for the supervisor to start the new bundle', { code: RESTART_EXIT_CODE });
    // The journal already holds the step as current and fsynced; nothing else needs to be kept.
    setImmediate(() => process.exit(RESTART_EXIT_CODE));
  };
  const agent = new Agent(config, key, { log, ...(supervised ? { requestRestart } : {}) });
  agent.start();
  const stop = (signal: string): void => {
    log.info('stopping', { signal });
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
