/**
 * Crash injection for the agent kill -9 sweep (test/chaos/agent-kill-sweep.test.ts), the agent's
 * counterpart of controller/rollout/failpoint.ts:
 *
 *   CONVOY_AGENT_FAILPOINT=before:STEP,after:STEP
 *
 * makes the phase runner kill its own process with SIGKILL at that step boundary: `before` right
 * after the journal durably recorded that STEP is starting (before its side effect), `after` right
 * after its result was durably journaled (before the next step). One stderr line is written first,
 * so a test can tell the boundary was reached. The test runs the resumed phase without it.
 * Unset in production: the runner gets a function that returns at once.
 */
export type Boundary = 'before' | 'after';
export type AgentFailpoint = (boundary: Boundary, stepId: string) => void;

export const FAILPOINT_ENV = 'CONVOY_AGENT_FAILPOINT';

/** `before:ID` / `after:ID`, comma-separated; anything else is refused, naming the entry. */
export function parseFailpoints(spec: string): ReadonlySet<string> {
  const wanted = new Set<string>();
  for (const entry of spec.split(',')) {
    const item = entry.trim();
    if (item === '') continue;
    if (!/^(before|after):[A-Za-z0-9][A-Za-z0-9._-]*$/.test(item))
      throw new Error(`${FAILPOINT_ENV}: ${JSON.stringify(item)} is not before:STEP or after:STEP`);
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
    process.stderr.write(`convoy-agent: failpoint ${name}: killing the agent\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}
