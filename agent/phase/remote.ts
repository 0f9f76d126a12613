/**
 * A `phase` command from the controller: the recipe arrives as data inside the signed envelope,
 * is compiled again here (the agent trusts its own validation, not the sender's), and runs
 * through the same runner and journal as a local run. One phase at a time per host.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../../shared/envelope';
import { ConvoyError } from '../../shared/errors';
import { compileRecipeData } from '../../shared/recipe/compile';
import { PHASES, type PhaseName } from '../../shared/recipe/types';
import type { CommandContext, ProgressReporter } from '../command-context';
import { execOnHost } from '../host/exec';
import { loadSecretsFile, secretsFromMap } from '../secrets';
import { STEP_REGISTRY } from '../steps';
import { PhaseJournal } from './journal';
import { probeVersions, withProbedVersions } from './versions';
import { runPhase, type StepRecord } from './runner';
import { activeRun, markActiveRun, PHASE_STATE_DIR } from './summary';

interface PhaseCommand {
  readonly runId: string;
  readonly phase: PhaseName;
  readonly recipe: unknown;
  readonly digest: string;
  readonly vars: Readonly<Record<string, string>>;
  readonly roles: readonly string[];
  readonly readRuns: readonly string[];
}

export async function runRemotePhase(
  body: Readonly<Record<string, unknown>>,
  ctx: CommandContext,
  progress: ProgressReporter,
): Promise<Record<string, unknown>> {
  const busy = activeRun();
  if (busy !== undefined)
    throw new ConvoyError('PHASE_BUSY', `phase run ${busy} is still running on this host`);
  const cmd = parsePhaseCommand(body);
  if (sha256Hex(Buffer.from(JSON.stringify(cmd.recipe))) !== cmd.digest) {
    throw new ConvoyError('RECIPE_INVALID', 'the recipe does not match its digest');
  }
  const recipe = compileRecipeData(cmd.recipe, `recipe ${cmd.digest.slice(0, 12)}`);
  markActiveRun(cmd.runId);
  try {
    const stateDir = path.join(ctx.config.stateDir, PHASE_STATE_DIR);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const secrets =
      ctx.config.secretsFile === undefined
        ? secretsFromMap(new Map())
        : loadSecretsFile(ctx.config.secretsFile);
    const log = ctx.log.child({ runId: cmd.runId, phase: cmd.phase, recipe: recipe.name });
    log.info('phase starting');
    // The installed version fills {{installed}} when the controller did not know it.
    const { vars, seen: probed } = await withProbedVersions(recipe, cmd.vars, false, execOnHost, {});
    const outcome = await runPhase(
      { recipe, phase: cmd.phase, roles: cmd.roles, vars, runId: cmd.runId, readRuns: cmd.readRuns },
      {
        registry: STEP_REGISTRY,
        journal: PhaseJournal.open(stateDir),
        context: {
          secrets,
          exec: execOnHost,
          env: {},
          stateDir,
          releaseKeys: ctx.config.releaseKeys,
          log,
          now: ctx.now,
          ...(ctx.requestRestart === undefined ? {} : { requestRestart: ctx.requestRestart }),
        },
        log,
        // Each finished step is reported as it ends: the controller stores it at once.
        onStep: (e) => {
          if (e.phase === 'end' && e.record !== undefined)
            progress({ runId: cmd.runId, step: stepReport(e.record) });
        },
      },
    );
    log.info('phase finished', { ok: outcome.ok });
    // A check refreshes the package lists first: what is available is read after it ran.
    const seen = cmd.phase === 'check' ? await probeVersions(recipe, vars, execOnHost, {}, true) : probed;
    return {
      runId: outcome.runId,
      phase: outcome.phase,
      recipe: recipe.name,
      digest: cmd.digest,
      ok: outcome.ok,
      installed: seen.installed ?? null,
      available: seen.available ?? null,
      resumed: outcome.resumed ?? null,
      steps: outcome.steps.map(stepReport),
    };
  } finally {
    markActiveRun(undefined);
  }
}

function parsePhaseCommand(body: Readonly<Record<string, unknown>>): PhaseCommand {
  const { runId, phase, recipe, digest, vars, roles, readRuns = [] } = body;
  const bad = (field: string): never => {
    throw new ConvoyError('COMMAND_REFUSED', `phase command: ${field} is missing or malformed`);
  };
  if (typeof runId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(runId)) return bad('runId');
  if (typeof phase !== 'string' || !(PHASES as readonly string[]).includes(phase)) return bad('phase');
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) return bad('digest');
  if (!isStringRecord(vars)) return bad('vars');
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) return bad('roles');
  if (
    !Array.isArray(readRuns) ||
    !readRuns.every((r) => typeof r === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(r))
  )
    return bad('readRuns');
  return {
    runId,
    phase: phase as PhaseName,
    recipe,
    digest,
    vars,
    roles: roles,
    readRuns: readRuns as string[],
  };
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}

/** What the controller stores per step: bounded, masked output and the facts a later step needs. */
function stepReport(r: StepRecord): Record<string, unknown> {
  const res = r.result;
  return {
    stepId: r.step.id,
    type: r.step.type,
    status: r.status,
    attempts: r.attempts,
    ok: res?.ok ?? null,
    exitCode: res?.exitCode ?? null,
    durationMs: res?.durationMs ?? 0,
    outputTail: res?.outputTail ?? '',
    backupId: res?.backupId ?? null,
    versions: res?.versions ?? [],
    error: res?.error ?? null,
  };
}
