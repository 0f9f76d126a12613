/** Hosts as stored, and their translation to the domain record. */
import type { Labels } from '../../shared/labels';

/** What enters each state: `pending` enrolled with an approval token; `active` approved or
 * enrolled freely; `revoked` by an operator (its key is refused from then on). */
export type HostState = 'pending' | 'active' | 'revoked';

/** What an agent reports about its host; informative only, never used for identity. */
export interface HostFactsRecord {
  readonly hostname: string;
  readonly agentVersion: string;
  readonly osPlatform: string;
  readonly osRelease: string;
  readonly arch: string;
  readonly osPrettyName: string;
  readonly cpus: number;
  readonly memoryBytes: number;
}

export interface HostRecord {
  readonly id: string;
  readonly hostname: string;
  readonly publicKey: Uint8Array;
  readonly keyId: string;
  readonly state: HostState;
  readonly labels: Labels;
  readonly facts: HostFactsRecord;
  readonly agentVersion: string;
  readonly enrolledAtMs: number;
  readonly lastSeenMs: number;
  readonly lastSeq: number;
}

export interface HostRow {
  id: string;
  hostname: string;
  public_key: Buffer;
  key_id: string;
  state: HostState;
  labels_json: string;
  facts_json: string;
  agent_version: string;
  enrolled_at: number;
  last_seen_at: number;
  last_seq: number;
}

export function rowToHost(row: HostRow): HostRecord {
  return {
    id: row.id,
    hostname: row.hostname,
    publicKey: new Uint8Array(row.public_key),
    keyId: row.key_id,
    state: row.state,
    labels: parseJsonObject(row.labels_json) as Labels,
    facts: parseJsonObject(row.facts_json) as unknown as HostFactsRecord,
    agentVersion: row.agent_version,
    enrolledAtMs: row.enrolled_at,
    lastSeenMs: row.last_seen_at,
    lastSeq: row.last_seq,
  };
}

/** Stored JSON is ours; a null-prototype copy keeps a `__proto__` label from meaning anything. */
function parseJsonObject(text: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(text);
  const out = Object.create(null) as Record<string, unknown>;
  if (typeof parsed === 'object' && parsed !== null) Object.assign(out, parsed);
  return out;
}
