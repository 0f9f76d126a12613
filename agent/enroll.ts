/**
 * `convoy-agent enroll`: generate the agent key, trade the one-time token for a host id, check
 * the controller's key against the pinned one, and only then write the key and config (0600).
 * On any failure nothing is written.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateKeyPair } from '../shared/ed25519';
import { ConvoyError, isErrorCode } from '../shared/errors';
import { formatPublicKey, parsePublicKey } from '../shared/keys';
import { loadConvoyProtos } from '../proto/load';
import type { WireEnrollResponse } from '../proto/wire';
import { CONFIG_FILE, compileAgentConfig, isAddress, KEY_FILE, type AgentConfigFile } from './config';
import { collectHostFacts } from './facts';
import { writeFileAtomic } from './identity';

export interface EnrollRequest {
  readonly controller: string;
  readonly token: string;
  readonly controllerKey: string;
  readonly stateDir: string;
  readonly hostname?: string;
  readonly timeoutMs?: number;
  /** Release keys (`ed25519:<base64>`) to pin for signed artifacts, such as agent self-updates. */
  readonly releaseKeys?: readonly string[];
}

export interface EnrollOutcome {
  readonly hostId: string;
  readonly status: string;
  readonly labels: Record<string, string>;
  readonly configFile: string;
}

export async function enrollAgent(req: EnrollRequest): Promise<EnrollOutcome> {
  const pinned = parsePublicKey(req.controllerKey);
  if (pinned === null)
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      '--controller-key: must be an Ed25519 public key (ed25519:<base64>)',
      { field: 'controller-key' },
    );
  if (!isAddress(req.controller))
    throw new ConvoyError('INVALID_ARGUMENT', '--controller: must be host:port or unix:/path', {
      field: 'controller',
    });
  const badKey = (req.releaseKeys ?? []).find((k) => parsePublicKey(k) === null);
  if (badKey !== undefined)
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `--release-key ${JSON.stringify(badKey)}: must be an Ed25519 public key (ed25519:<base64>)`,
      {
        field: 'release-key',
      },
    );
  if (req.token.trim() === '')
    throw new ConvoyError('INVALID_ARGUMENT', 'an enrollment token is required', { field: 'token' });
  const stateDir = path.resolve(req.stateDir);
  const configFile = path.join(stateDir, CONFIG_FILE);
  if (existsSync(configFile)) {
    throw new ConvoyError(
      'ALREADY_ENROLLED',
      `${configFile} exists: this state directory is enrolled already`,
      { file: configFile },
    );
  }
  const pair = generateKeyPair();
  const res = await callEnroll(req, pair.publicKey);
  if (!Buffer.from(res.controllerPublicKey).equals(Buffer.from(pinned))) {
    throw new ConvoyError(
      'CONTROLLER_KEY_MISMATCH',
      `controller at ${req.controller} presented ${formatPublicKey(res.controllerPublicKey)}, not the pinned key; nothing written`,
    );
  }
  const config: AgentConfigFile = {
    controller: req.controller,
    controllerKey: formatPublicKey(pinned),
    hostId: res.hostId,
  };
  if (req.hostname !== undefined) config.hostname = req.hostname;
  if (req.releaseKeys !== undefined && req.releaseKeys.length > 0) config.releaseKeys = [...req.releaseKeys];
  // JSON is YAML too; the daemon reads this form without loading a YAML parser (agent/config.ts).
  const text = JSON.stringify(config, null, 2) + '\n';
  compileAgentConfig(text, configFile); // what we write must load; a bug here should not reach disk
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(path.join(stateDir, KEY_FILE), Buffer.from(pair.secretKey).toString('base64') + '\n');
  writeFileAtomic(configFile, text);
  return { hostId: res.hostId, status: res.status, labels: res.labels, configFile };
}

function callEnroll(req: EnrollRequest, publicKey: Uint8Array): Promise<WireEnrollResponse> {
  const { AgentService } = loadConvoyProtos();
  const client = new AgentService(
    req.controller,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Enroll(
      r: object,
      o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, r: WireEnrollResponse) => void,
    ): void;
  };
  const request = {
    token: req.token.trim(),
    publicKey: Buffer.from(publicKey),
    facts: collectHostFacts(req.hostname),
  };
  return new Promise<WireEnrollResponse>((resolve, reject) => {
    client.Enroll(request, { deadline: Date.now() + (req.timeoutMs ?? 15_000) }, (err, res) => {
      client.close();
      if (err === null) return resolve(res);
      const m = /^([A-Z_]+): (.*)$/s.exec(err.details ?? '');
      if (m?.[1] !== undefined && isErrorCode(m[1])) return reject(new ConvoyError(m[1], m[2] ?? ''));
      reject(
        new ConvoyError(
          'CONTROLLER_UNREACHABLE',
          `controller at ${req.controller}: ${err.details || err.message}`,
        ),
      );
    });
  });
}
