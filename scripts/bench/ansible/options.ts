/** Command-line options of `npm run bench:ansible`, their defaults and the usage text. */
import { parseArgs } from 'node:util';

export const WORKLOADS = ['noop', 'check', 'staged'] as const;
export type Workload = (typeof WORKLOADS)[number];
/** `default`: Ansible as installed (forks 5, no pipelining); `tuned`: forks 50 and pipelining. */
export const ANSIBLE_CONFIGS = ['default', 'tuned'] as const;
export type AnsibleConfig = (typeof ANSIBLE_CONFIGS)[number];

export interface AnsibleBenchOptions {
  /** Fleet sizes, each built afresh (namespaces, sshds, agents), in the order given. */
  readonly sizes: readonly number[];
  /** Measured runs per (size, workload, side); the median is reported. */
  readonly runs: number;
  readonly workloads: readonly Workload[];
  readonly ansible: readonly AnsibleConfig[];
  /** Only the final JSON line on stdout, no table. */
  readonly json: boolean;
  readonly timeoutMinutes: number;
}

export const USAGE =
  'usage: npm run bench:ansible -- [--sizes 10,50,100] [--runs 3] [--workloads noop,check,staged]\n' +
  '         [--ansible default,tuned] [--json] [--timeout-minutes 120]\n';

/** Throws on an unknown option or a value out of range; the caller prints USAGE. */
export function parseAnsibleOptions(argv: readonly string[]): AnsibleBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      sizes: { type: 'string', default: '10,50,100' },
      runs: { type: 'string', default: '3' },
      workloads: { type: 'string', default: WORKLOADS.join(',') },
      ansible: { type: 'string', default: ANSIBLE_CONFIGS.join(',') },
      json: { type: 'boolean', default: false },
      'timeout-minutes': { type: 'string', default: '120' },
    },
    strict: true,
  });
  const sizes = listOf('sizes', values.sizes).map((s) => integer('sizes', s, 1));
  // The namespaces' subnet holds 200 hosts (scripts/fixtures/netns.ts).
  if (sizes.some((n) => n > 200)) throw new Error('--sizes: at most 200 hosts');
  return {
    sizes,
    runs: integer('runs', values.runs, 1),
    workloads: oneOf('workloads', listOf('workloads', values.workloads), WORKLOADS),
    ansible: oneOf('ansible', listOf('ansible', values.ansible), ANSIBLE_CONFIGS),
    json: values.json === true,
    timeoutMinutes: integer('timeout-minutes', values['timeout-minutes'], 1),
  };
}

function listOf(name: string, text: string | undefined): string[] {
  const items = (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new Error(`--${name} must name at least one value`);
  return [...new Set(items)];
}

function integer(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
}

function oneOf<T extends string>(name: string, items: readonly string[], allowed: readonly T[]): T[] {
  const bad = items.filter((i) => !(allowed as readonly string[]).includes(i));
  if (bad.length > 0) throw new Error(`--${name}: unknown ${bad.join(', ')} (known: ${allowed.join(', ')})`);
  return items as T[];
}
