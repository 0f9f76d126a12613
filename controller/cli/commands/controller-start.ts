/** `convoy controller start`: the controller in the foreground, its options checked first. */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { parseDuration } from '../../../shared/duration';
import { ConvoyError } from '../../../shared/errors';
import { createLogger, isLogLevel } from '../../../shared/logger';
// Type only: the controller itself (SQLite, the rollout engine, cron) loads when `start` runs,
// so the operator commands that only talk to it start faster.
import type { ControllerOptions } from '../../controller';
import { DEFAULT_GATEWAY_OPTIONS } from '../../gateway/gateway';
import { reportFailure } from '../output';

interface StartFlags {
  stateDir?: string;
  listen: string;
  operatorListen?: string;
  heartbeatInterval: string;
  heartbeatTimeout?: string;
  enrollRate: string;
  requireApproval?: boolean;
  logLevel: string;
  clockStart?: string;
  clockWarp?: boolean;
}

export function registerControllerStart(controller: Command): void {
  controller
    .command('start')
    .description('run the controller in the foreground (SQLite store and keys in --state-dir)')
    .option('--state-dir <dir>', 'where the store, keys and operator socket live [env CONVOY_STATE_DIR]')
    .option('--listen <addr>', 'agent service address, host:port or unix:/path', '127.0.0.1:4860')
    .option(
      '--operator-listen <addr>',
      'also serve the operator API on TCP (bearer token in <state-dir>/operator.token)',
    )
    .option('--heartbeat-interval <duration>', 'how often agents heartbeat', '10s')
    .option('--heartbeat-timeout <duration>', 'silence after which a host is offline (default 3 intervals)')
    .option('--enroll-rate <perMinute>', 'enrollment attempts allowed per peer address per minute', '600')
    .option('--require-approval', 'keep every newly enrolled host pending until `convoy hosts approve ID`')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .addOption(
      new Option('--clock-start <time>', 'demo/tests: run the scheduler clock from this ISO time').hideHelp(),
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
  const interval = parseDuration(flags.heartbeatInterval);
  if (interval === null)
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--heartbeat-interval ${JSON.stringify(flags.heartbeatInterval)}: not a duration`,
    );
  const timeout = flags.heartbeatTimeout === undefined ? interval * 3 : parseDuration(flags.heartbeatTimeout);
  if (timeout === null || timeout <= interval) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      '--heartbeat-timeout must be a duration longer than --heartbeat-interval',
    );
  }
  const enrollPerMinute = Number(flags.enrollRate);
  if (!/^\d+$/.test(flags.enrollRate) || !Number.isSafeInteger(enrollPerMinute) || enrollPerMinute < 1)
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--enroll-rate ${JSON.stringify(flags.enrollRate)}: must be a positive integer`,
      { field: 'enroll-rate' },
    );
  if (!isLogLevel(flags.logLevel))
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--log-level ${JSON.stringify(flags.logLevel)}: use debug, info, warn or error`,
    );
  let clockStartMs: number | undefined;
  if (flags.clockStart !== undefined) {
    clockStartMs = Date.parse(flags.clockStart);
    if (!Number.isFinite(clockStartMs))
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `--clock-start ${JSON.stringify(flags.clockStart)}: not an ISO time`,
        {
          field: 'clock-start',
        },
      );
  }
  return {
    clockStartMs,
    clockWarp: flags.clockWarp === true,
    stateDir: path.resolve(stateDir),
    listen: flags.listen,
    operatorListen: flags.operatorListen,
    gateway: { ...DEFAULT_GATEWAY_OPTIONS, heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout },
    enrollPerMinute,
    requireApproval: flags.requireApproval === true,
    lastSeenFlushMs: 15_000,
    keepaliveMs: 30_000,
  };
}

async function startController(options: ControllerOptions, level: string): Promise<void> {
  const log = createLogger(
    { sink: (line) => process.stderr.write(line), level: isLogLevel(level) ? level : 'info', now: Date.now },
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
