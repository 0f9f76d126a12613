/**
 * The rollout benchmarks' own options, taken out of the command line before the fan-out
 * benchmark parses the rest (./options), so that each keeps its strict parser.
 */

export const PARTS = ['fanout', 'downtime', 'rollout', 'enroll'] as const;
export type Part = (typeof PARTS)[number];

export interface RolloutBenchOptions {
  /** Which parts run, in this order (default all). */
  readonly parts: readonly Part[];
  /** Hosts of each BlueMind-like fleet whose downtime is measured (default 2). */
  readonly downtimeHosts: number;
  /** Package payload per host, MB of 10^6 bytes (default 100). */
  readonly payloadMb: number;
  /** Each host's repository bandwidth, MB/s (default 10). */
  readonly repoMbPerSecond: number;
  /** bm-core's postinst "apply" time, ms (default 1000). */
  readonly applyMs: number;
  /** Simulated hosts of the no-op rollout (default 200). */
  readonly rolloutHosts: number;
  /** Its staging concurrency and batch size (default 50). */
  readonly rolloutConcurrency: number;
}

export const ROLLOUT_USAGE =
  '       [--only fanout,downtime,rollout,enroll] [--downtime-hosts 2] [--payload-mb 100] [--repo-mb-per-second 10]\n' +
  '         [--apply-ms 1000] [--rollout-hosts 200] [--rollout-concurrency 50]\n';

const DEFAULTS: Readonly<Record<string, string>> = {
  only: PARTS.join(','),
  'downtime-hosts': '2',
  'payload-mb': '100',
  'repo-mb-per-second': '10',
  'apply-ms': '1000',
  'rollout-hosts': '200',
  'rollout-concurrency': '50',
};

/** Splits argv into the fan-out benchmark's arguments and ours; throws on a bad value of ours. */
export function splitRolloutOptions(argv: readonly string[]): {
  rest: string[];
  options: RolloutBenchOptions;
} {
  const values: Record<string, string> = { ...DEFAULTS };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const name = m?.[1];
    if (name === undefined || !(name in DEFAULTS)) {
      rest.push(arg);
      continue;
    }
    const value = m?.[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    values[name] = value;
  }
  return { rest, options: compileOptions(values) };
}

function compileOptions(v: Readonly<Record<string, string>>): RolloutBenchOptions {
  const parts = (v['only'] ?? '').split(',').filter((p) => p !== '');
  const unknown = parts.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (parts.length === 0 || unknown.length > 0)
    throw new Error(`--only takes a comma-separated list of ${PARTS.join(', ')}`);
  return {
    parts: PARTS.filter((p) => parts.includes(p)),
    downtimeHosts: integer(v, 'downtime-hosts', 1),
    payloadMb: integer(v, 'payload-mb', 1),
    repoMbPerSecond: integer(v, 'repo-mb-per-second', 1),
    applyMs: integer(v, 'apply-ms', 0),
    rolloutHosts: integer(v, 'rollout-hosts', 1),
    rolloutConcurrency: integer(v, 'rollout-concurrency', 1),
  };
}

function integer(v: Readonly<Record<string, string>>, name: string, min: number): number {
  const n = Number(v[name]);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
}
