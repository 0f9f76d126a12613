/**
 * Planning a rollout: which hosts, what each runs now (the recipe's `check` phase, which changes
 * nothing), which target, what the policy says of each jump, which cautions apply, the batches,
 * the window, the staging time and an estimate. `rollout start` stores exactly such a plan.
 */
import { randomUUID } from 'node:crypto';
import semver from 'semver';
import { ConvoyError } from '../../shared/errors';
import type { Amount, DeploymentSpec, StagingSpec, WindowSpec } from '../../shared/fleet/types';
import { matchesSelector } from '../../shared/labels';
import { matchCautions } from '../../shared/recipe/cautions';
import { placeholderValues } from '../../shared/recipe/interpolate';
import type { Recipe } from '../../shared/recipe/types';
import {
  decideUpgrade,
  parseVersion,
  type PolicyVerdict,
  type UpgradePolicy,
} from '../../shared/semver-policy';
import type { OperatorDeps } from '../deps';
import type { PreparedRecipe } from '../phase/recipe';
import { sendPhase } from '../phase/send';
import { insertPhaseRun, meanPhaseDurations } from '../store/phase-runs';
import type { HostRecord } from '../store/store';
import type { RolloutHostSpec } from './model';

/** What `convoy apply` stored for one deployment. */
export interface StoredDeployment {
  readonly spec: DeploymentSpec;
  /** Every window of the fleet file, so `rollout start --window NAME` can pick another. */
  readonly windows: Readonly<Record<string, WindowSpec>>;
  readonly recipeYaml: string;
  readonly recipeLabel: string;
}

export interface PlannedHost extends RolloutHostSpec {
  readonly online: boolean;
  readonly available: readonly string[];
  readonly verdict: PolicyVerdict | null;
  /** Why this host cannot take part, when it cannot. */
  readonly problem: string;
}

export interface Plan {
  readonly deployment: string;
  readonly recipe: string;
  readonly requestedTarget: string;
  readonly target: string;
  readonly hosts: readonly PlannedHost[];
  readonly cautions: readonly string[];
  /** Host ids per batch, in order. */
  readonly batches: readonly (readonly string[])[];
  readonly needsApproval: boolean;
  readonly refusals: readonly string[];
  readonly window: WindowSpec;
  readonly staging: StagingSpec;
  readonly maxFailures: number;
  readonly estimateMsPerHost: number | null;
  readonly estimateMsTotal: number | null;
  readonly finalizeRole: string | null;
}

export interface ResolvedHost {
  readonly host: HostRecord;
  readonly role: string;
  readonly vars: Readonly<Record<string, string>>;
}

/** The deployment's host entries against the hosts the store knows (id or selector, first wins). */
export function resolveHosts(spec: DeploymentSpec, known: readonly HostRecord[]): ResolvedHost[] {
  const out = new Map<string, ResolvedHost>();
  for (const [i, entry] of spec.hosts.entries()) {
    const matched =
      entry.id !== undefined
        ? known.filter((h) => h.id === entry.id)
        : known.filter((h) => h.state === 'active' && matchesSelector(h.labels, entry.select ?? {}));
    if (entry.id !== undefined && matched.length === 0) {
      throw new ConvoyError(
        'HOST_UNKNOWN',
        `deployment ${spec.name}: hosts[${i}].id ${entry.id} is not enrolled`,
        {
          hostId: entry.id,
        },
      );
    }
    for (const h of matched) {
      if (out.has(h.id)) continue;
      if (h.state !== 'active') {
        throw new ConvoyError('HOST_PENDING', `deployment ${spec.name}: host ${h.id} is ${h.state}`, {
          hostId: h.id,
        });
      }
      out.set(h.id, {
        host: h,
        role: entry.role ?? h.labels['role'] ?? '',
        vars: { ...spec.vars, ...entry.vars },
      });
    }
  }
  if (out.size === 0)
    throw new ConvoyError('INVALID_ARGUMENT', `deployment ${spec.name}: no host matches its hosts list`);
  return [...out.values()];
}

export function amountOf(amount: Amount, total: number): number {
  return amount.kind === 'count' ? amount.value : Math.floor((amount.value * total) / 100);
}

/** Canary first, then groups of `concurrency` (at least one host per batch). */
export function assignBatches(hostIds: readonly string[], canary: number, concurrency: Amount): string[][] {
  const batches: string[][] = [];
  const rest = [...hostIds];
  if (canary > 0 && rest.length > 0) batches.push(rest.splice(0, canary));
  const size = Math.max(1, amountOf(concurrency, hostIds.length));
  while (rest.length > 0) batches.push(rest.splice(0, size));
  return batches;
}

export function effectivePolicy(recipe: Recipe, fleet: UpgradePolicy): UpgradePolicy {
  const fromRecipe: UpgradePolicy = {
    autoApprove: recipe.policy.majorNeedsApproval ? ['patch', 'minor'] : ['patch', 'minor', 'major'],
    allowDowngrade: recipe.policy.allowDowngrade,
    ...(recipe.policy.allowedRange === undefined ? {} : { allowedRange: recipe.policy.allowedRange }),
    ...(recipe.policy.pinnedVersion === undefined ? {} : { pinnedVersion: recipe.policy.pinnedVersion }),
  };
  return { ...fromRecipe, ...fleet };
}

/** Mean duration of past successful runs of these phases of this recipe, summed; null without history. */
export async function estimateMs(
  deps: Pick<OperatorDeps, 'store'>,
  recipe: string,
  phases: readonly string[],
): Promise<number | null> {
  const rows = await meanPhaseDurations(deps.store.db, recipe, phases);
  if (rows.length === 0) return null;
  return Math.round(rows.reduce((sum, r) => sum + (r.mean ?? 0), 0));
}

interface CheckAnswer {
  readonly installed: string;
  readonly available: readonly string[];
  readonly online: boolean;
  readonly problem: string;
}

/** Runs `check` on every host at once; a host that cannot answer is reported, not fatal here. */
async function checkHosts(
  deps: OperatorDeps,
  prepared: PreparedRecipe,
  hosts: readonly ResolvedHost[],
  requestedTarget: string,
): Promise<CheckAnswer[]> {
  const planId = `plan-${randomUUID().slice(0, 8)}`;
  return Promise.all(
    hosts.map(async ({ host, role, vars }): Promise<CheckAnswer> => {
      if (!deps.gateway.isOnline(host.id))
        return { installed: '', available: [], online: false, problem: 'offline' };
      const phaseRunId = randomUUID();
      const recipe = prepared.recipe;
      await deps.store.db.write((tx) =>
        insertPhaseRun(
          tx,
          {
            id: phaseRunId,
            runId: planId,
            hostId: host.id,
            recipe: recipe.name,
            digest: prepared.digest,
            phase: 'check',
            nowMs: deps.now(),
          },
          'controller',
        ),
      );
      const target = requestedTarget === 'latest' ? {} : { target: requestedTarget };
      const call = await sendPhase(deps, host, prepared, {
        phase: 'check',
        runId: planId,
        phaseRunId,
        roles: role === '' ? [] : [role],
        vars: placeholderValues(recipe, target, varsOf(recipe, vars)),
        timeoutMs: 0,
      });
      if (call.kind !== 'answered')
        return {
          installed: '',
          available: [],
          online: call.kind !== 'lost',
          problem: `${call.code}: ${call.message}`,
        };
      if (!call.report.ok) {
        const failed = call.report.steps.find((s) => s.status === 'ran' && !s.ok);
        return {
          installed: call.report.installed,
          available: call.report.available,
          online: true,
          problem: `check failed${failed ? ` at ${failed.stepId}: ${failed.errorMessage}` : ''}`,
        };
      }
      // Without an `available` probe, what the check's steps listed (e.g. dnf's check-update)
      // counts. Either way read as upstream versions: `2.1.0-1.el9` (an RPM release) offers
      // 2.1.0, never a semver prerelease of it that `latest` and the policy would misorder.
      const available = upstreamVersions(
        call.report.available.length > 0
          ? call.report.available
          : call.report.steps.flatMap((st) => st.versions),
      );
      return { installed: call.report.installed, available, online: true, problem: '' };
    }),
  );
}

/** Only the recipe's declared vars travel (fleet vars the recipe does not know are refused at apply). */
export function varsOf(recipe: Recipe, vars: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(vars).filter(([k]) => Object.prototype.hasOwnProperty.call(recipe.vars, k)),
  );
}

/** A packaging revision or release (`-1`, `-1.el9`, `-2ubuntu1`) removed; `-rc.1` is kept. */
export function upstreamVersion(version: string): string {
  return version.replace(/-[0-9][0-9A-Za-z.~+]*$/, '');
}

/** Each version as its upstream version, once. */
export function upstreamVersions(versions: readonly string[]): string[] {
  return [...new Set(versions.map(upstreamVersion))];
}

/** Whether a host's list offers the target, exactly or as a packaged build of it (`2.1.0-1`). */
export function offers(available: readonly string[], target: string): boolean {
  return available.some((v) => v === target || upstreamVersion(v) === target);
}

/** The highest version every answering host can get; '' when they share none. */
export function latestCommon(lists: readonly (readonly string[])[]): string {
  const withLists = lists.filter((l) => l.length > 0);
  if (withLists.length === 0) return '';
  const [first, ...others] = withLists;
  const common = (first ?? []).filter((v) => others.every((l) => l.includes(v)) && parseVersion(v) !== null);
  common.sort((a, b) => semver.compare(parseVersion(b) ?? '0.0.0', parseVersion(a) ?? '0.0.0'));
  return common[0] ?? '';
}

export async function planRollout(
  deps: OperatorDeps,
  stored: StoredDeployment,
  prepared: PreparedRecipe,
  opts: { requestedTarget: string; windowName?: string },
): Promise<Plan> {
  const spec = stored.spec;
  const recipe = prepared.recipe;
  const windowName = opts.windowName ?? spec.window;
  const window = stored.windows[windowName];
  if (window === undefined) {
    throw new ConvoyError(
      'INVALID_ARGUMENT',
      `window ${JSON.stringify(windowName)} is not defined in the fleet file`,
      {
        field: 'window',
      },
    );
  }
  const resolved = resolveHosts(spec, await deps.store.listHosts());
  const answers = await checkHosts(deps, prepared, resolved, opts.requestedTarget);
  const target =
    opts.requestedTarget === 'latest'
      ? latestCommon(answers.filter((a) => a.problem === '').map((a) => a.available))
      : opts.requestedTarget;
  const policy = effectivePolicy(recipe, spec.policy);
  const refusals: string[] = [];
  if (target === '') refusals.push('no version is available to every host (latest)');
  const cautions = new Set<string>();
  const hosts: PlannedHost[] = resolved.map((r, i) => {
    const a = answers[i] ?? { installed: '', available: [], online: false, problem: 'no answer' };
    let problem = a.problem;
    let verdict: PolicyVerdict | null = null;
    if (problem === '' && a.installed === '') problem = 'the recipe read no installed version';
    if (problem === '' && target !== '') {
      verdict = decideUpgrade(a.installed, target, policy);
      if (verdict?.kind !== 'same' && a.available.length > 0 && !offers(a.available, target))
        problem = `${target} is not available (it offers ${a.available.slice(0, 5).join(', ') || 'nothing'})`;
      for (const c of matchCautions(recipe, a.installed, target)) cautions.add(c.message);
    }
    if (problem !== '') refusals.push(`host ${r.host.hostname} (${r.host.id}): ${problem}`);
    else if (verdict?.decision === 'refused')
      refusals.push(`host ${r.host.hostname} (${r.host.id}): ${verdict.reason}`);
    return {
      hostId: r.host.id,
      hostname: r.host.hostname,
      role: r.role,
      vars: r.vars,
      batch: -1,
      installed: a.installed,
      online: a.online,
      available: a.available,
      verdict,
      problem,
    };
  });
  const toUpgrade = hosts.filter((h) => h.verdict !== null && h.verdict.kind !== 'same').map((h) => h.hostId);
  const batches = assignBatches(toUpgrade, spec.batches.canary, spec.batches.concurrency);
  const batchOf = new Map(batches.flatMap((b, i) => b.map((id) => [id, i] as const)));
  const perHost = await estimateMs(deps, recipe.name, ['upgrade', 'verify']);
  const finalize = await estimateMs(deps, recipe.name, ['finalize']);
  return {
    deployment: spec.name,
    recipe: recipe.name,
    requestedTarget: opts.requestedTarget,
    target,
    hosts: hosts.map((h) => ({ ...h, batch: batchOf.get(h.hostId) ?? -1 })),
    cautions: [...cautions],
    batches,
    needsApproval: hosts.some((h) => h.verdict?.decision === 'needs-approval'),
    refusals,
    window,
    staging: spec.staging,
    maxFailures: amountOf(spec.batches.errorThreshold, hosts.length),
    estimateMsPerHost: perHost,
    estimateMsTotal: perHost === null ? null : perHost * batches.length + (finalize ?? 0),
    finalizeRole: recipe.phases.finalize?.role ?? null,
  };
}
