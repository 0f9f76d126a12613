/** The rollout half of the OperatorService: wire messages in, documents (JSON) out. */
import type * as grpc from '@grpc/grpc-js';
import { ConvoyError } from '../../shared/errors';
import { unary } from '../grpc-errors';
import { applyDeployments, listDeployments } from '../rollout/deployment-store';
import type { StoredDeployment } from '../rollout/plan';
import { listRollouts } from '../rollout/rollout-store';
import {
  getRolloutView,
  listEvents,
  planFor,
  rolloutView,
  startRollout,
  type RolloutRequest,
  type RolloutServiceDeps,
} from '../rollout/service';

const ACTIONS = ['pause', 'resume', 'abort', 'retry', 'rollback', 'resolve'] as const;
type Action = (typeof ACTIONS)[number];

interface JsonDocument {
  json: string;
}

const doc = (value: unknown): JsonDocument => ({ json: JSON.stringify(value) });

export function rolloutHandlers(deps: RolloutServiceDeps): grpc.UntypedServiceImplementation {
  const { log } = deps;
  return {
    ApplyFleet: unary(log, async (req: { deploymentsJson: string; dryRun: boolean; source: string }) => {
      let incoming: StoredDeployment[];
      try {
        incoming = JSON.parse(req.deploymentsJson) as StoredDeployment[];
      } catch {
        throw new ConvoyError('INVALID_ARGUMENT', 'deployments_json is not JSON', {
          field: 'deployments_json',
        });
      }
      if (!Array.isArray(incoming))
        throw new ConvoyError('INVALID_ARGUMENT', 'deployments_json must be an array', {
          field: 'deployments_json',
        });
      const changes = await applyDeployments(deps.store, incoming, {
        dryRun: req.dryRun,
        source: req.source.slice(0, 500),
        actor: 'operator',
        nowMs: deps.now(),
      });
      return { changes: changes.map((c) => ({ ...c, diff: [...c.diff] })) };
    }),
    ListDeployments: unary(log, async () =>
      doc(
        (await listDeployments(deps.store)).map((d) => ({
          ...d.spec,
          windowSpec: d.windows[d.spec.window],
          recipeLabel: d.recipeLabel,
        })),
      ),
    ),
    PlanRollout: unary(log, async (req: RolloutRequest) => doc(await planFor(deps, req))),
    StartRollout: unary(log, async (req: RolloutRequest) => doc(await startRollout(deps, req, 'operator'))),
    GetRollout: unary(log, async (req: { id: string }) => doc(await getRolloutView(deps, req.id))),
    ListRollouts: unary(log, async (req: { deployment: string; unfinishedOnly: boolean }) => {
      const rows = await listRollouts(deps.store.db, {
        unfinishedOnly: req.unfinishedOnly,
        ...(req.deployment ? { deployment: req.deployment } : {}),
      });
      return doc(await Promise.all(rows.map((r) => rolloutView(deps, r))));
    }),
    ActOnRollout: unary(log, async (req: { id: string; action: string }) => {
      if (!(ACTIONS as readonly string[]).includes(req.action))
        throw new ConvoyError(
          'INVALID_ARGUMENT',
          `action ${JSON.stringify(req.action)}: use one of ${ACTIONS.join(', ')}`,
          {
            field: 'action',
          },
        );
      const r = await deps.engine.act(req.id, req.action as Action, 'operator');
      return doc(await rolloutView(deps, r));
    }),
    ListEvents: unary(log, async (req: { rolloutId: string; hostId: string; limit: number }) =>
      doc(await listEvents(deps, req)),
    ),
  };
}
