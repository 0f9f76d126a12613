/**
 * Default-deny: every RPC has an explicit policy, and a server refuses to start when a service
 * has a method without one (Salt CVE-2020-11651 was an RPC nobody guarded).
 */
import type * as grpc from '@grpc/grpc-js';

/**
 * `enrollment`: the request carries a one-time token, nothing else is trusted.
 * `agent`: the caller proves its identity with a signed challenge on the stream.
 * `operator`: unix socket (file mode 0600) or TCP with the operator bearer token.
 */
export type CallPolicy = 'enrollment' | 'agent' | 'operator';

export const AGENT_SERVICE_POLICY: Readonly<Record<string, CallPolicy>> = Object.freeze({
  Enroll: 'enrollment',
  Connect: 'agent',
});

export const OPERATOR_SERVICE_POLICY: Readonly<Record<string, CallPolicy>> = Object.freeze({
  GetControllerInfo: 'operator',
  GetStatus: 'operator',
  ListHosts: 'operator',
  GetHost: 'operator',
  ApproveHost: 'operator',
  RevokeHost: 'operator',
  DecommissionHost: 'operator',
  CreateToken: 'operator',
  Ping: 'operator',
  QueryAgent: 'operator',
  RunPhase: 'operator',
  ApplyFleet: 'operator',
  ListDeployments: 'operator',
  PlanRollout: 'operator',
  StartRollout: 'operator',
  GetRollout: 'operator',
  ListRollouts: 'operator',
  ActOnRollout: 'operator',
  ListEvents: 'operator',
});

/** Throws naming every method of `service` that has no policy. */
export function assertEveryMethodHasPolicy(
  serviceName: string,
  service: grpc.ServiceDefinition,
  policy: Readonly<Record<string, CallPolicy>>,
): void {
  const missing = Object.keys(service).filter((m) => !Object.prototype.hasOwnProperty.call(policy, m));
  if (missing.length > 0) throw new Error(`${serviceName}: no call policy for ${missing.join(', ')}`);
}
