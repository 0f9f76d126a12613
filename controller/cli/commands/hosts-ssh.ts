/**
 * `convoy hosts enroll --ssh` and `convoy hosts decommission`: install or remove an agent over
 * SSH (controller/ssh/), with the host key pinned and every action checked before it is done.
 * Progress goes to stderr, the result to stdout (JSON with --json).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../../../shared/duration';
import { ConvoyError } from '../../../shared/errors';
import { parsePublicKey } from '../../../shared/keys';
import type { Labels } from '../../../shared/labels';
import type { WireControllerInfo, WireCreatedToken, WireHostView } from '../../../proto/wire';
import { loadKnownHosts, parseFingerprintFlag, type HostKeyPin } from '../../ssh/host-key';
// Types only: ssh2 (about 75 ms of CPU to load) is imported by the two actions that use it, so
// every other command of the CLI starts without it.
import type { ControllerApi, RemoteAgentOptions } from '../../ssh/remote-agent';
import { parseSshTarget, type SshTarget } from '../../ssh/target';
import type { OperatorClient } from '../client';
import { parseLabelsFlag, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson } from '../output';

interface SshFlags extends CommonFlags {
  ssh?: string;
  identity?: string;
  hostKey?: string;
  knownHosts?: string;
  node: string;
  bundle?: string;
}

interface EnrollFlags extends SshFlags {
  labels?: string;
  hostname?: string;
  agentAddress?: string;
  releaseKey: string[];
  wait: string;
  dryRun?: boolean;
  tokenFile?: string;
}

/** Where the bundle is: --bundle, $CONVOY_AGENT_BUNDLE, or what `npm run build:agent` wrote. */
function bundlePath(flag: string | undefined): string {
  const candidates =
    flag !== undefined
      ? [flag]
      : process.env['CONVOY_AGENT_BUNDLE']
        ? [process.env['CONVOY_AGENT_BUNDLE']]
        : [
            // Compiled, this file is dist/controller/cli/commands/; from source, controller/cli/commands/.
            path.resolve(__dirname, '../../../bundle/convoy-agent.js'),
            // Beside the one-file CLI (dist/bundle/convoy.js).
            path.resolve(__dirname, 'convoy-agent.js'),
            path.resolve(__dirname, '../../../dist/bundle/convoy-agent.js'),
          ];
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `the agent bundle is not at ${candidates[0] ?? '?'}: run \`npm run build:agent\` or pass --bundle FILE`,
      { file: candidates[0] ?? '' },
    );
  }
  return found;
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

function hostKeyPin(flags: SshFlags, target: SshTarget): HostKeyPin {
  if (flags.hostKey !== undefined && flags.knownHosts !== undefined) {
    throw new ConvoyError('INVALID_ARGUMENT', 'give --host-key or --known-hosts, not both');
  }
  if (flags.hostKey !== undefined) return parseFingerprintFlag(flags.hostKey);
  if (flags.knownHosts !== undefined) return loadKnownHosts(flags.knownHosts, target);
  throw new ConvoyError(
    'INVALID_ARGUMENT',
    'pin the host key: --host-key SHA256:... (ssh-keygen -lf on the host) or --known-hosts FILE; Convoy never accepts an unknown key',
    { field: 'host-key' },
  );
}

function remoteOptions(flags: SshFlags, sshText: string): RemoteAgentOptions {
  const target = parseSshTarget(sshText);
  const pin = hostKeyPin(flags, target);
  if (!/^[A-Za-z0-9._/+-]+$/.test(flags.node)) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--node ${JSON.stringify(flags.node)}: must be a program name or path`,
      {
        field: 'node',
      },
    );
  }
  const file = bundlePath(flags.bundle);
  return {
    ssh: {
      target,
      pin,
      ...(flags.identity === undefined ? {} : { identityFile: flags.identity }),
    },
    bundle: readFileSync(file),
    node: flags.node,
    say: (line) => {
      if (flags.json !== true) process.stderr.write(`  ${line}\n`);
    },
  };
}

function controllerApi(client: OperatorClient): ControllerApi {
  return {
    info: () => client.call<WireControllerInfo>('GetControllerInfo', {}),
    getHost: async (id) => {
      try {
        return await client.call<WireHostView>('GetHost', { id });
      } catch (err) {
        if (err instanceof ConvoyError && err.code === 'HOST_UNKNOWN') return undefined;
        throw err;
      }
    },
    createToken: (labels: Labels, ttlMs: number) =>
      client.call<WireCreatedToken>('CreateToken', { ttlMs, uses: 1, labels, requireApproval: false }),
    decommission: (id) => client.call<WireHostView>('DecommissionHost', { id }),
  };
}

function sshOptions(cmd: Command): Command {
  return cmd
    .option('--identity <file>', 'private key to log in with (default: the keys of SSH_AUTH_SOCK)')
    .option('--host-key <fingerprint>', "the host's key fingerprint to pin, SHA256:... (ssh-keygen -lf)")
    .option('--known-hosts <file>', 'pin the host key from a known_hosts file')
    .option('--node <path>', 'Node.js 20+ on the host (looked up in the remote PATH)', 'node')
    .option('--bundle <file>', 'the agent bundle to upload (default: what npm run build:agent wrote)');
}

export function registerHostsSsh(hosts: Command): void {
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
    .option('--wait <duration>', 'how long to wait for the agent to come online', '60s')
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
          const waitMs = parseDuration(flags.wait);
          if (waitMs === null)
            throw new ConvoyError(
              'INVALID_ARGUMENT',
              `--wait ${JSON.stringify(flags.wait)}: must be a duration such as 60s`,
            );
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
            waitMs,
            dryRun: flags.dryRun === true,
          };
        },
      ),
    );

  sshOptions(withConnectionOptions(hosts.command('decommission').argument('<id>', 'host id')))
    .description("stop and remove the host's agent (with --ssh), revoke its key and forget its state")
    .option('--ssh <user@host[:port]>', 'also remove the agent from the host over SSH')
    .action((id: string, flags: SshFlags) =>
      withClient(
        flags,
        async (client, opts) => {
          const { decommissionOverSsh } = await import('../../ssh/remote-agent');
          const res = await decommissionOverSsh(controllerApi(client), id, opts);
          if (flags.json === true) return printJson(res);
          process.stdout.write(
            `decommissioned ${res.hostId}${res.target === null ? '' : ` (${res.target})`}\n`,
          );
        },
        () => (flags.ssh === undefined ? undefined : remoteOptions(flags, flags.ssh)),
      ),
    );
}
