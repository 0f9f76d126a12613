/**
 * TypeScript shapes of the convoy.v1 messages as proto-loader decodes them (see ./load). Field
 * documentation lives in the .proto files; these only mirror them.
 */

export interface WireHostFacts {
  hostname: string;
  agentVersion: string;
  osPlatform: string;
  osRelease: string;
  arch: string;
  osPrettyName: string;
  cpus: number;
  memoryBytes: number;
}

export interface WireEnrollRequest {
  token: string;
  publicKey: Buffer;
  facts: WireHostFacts | null;
}

export interface WireEnrollResponse {
  hostId: string;
  status: string;
  controllerPublicKey: Buffer;
  labels: Record<string, string>;
}

export interface WireSignedEnvelope {
  payload: Buffer;
  signature: Buffer;
  keyId: string;
}

export type WireAgentMessage =
  | { body: 'hello'; hello: { hostId: string; facts: WireHostFacts | null } }
  | { body: 'challengeResponse'; challengeResponse: { signature: Buffer } }
  | { body: 'envelope'; envelope: WireSignedEnvelope }
  | { body: 'heartbeat'; heartbeat: { agentTimeMs: number } };

export type WireControllerMessage =
  | { body: 'challenge'; challenge: { nonce: Buffer; controllerTimeMs: number } }
  | { body: 'welcome'; welcome: { heartbeatIntervalMs: number; lastSeq: number } }
  | { body: 'envelope'; envelope: WireSignedEnvelope }
  | { body: 'heartbeatAck'; heartbeatAck: { controllerTimeMs: number } };

/** What we write: proto-loader needs only the set member, not the `body` discriminator. */
export type OutgoingAgentMessage =
  | { hello: { hostId: string; facts: WireHostFacts } }
  | { challengeResponse: { signature: Uint8Array } }
  | { envelope: { payload: Uint8Array; signature: Uint8Array; keyId: string } }
  | { heartbeat: { agentTimeMs: number } };

export type OutgoingControllerMessage =
  | { challenge: { nonce: Uint8Array; controllerTimeMs: number } }
  | { welcome: { heartbeatIntervalMs: number; lastSeq: number } }
  | { envelope: { payload: Uint8Array; signature: Uint8Array; keyId: string } }
  | { heartbeatAck: { controllerTimeMs: number } };

export interface WireHostView {
  id: string;
  hostname: string;
  state: string;
  online: boolean;
  lastSeenMs: number;
  agentVersion: string;
  labels: Record<string, string>;
  enrolledAtMs: number;
  osPlatform: string;
  osRelease: string;
  arch: string;
  osPrettyName: string;
  lastSeq: number;
  keyId: string;
  deployment: string;
  application: string;
  installedVersion: string;
  stagedVersion: string;
  maintenance: boolean;
  lastBackupId: string;
  lastHealth: string;
  lastHealthAtMs: number;
  currentRollout: string;
  clockSkewMs: number;
  /** One per deployment on the host (GetStatus only; empty from ListHosts). */
  apps: WireHostApp[];
}

export interface WireHostApp {
  deployment: string;
  application: string;
  installedVersion: string;
  stagedVersion: string;
  maintenance: boolean;
  lastBackupId: string;
  lastHealth: string;
  lastHealthAtMs: number;
  currentRollout: string;
}

export interface WireControllerInfo {
  publicKey: string;
  keyId: string;
  version: string;
  agentListen: string;
}

export interface WireCreateTokenRequest {
  ttlMs: number;
  uses: number;
  labels: Record<string, string>;
  requireApproval: boolean;
}

export interface WireCreatedToken {
  token: string;
  tokenId: string;
  expiresAtMs: number;
  uses: number;
}

export interface WirePingRequest {
  selector: Record<string, string>;
  timeoutMs: number;
}

export interface WirePingResult {
  hostId: string;
  hostname: string;
  outcome: string;
  rttMs: number;
  seq: number;
  errorCode: string;
  message: string;
}

export interface WireAgentReport {
  hostId: string;
  hostname: string;
  agentVersion: string;
  uptimeMs: number;
  lastSeq: number;
  pid: number;
  rssBytes: number;
  rttMs: number;
  phaseJournal: string;
}

export interface WireRunPhaseRequest {
  hostId: string;
  recipeYaml: string;
  recipeLabel: string;
  phase: string;
  vars: Record<string, string>;
  target: string;
  installed: string;
  timeoutMs: number;
  runId: string;
  approve: boolean;
  override: boolean;
  reason: string;
}

export interface WireStepReport {
  stepId: string;
  type: string;
  status: string;
  attempts: number;
  ok: boolean;
  exitCode: number;
  durationMs: number;
  outputTail: string;
  backupId: string;
  versions: string[];
  errorCode: string;
  errorMessage: string;
}

export interface WirePhaseReport {
  runId: string;
  hostId: string;
  recipe: string;
  digest: string;
  phase: string;
  ok: boolean;
  resumed: string;
  steps: WireStepReport[];
  seq: number;
  phaseRunId: string;
  installed: string;
  available: string[];
}
