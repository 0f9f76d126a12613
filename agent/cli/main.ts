/** The `convoy-agent` daemon CLI: `enroll` once, then `run`. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { ConvoyError } from '../../shared/errors';
import { createLogger } from '../../shared/logger';
import { CONVOY_VERSION } from '../../shared/version';
import { Agent } from '../agent';
import { CONFIG_FILE, loadAgentConfig } from '../config';
import { readAgentKey } from '../identity';
import { RESTART_EXIT_CODE } from '../install/systemd-unit';
import { registerInstallCommands } from './install-commands';
import { registerPhaseRun } from './phase-run';

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

export function buildProgram(): Command {
  const program = new Command('convoy-agent')
    .description('The Convoy agent: one per host; runs what the controller signs.')
    .version(CONVOY_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

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
          (flags.tokenFile ? readFileSync(flags.tokenFile, 'utf8') : process.env['CONVOY_ENROLL_TOKEN']) ??
          '';
        // Loaded only here: enrollment needs proto-loader, which the daemon never loads.
        const { enrollAgent } = await import('../enroll');
        const { releaseKey, ...rest } = flags;
        const res = await enrollAgent({ ...rest, token, releaseKeys: releaseKey });
        if (flags.json === true) process.stdout.write(JSON.stringify(res) + '\n');
        else process.stdout.write(`enrolled as ${res.hostId} (${res.status}); config ${res.configFile}\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('run')
    .description('connect to the controller and serve its signed commands until stopped')
    .option('--state-dir <dir>', `directory holding ${CONFIG_FILE}`)
    .option('--config <file>', 'the agent configuration file')
    .option('--log-level <level>', 'override the configured log level')
    .action(async (flags: { stateDir?: string; config?: string; logLevel?: string }) => {
      try {
        await runAgent(flags);
      } catch (err) {
        fail(err);
      }
    });
  registerPhaseRun(program, fail);
  registerInstallCommands(program, fail);
  return program;
}

async function runAgent(flags: { stateDir?: string; config?: string; logLevel?: string }): Promise<void> {
  if (flags.config === undefined && flags.stateDir === undefined) {
    throw new ConvoyError('INVALID_ARGUMENT', 'say which agent to run: --state-dir DIR or --config FILE');
  }
  const file = flags.config ?? path.join(flags.stateDir ?? '.', CONFIG_FILE);
  const config = loadAgentConfig(path.resolve(file));
  const key = readAgentKey(config.stateDir);
  const level =
    flags.logLevel === 'debug' ||
    flags.logLevel === 'warn' ||
    flags.logLevel === 'error' ||
    flags.logLevel === 'info'
      ? flags.logLevel
      : config.logLevel;
  const log = createLogger(
    { sink: (line) => process.stderr.write(line), level },
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

function fail(err: unknown): void {
  const code = err instanceof ConvoyError ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`convoy-agent: ${code}: ${message.split('\n')[0] ?? ''}\n`);
  process.exitCode = code === 'INVALID_ARGUMENT' ? 2 : 1;
}

export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    throw err;
  }
}
