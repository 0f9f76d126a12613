/**
 * The work behind `convoy-agent phase run` (see ./phase-run): loaded only when that command
 * runs, so the daemon never pays for the recipe compiler and the step executors.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { formatDuration } from '../../shared/duration';
import { ConvoyError } from '../../shared/errors';
import { parsePublicKey } from '../../shared/keys';
import { createLogger } from '../../shared/logger';
import { compileRecipe } from '../../shared/recipe/compile';
import { placeholderValues, type PlaceholderValues } from '../../shared/recipe/interpolate';
import type { PhaseName, Recipe } from '../../shared/recipe/types';
import { execOnHost } from '../host/exec';
import { RESTART_EXIT_CODE } from '../install/systemd-unit';
import { PhaseJournal } from '../phase/journal';
import { refuseUnrebootable } from '../phase/reboot-preflight';
import { runPhase, type PhaseOutcome, type StepRecord } from '../phase/runner';
import { loadSecretsFile, secretsFromMap } from '../secrets';
import { STEP_REGISTRY } from '../steps';

export interface PhaseRunFlags {
  recipe: string;
  /** Checked as the command line is read (./phase-run.ts). */
  phase: PhaseName;
  dryRun?: boolean;
  var: string[];
  role: string[];
  stateDir: string;
  runId?: string;
  readRun?: string[];
  releaseKey?: string[];
  secrets?: string;
  json?: boolean;
}

export async function runLocalPhase(flags: PhaseRunFlags): Promise<PhaseOutcome> {
  const file = path.resolve(flags.recipe);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConvoyError('INVALID_ARGUMENT', `--recipe ${file}: cannot read it`);
  }
  const runIds = [...(flags.runId === undefined ? [] : [flags.runId]), ...(flags.readRun ?? [])];
  const badId = runIds.find((id) => !/^[A-Za-z0-9_-]{1,64}$/.test(id));
  if (badId !== undefined)
    throw new ConvoyError('INVALID_ARGUMENT', `run id ${JSON.stringify(badId)}: use 1-64 of A-Z a-z 0-9 _ -`);
  const releaseKeys = (flags.releaseKey ?? []).map((text) => {
    const key = parsePublicKey(text);
    if (key === null)
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `--release-key ${JSON.stringify(text)}: not an Ed25519 public key`,
      );
    return key;
  });
  const recipe = compileRecipe(text, file);
  if (flags.phase === 'check') refuseUnrebootable(recipe);
  const vars = phaseVars(recipe, flags.var);
  const stateDir = path.resolve(flags.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const log = createLogger(
    { sink: (line) => process.stderr.write(line), level: 'warn', now: Date.now },
    { component: 'phase' },
  );
  const secrets = flags.secrets === undefined ? secretsFromMap(new Map()) : loadSecretsFile(flags.secrets);
  const human = flags.json !== true;
  const outcome = await runPhase(
    {
      recipe,
      phase: flags.phase,
      roles: flags.role,
      vars,
      dryRun: flags.dryRun === true,
      ...(flags.runId === undefined ? {} : { runId: flags.runId }),
      readRuns: flags.readRun ?? [],
    },
    {
      registry: STEP_REGISTRY,
      journal: PhaseJournal.open(stateDir),
      context: {
        secrets,
        exec: execOnHost,
        env: {},
        stateDir,
        releaseKeys,
        log,
        now: Date.now,
        // Under a supervisor (as the daemon is), agent.restart exits for it to run the new bundle;
        // run again with the same run id, the journal's resume table redoes the step there.
        ...(process.env['CONVOY_SUPERVISED'] === '1'
          ? { requestRestart: () => setImmediate(() => process.exit(RESTART_EXIT_CODE)) }
          : {}),
      },
      log,
      onReboot: () => {
        if (human) process.stdout.write('  ↻ rebooting the host: run the phase again after the boot\n');
      },
      onStep: (e) => {
        if (human && e.phase === 'start')
          process.stdout.write(`▶ ${e.step.id} (${e.step.type})  ${e.step.source}\n`);
        if (human && e.phase === 'end' && e.record !== undefined)
          process.stdout.write(resultLine(e.record) + '\n');
      },
    },
  );
  if (human) printSummary(outcome);
  return outcome;
}

/** `--var target=X` and `installed=Y` are top-level; anything else is a recipe var. */
export function phaseVars(recipe: Recipe, pairs: readonly string[]): PlaceholderValues {
  const versions: { target?: string; installed?: string } = {};
  const overrides: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new ConvoyError('INVALID_ARGUMENT', `--var ${JSON.stringify(pair)}: must look like name=value`);
    }
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (name === 'target' || name === 'installed') versions[name] = value;
    else if (Object.prototype.hasOwnProperty.call(recipe.vars, name)) overrides[name] = value;
    else {
      const declared = Object.keys(recipe.vars).join(', ') || 'none';
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `--var ${name}: the recipe declares no such var (it has: ${declared})`,
      );
    }
  }
  return placeholderValues(recipe, versions, overrides);
}

function resultLine(r: StepRecord): string {
  const res = r.result;
  if (res === undefined) return `  - ${r.step.id} ${r.status}`;
  const took = formatDuration(res.durationMs);
  if (res.ok) return `  ✓ ${r.step.id} ${took}${r.attempts > 1 ? ` (attempt ${r.attempts})` : ''}`;
  const tail = res.outputTail
    .trim()
    .split('\n')
    .slice(-5)
    .map((l) => `    | ${l}`)
    .join('\n');
  return `  ✗ ${r.step.id} ${took}: ${res.error?.code ?? 'STEP_FAILED'}: ${res.error?.message ?? ''}${tail ? '\n' + tail : ''}`;
}

function printSummary(outcome: PhaseOutcome): void {
  if (outcome.resumed !== undefined) process.stdout.write(`resumed: ${outcome.resumed.reason}\n`);
  for (const r of outcome.steps) {
    if (r.status === 'dry-run')
      process.stdout.write(`would run ${r.step.id} (${r.step.type}): ${JSON.stringify(stepParams(r))}\n`);
    else if (r.status === 'skipped') process.stdout.write(`skip ${r.step.id}: not for this host's roles\n`);
    else if (r.status === 'done-before') process.stdout.write(`done before ${r.step.id}\n`);
  }
  const held = outcome.pointOfNoReturn;
  if (held !== undefined) {
    const backup = held.backupId === null ? 'no backup' : `backup ${held.backupId}`;
    process.stdout.write(
      `PAST_POINT_OF_NO_RETURN: the upgrade started ${held.stepId}; no automatic rollback (${backup})\nmanual recovery: ${held.manualRecovery}\n`,
    );
  }
  const ran = outcome.steps.filter((r) => r.status === 'ran').length;
  process.stdout.write(`phase ${outcome.phase}: ${outcome.ok ? 'ok' : 'FAILED'} (${ran} step(s) run)\n`);
}

function stepParams(r: StepRecord): Record<string, unknown> {
  const { id: _id, type: _type, source: _source, ...params } = r.step;
  return params;
}
