/** Default-deny: every RPC of both services has a call policy, and a missing one stops the server. */
import { loadConvoyProtos } from '../../proto/load';
import {
  AGENT_SERVICE_POLICY,
  assertEveryMethodHasPolicy,
  OPERATOR_SERVICE_POLICY,
} from '../../controller/policy';

describe('call policies', () => {
  const protos = loadConvoyProtos();

  it('cover every method of both services', () => {
    expect(() =>
      assertEveryMethodHasPolicy('AgentService', protos.AgentService.service, AGENT_SERVICE_POLICY),
    ).not.toThrow();
    expect(() =>
      assertEveryMethodHasPolicy('OperatorService', protos.OperatorService.service, OPERATOR_SERVICE_POLICY),
    ).not.toThrow();
    expect(Object.keys(protos.AgentService.service).sort()).toEqual(Object.keys(AGENT_SERVICE_POLICY).sort());
    expect(Object.keys(protos.OperatorService.service).sort()).toEqual(
      Object.keys(OPERATOR_SERVICE_POLICY).sort(),
    );
  });

  it('refuse a service with a method nobody gave a policy', () => {
    const withExtra = {
      ...protos.OperatorService.service,
      DropEverything: protos.OperatorService.service['GetStatus'],
    };
    expect(() =>
      assertEveryMethodHasPolicy(
        'OperatorService',
        withExtra as typeof protos.OperatorService.service,
        OPERATOR_SERVICE_POLICY,
      ),
    ).toThrow('OperatorService: no call policy for DropEverything');
  });
});
