/**
 * One rule for a suite whose tools are missing: under CI (`CI=true`) the suite fails, naming the
 * Debian package to install; on a developer machine it is skipped with the same message. A chaos
 * or end-to-end suite that quietly skips in CI proves nothing. The tools and their packages are
 * listed in scripts/fixtures/tools.ts; the fixtures assert theirs when they start.
 */
import { missingTools, type Tool } from '../../scripts/fixtures/tools';

export { assertTools, LIBFAKETIME, missingTool, type Tool } from '../../scripts/fixtures/tools';

/** Says why a capability is unavailable here (network namespaces, iptables), or undefined. */
export type Probe = () => string | undefined;

/** True when the environment says this is CI (`CI=true`, or any value but empty, 0 or false). */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = (env['CI'] ?? '').trim().toLowerCase();
  return ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * Why a suite that needs `tools` (and what `probes` check) must be skipped, or undefined when it
 * can run. Under CI it never skips: it throws, and the suite fails to run with the reason. On a
 * developer machine the reason is written to stderr before it is returned.
 */
export function skipReason(suite: string, tools: readonly Tool[], ...probes: Probe[]): string | undefined {
  let unmet = missingTools(tools);
  for (const probe of probes) unmet ??= probe();
  if (unmet === undefined) return undefined;
  if (isCi()) throw new Error(`${suite}: ${unmet} (CI=true: a missing tool fails the suite, never skips it)`);
  process.stderr.write(`${suite}: skipped: ${unmet}\n`);
  return unmet;
}

/** `describe` when the suite's needs are met, `describe.skip` when not (see skipReason). */
export function describeWithTools(suite: string, tools: readonly Tool[], ...probes: Probe[]): jest.Describe {
  return skipReason(suite, tools, ...probes) === undefined ? describe : describe.skip;
}

/** `it` when the test's needs are met, `it.skip` when not (see skipReason). */
export function itWithTools(test: string, tools: readonly Tool[], ...probes: Probe[]): jest.It {
  return skipReason(test, tools, ...probes) === undefined ? it : it.skip;
}
