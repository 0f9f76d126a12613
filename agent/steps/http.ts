/**
 * `http`: `check` asks a URL until it answers as expected (a status in `expectStatus`, and the
 * JSON field at a dotted path equal to a value), pausing `backoffMs` between attempts, all within
 * the step's timeout; `request` sends one request (method, body, basic auth) and checks its status.
 *
 * Basic auth: `user` is the user name itself, `passwordSecret` names a secret. The password and
 * the encoded header value are masked out of every result, like every other secret value.
 * An empty `expectStatus` means any 2xx. A body that parses as JSON is sent as application/json,
 * anything else as text/plain. Redirects are answers, not followed.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpStep } from '../../shared/recipe/types';
import { ConvoyError } from '../../shared/errors';
import { sendRequest, showUrl, type HttpReply } from './http-client';
import { resolveSecret, settleStep, StepFailure, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

export const httpExecutor: StepExecutor<HttpStep> = {
  type: 'http',
  contract: {
    checks: 'check: the status (and JSON field) within the timeout; request: the status of one answer',
    changes: 'check: nothing; request: whatever the remote end does with it',
    idempotent: true,
    interrupted: 'redo',
    rollback: 'none: a check changes nothing, and a request is undone by rollback-phase steps',
  },
  run: (step, ctx) => {
    const masked: string[] = [];
    return settleStep(
      ctx,
      async () => {
        const headers = requestHeaders(step, ctx, masked);
        return step.action === 'check'
          ? checkUntilHealthy(step, ctx, headers)
          : requestOnce(step, ctx, headers);
      },
      () => masked,
    );
  },
};

function requestHeaders(step: HttpStep, ctx: StepContext, masked: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  if (step.body !== undefined)
    headers['content-type'] = `${isJson(step.body) ? 'application/json' : 'text/plain'}; charset=utf-8`;
  if (step.basicAuth !== undefined) {
    const password = resolveSecret(ctx, step.basicAuth.passwordSecret);
    const token = Buffer.from(`${step.basicAuth.user}:${password}`, 'utf8').toString('base64');
    masked.push(password, token);
    headers['authorization'] = `Basic ${token}`;
  }
  return headers;
}

async function requestOnce(
  step: HttpStep,
  ctx: StepContext,
  headers: Record<string, string>,
): Promise<StepSuccess> {
  const reply = await sendRequest({
    url: step.url,
    method: step.method,
    headers,
    body: step.body,
    timeoutMs: step.timeoutMs,
    signal: ctx.signal,
  });
  const outputTail = reply.body.toString('utf8');
  if (!statusExpected(step, reply.status)) {
    throw new StepFailure('STEP_FAILED', `${step.method} ${showUrl(step.url)} answered ${reply.status}`, {
      outputTail,
    });
  }
  return { outputTail, data: { status: reply.status } };
}

async function checkUntilHealthy(
  step: HttpStep,
  ctx: StepContext,
  headers: Record<string, string>,
): Promise<StepSuccess> {
  // A monotonic deadline: the wall clock may be stepped by NTP during an upgrade.
  const deadline = performance.now() + step.timeoutMs;
  let attempts = 0;
  let reason = 'no attempt finished';
  // What the application last said, kept when a later attempt gets no answer at all: an attempt
  // cut short by the deadline would otherwise hide the "status 500" that explains the failure.
  let lastAnswer: string | undefined;
  let lastBody = '';
  for (;;) {
    ctx.signal.throwIfAborted();
    attempts += 1;
    const timeoutMs = Math.max(1, Math.ceil(deadline - performance.now()));
    try {
      const reply = await sendRequest({
        url: step.url,
        method: step.method,
        headers,
        body: step.body,
        timeoutMs,
        signal: ctx.signal,
      });
      lastBody = reply.body.toString('utf8');
      const problem = judgeReply(step, reply);
      if (problem === null) return { outputTail: lastBody, data: { status: reply.status, attempts } };
      reason = problem;
      lastAnswer = problem;
    } catch (err) {
      if (!(err instanceof ConvoyError)) throw err;
      reason = err.message;
    }
    if (performance.now() + step.backoffMs >= deadline) break;
    await sleep(step.backoffMs, undefined, { signal: ctx.signal });
  }
  const why =
    lastAnswer === undefined || lastAnswer === reason ? reason : `${reason}; last answer: ${lastAnswer}`;
  const message = `${showUrl(step.url)} was not healthy after ${attempts} attempt(s) in ${step.timeoutMs} ms: ${why}`;
  throw new StepFailure('HEALTH_CHECK_FAILED', message, { outputTail: lastBody });
}

/** Null when the reply is what the check expects, else why not. */
export function judgeReply(step: HttpStep, reply: HttpReply): string | null {
  if (!statusExpected(step, reply.status)) return `status ${reply.status}`;
  if (step.jsonField === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body.toString('utf8'));
  } catch {
    return 'the body is not JSON';
  }
  const { path, equals } = step.jsonField;
  const found = lookupPath(parsed, path);
  if (!found.present) return `the body has no field ${path}`;
  if (found.value !== equals)
    return `${path} is ${JSON.stringify(found.value)}, not ${JSON.stringify(equals)}`;
  return null;
}

/** Follows a dotted path (`status.db.ok`, `nodes.0.state`) through own properties only. */
export function lookupPath(value: unknown, dotted: string): { present: boolean; value?: unknown } {
  let here: unknown = value;
  for (const key of dotted.split('.')) {
    if (typeof here !== 'object' || here === null || !Object.prototype.hasOwnProperty.call(here, key)) {
      return { present: false };
    }
    here = (here as Record<string, unknown>)[key];
  }
  return { present: true, value: here };
}

function statusExpected(step: HttpStep, status: number): boolean {
  return step.expectStatus.length === 0 ? status >= 200 && status <= 299 : step.expectStatus.includes(status);
}

function isJson(body: string): boolean {
  try {
    JSON.parse(body);
    return true;
  } catch {
    return false;
  }
}
