/**
 * `convoy-agent install|uninstall|supervise`: what SSH enrollment runs on the host (its request
 * arrives on stdin, see ../install/request.ts) and the supervisor it leaves running where systemd
 * does not. `--root` prefixes every path, for tests that install into a directory.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../shared/logger';
import { agentLayout } from '../install/layout';

interface InstallFlags {
  requestStdin?: boolean;
  root?: string;
  systemctl?: string;
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (c: Buffer) => {
      size += c.length;
      // The request is small; anything this big is not one (request.ts says why it refuses).
      if (size <= 1024 * 1024) chunks.push(c);
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

export function registerInstallCommands(program: Command, fail: (err: unknown) => void): void {
  for (const name of ['install', 'uninstall'] as const) {
    program
      .command(name)
      .description(
        name === 'install'
          ? 'install this bundle, enroll and start the agent (what `convoy hosts enroll --ssh` runs)'
          : 'stop the agent and remove what install put down (what `convoy hosts decommission --ssh` runs)',
      )
      .requiredOption('--request-stdin', 'read the JSON request from stdin (it may carry the token)')
      .addOption(hidden(program, '--root <dir>', 'prefix for every path (tests)'))
      .addOption(hidden(program, '--systemctl <path>', 'the systemctl to call (tests)'))
      .action(async (flags: InstallFlags) => {
        try {
          const { parseInstallRequest } = await import('../install/request');
          const { install, probeInstall, uninstall } = await import('../install/install');
          const req = parseInstallRequest(await readStdin());
          const env = {
            layout: agentLayout(path.resolve(flags.root ?? '/')),
            script: path.resolve(process.argv[1] ?? ''),
            ...(flags.systemctl === undefined ? {} : { systemctl: flags.systemctl }),
          };
          const report =
            name === 'uninstall' || req.action === 'uninstall'
              ? await uninstall(env)
              : req.action === 'probe'
                ? await probeInstall(env, req)
                : await install(env, req);
          process.stdout.write(JSON.stringify(report) + '\n');
        } catch (err) {
          fail(err);
        }
      });
  }

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
          log: createLogger({ sink: (line) => process.stderr.write(line) }, { component: 'supervisor' }),
        });
      } catch (err) {
        fail(err);
      }
    });
}

function hidden(program: Command, flags: string, description: string): ReturnType<Command['createOption']> {
  return program.createOption(flags, description).hideHelp();
}
