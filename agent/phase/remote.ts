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
import { parsePhaseCommand, type PhaseCommand, type StepProgress } from '../../shared/phase-contract';
import type { Step } from '../../shared/recipe/types';
import { formatProblem } from '../../shared/schema';
import type { CommandContext, ProgressReporter } from '../command-context';
import { execOnHost } from '../host/exec';
import { loadSecretsFile, secretsFromMap } from '../secrets';
import { STEP_REGISTRY } from '../steps';
import { PhaseJournal } from './journal';
import { probeVersions, withProbedVersions } from './versions';
import { refuseUnrebootable } from './reboot-preflight';
import { phaseReport, rebootingReport, stepReport } from './report';
import { runPhase } from './runner';
import { activeRun, markActiveRun, PHASE_STATE_DIR } from './summary';

export async function runRemotePhase(
  body: Readonly<Record<string, unknown>>,
  ctx: CommandContext,
  progress: ProgressReporter,
): Promise<Record<string, unknown>> {
  const busy = activeRun();
  if (busy !== undefined)
    throw new ConvoyError('PHASE_BUSY', `phase run ${busy} is still running on this host`);
  const cmd = parsePhaseCommandBody(body);
  if (sha256Hex(Buffer.from(JSON.stringify(cmd.recipe))) !== cmd.digest) {
    throw new ConvoyError('RECIPE_INVALID', 'the recipe does not match its digest');
  }
  const recipe = compileRecipeData(cmd.recipe, `recipe ${cmd.digest.slice(0, 12)}`);
  if (cmd.phase === 'check') refuseUnrebootable(recipe);
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
            void progress({ runId: cmd.runId, step: stepReport(e.record) } satisfies StepProgress);
        },
        // The controller learns the host is rebooting before the connection drops, not after.
        onReboot: (step) => reportRebooting(progress, cmd.runId, step),
      },
    );
    log.info('phase finished', { ok: outcome.ok });
    // A check refreshes the package lists first: what is available is read after it ran. Phases
    // that change the installed version (or verify it) read it back after they ran: the controller
    // records that, never the version it planned.
    const seen =
      cmd.phase === 'check'
        ? await probeVersions(recipe, vars, execOnHost, {}, true)
        : READS_BACK_INSTALLED.has(cmd.phase)
          ? await probeVersions(recipe, vars, execOnHost, {}, false)
          : probed;
    return phaseReport(outcome, { recipe: recipe.name, digest: cmd.digest }, seen);
  } finally {
    markActiveRun(undefined);
  }
}

/** Phases whose report carries the installed version read after the phase ran. */
const READS_BACK_INSTALLED: ReadonlySet<string> = new Set(['upgrade', 'finalize', 'verify', 'rollback']);

/** How long a reboot waits for its "rebooting" report to leave; a dead stream must not hold it. */
const REBOOT_REPORT_WAIT_MS = 2_000;

async function reportRebooting(progress: ProgressReporter, runId: string, step: Step): Promise<void> {
  const report: StepProgress = { runId, step: rebootingReport(step) };
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    progress(report),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, REBOOT_REPORT_WAIT_MS))),
  ]);
  clearTimeout(timer);
}

/** The command is checked against the shared contract; a bad one is refused, naming every problem. */
function parsePhaseCommandBody(body: Readonly<Record<string, unknown>>): PhaseCommand {
  const parsed = parsePhaseCommand(body);
  if (parsed.ok) return parsed.value;
  throw new ConvoyError('COMMAND_REFUSED', `phase command: ${parsed.problems.map(formatProblem).join('; ')}`);
}
