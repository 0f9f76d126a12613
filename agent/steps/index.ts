/**
 * The step types this agent knows. A recipe step of any other type is refused at compile time,
 * and a command naming one is refused by the runner: the agent runs only what it was built to.
 */
import type { Step, StepType } from '../../shared/recipe/types';
import { agentRestartExecutor } from './agent-restart';
import { aptExecutor } from './apt';
import { artifactExecutor } from './artifact';
import { backupExecutor } from './backup';
import { binaryReplaceExecutor } from './binary-replace';
import { binaryRestoreExecutor } from './binary-restore';
import { dnfExecutor } from './dnf';
import { execExecutor } from './exec';
import { gitExecutor } from './git';
import { httpExecutor } from './http';
import { maintenanceExecutor } from './maintenance';
import { rebootExecutor } from './reboot';
import { restoreExecutor } from './restore';
import { serviceExecutor } from './service';
import type { StepExecutor } from './step';

/** One executor per step type; a type without one fails to compile. */
const EXECUTORS: { readonly [T in StepType]: StepExecutor<Extract<Step, { type: T }>> } = {
  exec: execExecutor,
  apt: aptExecutor,
  dnf: dnfExecutor,
  git: gitExecutor,
  service: serviceExecutor,
  maintenance: maintenanceExecutor,
  backup: backupExecutor,
  restore: restoreExecutor,
  artifact: artifactExecutor,
  'binary.replace': binaryReplaceExecutor,
  'binary.restore': binaryRestoreExecutor,
  'agent.restart': agentRestartExecutor,
  reboot: rebootExecutor,
  http: httpExecutor,
};

/**
 * Widened for lookup by `step.type`: sound because the runner only ever hands an executor the
 * steps whose type is its key.
 */
export const STEP_REGISTRY: ReadonlyMap<string, StepExecutor<Step>> = new Map(
  Object.entries(EXECUTORS).map(([type, executor]) => [type, executor as unknown as StepExecutor<Step>]),
);
