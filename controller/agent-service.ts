/** The AgentService handlers: Enroll (token-gated) and Connect (challenge-gated, see gateway). */
import type * as grpc from '@grpc/grpc-js';
import { ConvoyError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import type { WireEnrollRequest, WireEnrollResponse } from '../proto/wire';
import { enrollAgent, type EnrollRateLimiter } from './enrollment';
import { factsFromWire } from './gateway/facts';
import type { AgentGateway } from './gateway/gateway';
import type { AgentStream } from './gateway/session';
import { unary } from './grpc-errors';
import type { ControllerKey } from './signing-key';
import type { Store } from './store/store';

export interface AgentServiceDeps {
  readonly store: Store;
  readonly gateway: AgentGateway;
  readonly key: ControllerKey;
  readonly limiter: EnrollRateLimiter;
  readonly log: Logger;
  readonly now: () => number;
  /** Every new host starts pending, whatever its token says. */
  readonly requireApproval: boolean;
}

export function agentHandlers(deps: AgentServiceDeps): grpc.UntypedServiceImplementation {
  const log = deps.log.child({ component: 'enrollment' });
  return {
    Enroll: unary(log, async (req: WireEnrollRequest, call): Promise<WireEnrollResponse> => {
      const peer = peerAddress(call.getPeer());
      if (!deps.limiter.allow(peer, deps.now())) {
        throw new ConvoyError(
          'ENROLL_RATE_LIMITED',
          'too many enrollment attempts from this address; retry in a minute',
        );
      }
      try {
        const host = await enrollAgent(
          deps.store,
          req.token,
          req.publicKey,
          factsFromWire(req.facts),
          deps.now(),
          deps.requireApproval,
        );
        log.info('host enrolled', { hostId: host.id, state: host.state, peer });
        return {
          hostId: host.id,
          status: host.state,
          controllerPublicKey: Buffer.from(deps.key.publicKey),
          labels: { ...host.labels },
        };
      } catch (err) {
        if (err instanceof ConvoyError) log.warn('enrollment refused', { code: err.code, peer });
        throw err;
      }
    }),
    Connect: (stream: AgentStream) => deps.gateway.handleConnect(stream),
  };
}

/** `ipv4:127.0.0.1:51234` -> `127.0.0.1`: the limit is per address, not per connection. */
function peerAddress(peer: string): string {
  const withoutScheme = peer.replace(/^(ipv4|ipv6|unix):/, '');
  const colon = withoutScheme.lastIndexOf(':');
  return colon > 0 && !withoutScheme.startsWith('/') ? withoutScheme.slice(0, colon) : withoutScheme;
}
