/**
 * What `convoy hosts enroll --ssh` and `convoy hosts decommission --ssh` share: the SSH options,
 * the host key pin, the agent bundle to upload, and the controller calls the installer makes
 * (controller/ssh/). Every option is checked before anything connects.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConvoyError } from '../../../shared/errors';
import type { Labels } from '../../../shared/labels';
import type { WireControllerInfo, WireCreatedToken, WireHostView } from '../../../proto/wire';
import { loadKnownHosts, parseFingerprintFlag, type HostKeyPin } from '../../ssh/host-key';
// Types only: ssh2 (about 75 ms of CPU to load) is imported by the two actions that use it, so
// every other command of the CLI starts without it.
import type { ControllerApi, RemoteAgentOptions } from '../../ssh/remote-agent';
import { parseSshTarget, type SshTarget } from '../../ssh/target';
import type { OperatorClient } from '../client';
import type { CommonFlags } from '../common';

export interface SshFlags extends CommonFlags {
  ssh?: string;
  identity?: string;
  hostKey?: string;
  knownHosts?: string;
  node: string;
  bundle?: string;
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

export function remoteOptions(flags: SshFlags, sshText: string): RemoteAgentOptions {
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

export function controllerApi(client: OperatorClient): ControllerApi {
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

export function sshOptions(cmd: Command): Command {
  return cmd
    .option('--identity <file>', 'private key to log in with (default: the keys of SSH_AUTH_SOCK)')
    .option('--host-key <fingerprint>', "the host's key fingerprint to pin, SHA256:... (ssh-keygen -lf)")
    .option('--known-hosts <file>', 'pin the host key from a known_hosts file')
    .option('--node <path>', 'Node.js 20+ on the host (looked up in the remote PATH)', 'node')
    .option('--bundle <file>', 'the agent bundle to upload (default: what npm run build:agent wrote)');
}
