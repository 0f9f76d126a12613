/**
 * `exec`: runs one program from an argv list (never a shell string) with the step's env, cwd and
 * timeout. A secret named by `stdinSecret` reaches the child only on stdin, never on argv or in
 * its environment, where `/proc/PID/cmdline` and `/proc/PID/environ` would show it. The output
 * tail and every message are masked with every secret the host knows (by settleStep). The
 * step's env is applied under the agent's (ctx.env: an isolated root, test wrappers), which wins.
 *
 * `user` runs the program as that account (uid, gid, HOME, USER and LOGNAME from `getent passwd`,
 * so accounts from NSS count too); an unknown user is EXEC_USER_UNKNOWN before anything runs.
 * `expectVersion` also requires stdout to name that version as a whole.
 *
 * `runArgv` is the same exit-code and timeout handling for the other steps that run programs
 * (service, maintenance, backup, restore).
 */
import type { ExecStep } from '../../shared/recipe/types';
import { dropCutHead } from './mask';
import { resolveSecret, settleStep, StepFailure } from './outcome';
import type { StepContext, StepExecutor } from './step';

/** Bytes of stdout and of stderr kept by the exec buffer before the tail is cut for the result. */
const EXEC_BUFFER_BYTES = 64 * 1024;

export const execExecutor: StepExecutor<ExecStep> = {
  type: 'exec',
  contract: {
    checks: 'the exit code is one of acceptExitCodes (default 0) within the timeout',
    changes: 'whatever the program changes; Convoy cannot know',
    idempotent: false,
    // Convoy cannot know whether a program is safe to repeat; the step's onInterrupt decides.
    interrupted: 'rollback',
    rollback: 'none of its own: a recipe undoes an exec step with rollback-phase steps',
  },
  run: (step, ctx) =>
    settleStep(ctx, async () => {
      const stdin = step.stdinSecret === undefined ? undefined : resolveSecret(ctx, step.stdinSecret);
      const ran = await runArgv(ctx, {
        argv: step.argv,
        env: step.env,
        cwd: step.cwd,
        stdin,
        timeoutMs: step.timeoutMs,
        acceptExitCodes: step.acceptExitCodes,
        user: step.user,
        fullStdoutBytes: step.expectVersion === undefined ? undefined : EXEC_BUFFER_BYTES,
      });
      if (step.expectVersion !== undefined && !namesVersion(ran.stdout, step.expectVersion)) {
        throw new StepFailure(
          'STEP_FAILED',
          `${step.argv[0] ?? ''} does not report version ${step.expectVersion}${lastLine(ran.outputTail)}`,
          { outputTail: ran.outputTail, exitCode: ran.exitCode },
        );
      }
      return {
        outputTail: ran.outputTail,
        exitCode: ran.exitCode,
        ...(step.expectVersion === undefined ? {} : { versions: [step.expectVersion] }),
      };
    }),
};

/** Whether `text` has `version` as a whole token: `1.6.3` is not in `1.6.30` nor in `11.6.3`. */
export function namesVersion(text: string, version: string): boolean {
  const escaped = version.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![0-9.])${escaped}(?![0-9]|\\.[0-9])`).test(text);
}

export interface RunArgvRequest {
  readonly argv: readonly string[];
  /** Added to the child's environment, under the context's env. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string | undefined;
  readonly stdin?: string | undefined;
  readonly timeoutMs: number;
  /** Default [0]; an empty list also means [0]. */
  readonly acceptExitCodes?: readonly number[];
  /** Bytes of stdout kept; a larger stdout fails the run rather than being cut. Default: cut to 64 KiB. */
  readonly fullStdoutBytes?: number | undefined;
  /** The account to run as (see the module comment). Default: the agent's own. */
  readonly user?: string | undefined;
}

export interface RunArgvResult {
  readonly exitCode: number;
  /** stdout and stderr, the cut head of either dropped; masked later by settleStep. */
  readonly outputTail: string;
  /** The whole stdout, only when `fullStdoutBytes` was given. */
  readonly stdout: string;
}

/** Runs a program through ctx.exec; a timeout, a signal or an unaccepted exit code throws a StepFailure. */
export async function runArgv(ctx: StepContext, req: RunArgvRequest): Promise<RunArgvResult> {
  const account = req.user === undefined ? undefined : await lookupUser(ctx, req.user);
  const res = await ctx.exec({
    argv: req.argv,
    // The agent's env (an isolated APT root, test wrappers on PATH) wins over the recipe's; the
    // account's HOME wins over both, so a tool run as www-data never writes into root's home.
    env: { ...req.env, ...ctx.env, ...(account === undefined ? {} : account.env) },
    ...(account === undefined ? {} : { uid: account.uid, gid: account.gid }),
    ...(req.cwd === undefined ? {} : { cwd: req.cwd }),
    ...(req.stdin === undefined ? {} : { stdin: req.stdin }),
    timeoutMs: req.timeoutMs,
    maxOutputBytes: req.fullStdoutBytes ?? EXEC_BUFFER_BYTES,
    signal: ctx.signal,
  });
  const full = req.fullStdoutBytes !== undefined;
  const stdoutTail = full ? res.stdout.slice(-EXEC_BUFFER_BYTES) : res.stdout;
  const outputTail = joinOutput(
    dropCutHead(stdoutTail, res.truncated),
    dropCutHead(res.stderr, res.truncated),
  );
  const program = req.argv[0] ?? '';
  if (res.timedOut) {
    const message = `${program} did not finish within ${req.timeoutMs} ms and was killed`;
    throw new StepFailure('STEP_TIMEOUT', message, { outputTail, exitCode: res.code });
  }
  const accepted =
    req.acceptExitCodes !== undefined && req.acceptExitCodes.length > 0 ? req.acceptExitCodes : [0];
  if (res.code === null || !accepted.includes(res.code)) {
    const how =
      res.code === null ? `was killed by ${res.signal ?? 'a signal'}` : `exited with code ${res.code}`;
    throw new StepFailure('STEP_FAILED', `${program} ${how}${lastLine(outputTail)}`, {
      outputTail,
      exitCode: res.code,
    });
  }
  if (full && res.truncated) {
    throw new StepFailure(
      'STEP_FAILED',
      `${program} wrote more than ${req.fullStdoutBytes} bytes of output`,
      {
        exitCode: res.code,
      },
    );
  }
  return { exitCode: res.code, outputTail, stdout: full ? res.stdout : '' };
}

function joinOutput(stdout: string, stderr: string): string {
  if (stdout === '' || stderr === '') return stdout + stderr;
  return stdout.endsWith('\n') ? stdout + stderr : `${stdout}\n${stderr}`;
}

/** The last non-empty output line, so the one-line reason says why (masked with the rest). */
function lastLine(output: string): string {
  const line = output.trimEnd().split('\n').pop()?.trim() ?? '';
  return line === '' ? '' : `: ${line.slice(0, 200)}`;
}

interface Account {
  readonly uid: number;
  readonly gid: number;
  readonly env: Readonly<Record<string, string>>;
}

/** uid, gid and home of `name` through `getent passwd` (NSS accounts too), or EXEC_USER_UNKNOWN. */
async function lookupUser(ctx: StepContext, name: string): Promise<Account> {
  const res = await ctx.exec({
    argv: ['getent', 'passwd', '--', name],
    timeoutMs: 10_000,
    signal: ctx.signal,
  });
  const account = res.code === 0 ? parsePasswdLine(res.stdout, name) : undefined;
  if (account === undefined) {
    throw new StepFailure('EXEC_USER_UNKNOWN', `user ${JSON.stringify(name)} does not exist on this host`, {
      exitCode: res.code,
    });
  }
  return account;
}

/** The account of `name` in passwd(5) lines, or undefined. */
export function parsePasswdLine(text: string, name: string): Account | undefined {
  for (const line of text.split('\n')) {
    const [user, , uid, gid, , home] = line.split(':');
    if (user !== name || uid === undefined || gid === undefined) continue;
    if (!/^[0-9]+$/.test(uid) || !/^[0-9]+$/.test(gid)) return undefined;
    const env = { HOME: home === undefined || home === '' ? '/' : home, USER: name, LOGNAME: name };
    return { uid: Number(uid), gid: Number(gid), env };
  }
  return undefined;
}
