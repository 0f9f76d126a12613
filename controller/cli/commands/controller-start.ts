/** `convoy controller start`: the controller in the foreground, its options checked first. */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import { createLogger, type LogLevel } from '../../../shared/logger';
// Type only: the controller itself (SQLite, the rollout engine, cron) loads when `start` runs,
// so the operator commands that only talk to it start faster.
import type { ControllerOptions } from '../../controller';
import { DEFAULT_GATEWAY_OPTIONS } from '../../gateway/gateway';
import {
  duration,
  flagOption,
  isoTime,
  listenAddress,
  LOG_LEVELS,
  oneOf,
  MAX_TIMER_DURATION,
  wholeNumber,
} from '../flags';
import { reportFailure } from '../output';

interface StartFlags {
  stateDir?: string;
  listen: string;
  operatorListen?: string;
  heartbeatInterval: number;
  heartbeatTimeout?: number;
  enrollRate: number;
  requireApproval?: boolean;
  logLevel: LogLevel;
  clockStart?: number;
  clockWarp?: boolean;
}

// The gateway's watchdog ticks on a timer.
const heartbeat = duration({ max: MAX_TIMER_DURATION });

export function registerControllerStart(controller: Command): void {
  controller
    .command('start')
    .description('run the controller in the foreground (SQLite store and keys in --state-dir)')
    .option('--state-dir <dir>', 'where the store, keys and operator socket live [env CONVOY_STATE_DIR]')
    .addOption(
      flagOption(
        '--listen <addr>',
        'agent service address, host:port or unix:/path',
        listenAddress,
        '127.0.0.1:4860',
      ),
    )
    .addOption(
      flagOption(
        '--operator-listen <addr>',
        'also serve the operator API on TCP (bearer token in <state-dir>/operator.token)',
        listenAddress,
      ),
    )
    .addOption(flagOption('--heartbeat-interval <duration>', 'how often agents heartbeat', heartbeat, '10s'))
    .addOption(
      flagOption(
        '--heartbeat-timeout <duration>',
        'silence after which a host is offline (default 3 intervals)',
        heartbeat,
      ),
    )
    .addOption(
      flagOption(
        '--enroll-rate <perMinute>',
        'enrollment attempts allowed per peer address per minute',
        wholeNumber(),
        '600',
      ),
    )
    .option('--require-approval', 'keep every newly enrolled host pending until `convoy hosts approve ID`')
    .addOption(flagOption('--log-level <level>', 'debug, info, warn or error', oneOf(LOG_LEVELS), 'info'))
    .addOption(
      flagOption(
        '--clock-start <time>',
        'demo/tests: run the scheduler clock from this ISO time',
        isoTime,
      ).hideHelp(),
    )
    .addOption(
      new Option(
        '--clock-warp',
        'demo/tests: jump the scheduler clock to the next scheduled instant when idle',
      ).hideHelp(),
    )
    .action(async (flags: StartFlags) => {
      try {
        await startController(compileStartOptions(flags), flags.logLevel);
      } catch (err) {
        reportFailure(err, false);
      }
    });
}

function compileStartOptions(flags: StartFlags): ControllerOptions {
  const stateDir = flags.stateDir ?? process.env['CONVOY_STATE_DIR'];
  if (stateDir === undefined || stateDir === '')
    throw new ConvoyError('INVALID_ARGUMENT', '--state-dir is required');
  const interval = flags.heartbeatInterval;
  const timeout = flags.heartbeatTimeout ?? interval * 3;
  if (timeout <= interval) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      '--heartbeat-timeout must be a duration longer than --heartbeat-interval',
    );
  }
  return {
    clockStartMs: flags.clockStart,
    clockWarp: flags.clockWarp === true,
    stateDir: path.resolve(stateDir),
    listen: flags.listen,
    operatorListen: flags.operatorListen,
    gateway: { ...DEFAULT_GATEWAY_OPTIONS, heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout },
    enrollPerMinute: flags.enrollRate,
    requireApproval: flags.requireApproval === true,
    lastSeenFlushMs: 15_000,
    keepaliveMs: 30_000,
  };
}

async function startController(options: ControllerOptions, level: LogLevel): Promise<void> {
  const log = createLogger(
    { sink: (line) => process.stderr.write(line), level, now: Date.now },
    { component: 'controller' },
  );
  const { Controller } = await import('../../controller');
  const controller = await Controller.start(options, log);
  process.stdout.write(
    `controller listening for agents on ${controller.agentAddress}; key ${controller.key.publicText}\n`,
  );
  if (controller.operatorAddress !== undefined) {
    const tokenFile = path.join(options.stateDir, 'operator.token');
    process.stdout.write(`operator API on ${controller.operatorAddress} (bearer token in ${tokenFile})\n`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    controller.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('stop failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
