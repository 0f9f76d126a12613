/**
 * `convoy hosts enroll --ssh USER@HOST`: install, enroll and start an agent over SSH, with the host
 * key pinned and every action checked before it is done; a second run changes nothing. Progress
 * goes to stderr, the result to stdout (JSON with --json).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import { parsePublicKey } from '../../../shared/keys';
import { parseLabelsFlag, withClient, withConnectionOptions } from '../common';
import { duration, flagOption } from '../flags';
import { printJson } from '../output';
import { controllerApi, remoteOptions, sshOptions, type SshFlags } from './ssh-install';

interface EnrollFlags extends SshFlags {
  labels?: string;
  hostname?: string;
  agentAddress?: string;
  releaseKey: string[];
  wait: number;
  dryRun?: boolean;
  tokenFile?: string;
}

function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--token-file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { file },
    );
  }
  // The message never quotes the file's content: it may be the secret.
  if (!/^tok_[0-9a-f]{16}\.[A-Za-z0-9_-]{16,}$/.test(text))
    throw new ConvoyError('INVALID_ARGUMENT', `--token-file ${file}: does not hold an enrollment token`, {
      file,
    });
  return text;
}

export function registerHostsEnroll(hosts: Command): void {
  sshOptions(withConnectionOptions(hosts.command('enroll')))
    .description('install, enroll and start an agent over SSH; a second run changes nothing')
    .requiredOption('--ssh <user@host[:port]>', 'where to install the agent')
    .option('--labels <labels>', 'labels for the new host, k=v,...')
    .option('--hostname <name>', 'host name the agent reports instead of its own')
    .option(
      '--agent-address <host:port>',
      "the controller's agent address as the host dials it (default: the controller's)",
    )
    .option(
      '--release-key <key>',
      'a release key (ed25519:...) the agent trusts for signed artifacts such as its own updates; repeatable',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      '--token-file <file>',
      'use this enrollment token (convoy token create: approval, labels, uses) instead of a fresh one-use token',
    )
    .addOption(
      flagOption('--wait <duration>', 'how long to wait for the agent to come online', duration(), '60s'),
    )
    .option('--dry-run', 'print every action without connecting to the host or changing anything')
    .action((flags: EnrollFlags) =>
      withClient(
        flags,
        async (client, args) => {
          const { enrollOverSsh } = await import('../../ssh/remote-agent');
          const res = await enrollOverSsh(controllerApi(client), args);
          if (flags.json === true) return printJson(res);
          if (res.dryRun) return;
          const state =
            res.pending === true ? `pending approval: convoy hosts approve ${res.hostId}` : 'online';
          process.stdout.write(
            res.changed
              ? `enrolled ${res.target} as ${res.hostId} (${state})\n`
              : `${res.target} is already enrolled as ${res.hostId} (${state}); nothing changed\n`,
          );
        },
        () => {
          for (const k of flags.releaseKey) {
            if (parsePublicKey(k) === null)
              throw new ConvoyError(
                'INVALID_ARGUMENT',
                `--release-key ${JSON.stringify(k)}: must be ed25519:<base64>`,
                {
                  field: 'release-key',
                },
              );
          }
          if (flags.tokenFile !== undefined && flags.labels !== undefined)
            throw new ConvoyError(
              'INVALID_ARGUMENT',
              '--labels come with the token; give them to `convoy token create`, not with --token-file',
            );
          const token = flags.tokenFile === undefined ? undefined : readTokenFile(flags.tokenFile);
          return {
            ...remoteOptions(flags, flags.ssh ?? ''),
            ...(token === undefined ? {} : { token }),
            labels: parseLabelsFlag('--labels', flags.labels),
            ...(flags.hostname === undefined ? {} : { hostname: flags.hostname }),
            ...(flags.agentAddress === undefined ? {} : { agentAddress: flags.agentAddress }),
            releaseKeys: flags.releaseKey,
            waitMs: flags.wait,
            dryRun: flags.dryRun === true,
          };
        },
      ),
    );
}
