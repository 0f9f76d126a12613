/**
 * One phase run as a real agent process: `convoy-agent phase run` with the host's environment,
 * its state dir, and the run ids a controller would send; optionally armed with a failpoint.
 */
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FAILPOINT_ENV } from '../../../agent/phase/failpoint';
import { AGENT_BIN } from '../../helpers/processes';
import type { PlannedRun } from './cases';

/** Everything about a fake host the agent process needs to act on it. */
export interface AgentHostSpec {
  readonly recipeFile: string;
  readonly stateDir: string;
  readonly roles: readonly string[];
  /** `target`, `installed` and recipe var overrides, by plain name. */
  readonly vars: Readonly<Record<string, string>>;
  /** Added to the agent's environment (APT_CONFIG, PATH with the yum/rpm wrappers, ...). */
  readonly env: Readonly<Record<string, string>>;
  readonly releaseKeys?: readonly string[];
  readonly secretsFile?: string;
  /** The agent program; default bin/convoy-agent.js (the self-update runs the bundle it replaces). */
  readonly agentScript?: string;
}

export interface AgentExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Writes the agent's secrets file as the agent requires it: JSON, mode 0600. */
export function writeSecrets(dir: string, secrets: Readonly<Record<string, string>>): string {
  const file = path.join(dir, 'secrets.json');
  writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** The vars a run is sent with: the final verify is sent `{{installed}}` = the target, as a controller does. */
export function runVars(host: AgentHostSpec, run: PlannedRun): Readonly<Record<string, string>> {
  const target = host.vars['target'];
  return run.onTarget === true && target !== undefined ? { ...host.vars, installed: target } : host.vars;
}

export function runAgentPhase(host: AgentHostSpec, run: PlannedRun, failpoint?: string): Promise<AgentExit> {
  const args = ['phase', 'run', '--recipe', host.recipeFile, '--phase', run.phase];
  args.push('--state-dir', host.stateDir, '--run-id', run.runId);
  for (const id of run.readRuns) args.push('--read-run', id);
  for (const role of host.roles) args.push('--role', role);
  for (const [k, v] of Object.entries(runVars(host, run))) args.push('--var', `${k}=${v}`);
  for (const key of host.releaseKeys ?? []) args.push('--release-key', key);
  if (host.secretsFile !== undefined) args.push('--secrets', host.secretsFile);
  const env: NodeJS.ProcessEnv = { ...process.env, ...host.env };
  delete env[FAILPOINT_ENV];
  if (failpoint !== undefined) env[FAILPOINT_ENV] = failpoint;
  return new Promise((resolve, reject) => {
    // Asynchronous: the fake services answering the agent live in this test process.
    const child = spawn(process.execPath, [host.agentScript ?? AGENT_BIN, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
