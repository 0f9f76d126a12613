/**
 * `convoy-agent install|uninstall`: what SSH enrollment runs on the host, its request arriving on
 * stdin (see ../install/request.ts). The two differ only by name and help (a request may also ask
 * install for `uninstall` or `probe`), so one registrar makes both. `--root` prefixes every path,
 * for tests that install into a directory.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { agentLayout } from '../install/layout';
import { reportFailure } from './output';

interface InstallFlags {
  requestStdin?: boolean;
  root?: string;
  systemctl?: string;
}

const INSTALL_HELP = {
  install: 'install this bundle, enroll and start the agent (what `convoy hosts enroll --ssh` runs)',
  uninstall: 'stop the agent and remove what install put down (what `convoy hosts decommission --ssh` runs)',
} as const;

export function registerInstallCommands(program: Command): void {
  for (const [name, description] of Object.entries(INSTALL_HELP)) {
    program
      .command(name)
      .description(description)
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
          reportFailure(err);
        }
      });
  }
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

function hidden(program: Command, flags: string, description: string): ReturnType<Command['createOption']> {
  return program.createOption(flags, description).hideHelp();
}
