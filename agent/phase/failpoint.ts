/**
 * Crash injection for the agent kill -9 sweep (test/chaos/agent-kill-sweep.test.ts), the agent's
 * counterpart of controller/rollout/failpoint.ts:
 *
 *   CONVOY_AGENT_FAILPOINT=before:STEP,after:STEP,fail:STEP
 *
 * makes the phase runner kill its own process with SIGKILL at that step boundary: `before` right
 * after the journal durably recorded that STEP is starting (before its side effect), `after` right
 * after its result was durably journaled (before the next step). One stderr line is written first,
 * so a test can tell the boundary was reached. The test runs the resumed phase without it.
 * `fail:STEP` (the rollback-faults suites) lets STEP do its work and then reports it failed: the
 * worst case for a rollback, a side effect the journal does not know as done.
 * Unset in production: the runner gets a function that returns at once.
 */
export type Boundary = 'before' | 'after' | 'fail';
/** Kills the process at `before`/`after`; for `fail`, returns true when STEP must report failure. */
export type AgentFailpoint = (boundary: Boundary, stepId: string) => boolean | void;

export const FAILPOINT_ENV = 'CONVOY_AGENT_FAILPOINT';

/** `before:ID` / `after:ID`, comma-separated; anything else is refused, naming the entry. */
export function parseFailpoints(spec: string): ReadonlySet<string> {
  const wanted = new Set<string>();
  for (const entry of spec.split(',')) {
    const item = entry.trim();
    if (item === '') continue;
    if (!/^(before|after|fail):[A-Za-z0-9][A-Za-z0-9._-]*$/.test(item))
      throw new Error(
        `${FAILPOINT_ENV}: ${JSON.stringify(item)} is not before:STEP, after:STEP or fail:STEP`,
      );
    wanted.add(item);
  }
  return wanted;
}

export function agentFailpointFromEnv(env: NodeJS.ProcessEnv = process.env): AgentFailpoint {
  const wanted = parseFailpoints(env[FAILPOINT_ENV] ?? '');
  if (wanted.size === 0) return () => undefined;
  return (boundary, stepId) => {
    const name = `${boundary}:${stepId}`;
    if (!wanted.has(name)) return;
    if (boundary === 'fail') {
      process.stderr.write(`convoy-agent: failpoint ${name}: the step reports failure\n`);
      return true;
    }
    process.stderr.write(`convoy-agent: failpoint ${name}: killing the agent\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}
