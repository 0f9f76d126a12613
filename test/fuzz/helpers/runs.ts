/**
 * Run counts and seeds for the fuzz suite. Seeds are fixed so that a run is reproducible and a
 * failure names its seed (fast-check prints it with the counterexample); CONVOY_FUZZ_RUNS
 * multiplies every count for a longer hunt, CONVOY_FUZZ_SEED changes the seed.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Parameters } from 'fast-check';

const factor = Math.max(1, Number(process.env['CONVOY_FUZZ_RUNS'] ?? '1') || 1);
const seedBase = Number(process.env['CONVOY_FUZZ_SEED'] ?? '20240617') || 20240617;

/** fast-check parameters: `runs` scaled by CONVOY_FUZZ_RUNS, a seed derived from the base. */
export function fuzzParams<T>(runs: number, salt = 0): Parameters<T> {
  const seed = (seedBase + salt) | 0;
  return { numRuns: Math.round(runs * factor), seed, verbose: 1 };
}

/** A count scaled like the fast-check runs, for hand-written loops (requests sent, files mutated). */
export function scaled(count: number): number {
  return Math.round(count * factor);
}

let collect: (() => void) | undefined;

/** Heap in use after a full collection, in MB (exposes gc at run time: jest does not pass flags). */
export function heapUsedMb(): number {
  if (collect === undefined) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
  collect();
  return process.memoryUsage().heapUsed / (1024 * 1024);
}

/** A random generator seeded for hand-written loops (mulberry32), so they replay like fast-check. */
export function seededRandom(salt = 0): () => number {
  let a = (seedBase + salt) | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
