/**
 * What the controller's services are given: the store, the agent gateway, the signing key, the
 * logger and the wall clock. One interface, in a module of its own, so that the operator API and
 * the rollout engine both take it without importing each other.
 */
import type { Logger } from '../shared/logger';
import type { AgentGateway } from './gateway/gateway';
import type { ControllerKey } from './signing-key';
import type { Store } from './store/store';

export interface OperatorDeps {
  readonly store: Store;
  readonly gateway: AgentGateway;
  readonly key: ControllerKey;
  readonly agentListen: string;
  readonly log: Logger;
  readonly now: () => number;
}
