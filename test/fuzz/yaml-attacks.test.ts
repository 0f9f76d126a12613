/**
 * Malicious YAML (security.md, "malicious YAML"): prototype-pollution keys at every level of the
 * real files, merge keys, a billion laughs and deep nesting. Each is refused with a path (or kept
 * as plain data), quickly, and Object.prototype stays untouched.
 */
import { parseDocument, isMap, visit, type Document } from 'yaml';
import { LOADERS, loadChecked, problemsOf, prototypePolluted, type Loader } from './helpers/loaders';
import { heapUsedMb, scaled } from './helpers/runs';

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', '<<'] as const;

/**
 * Variants of `text` with `key: {polluted: 1, isAdmin: true}` added to one mapping each: every
 * `stride`-th mapping from `offset`, so that the four keys together cover every mapping of every
 * file while each test stays short (CONVOY_FUZZ_RUNS=4 or more covers every mapping with every key).
 */
function withKeyAtEveryLevel(text: string, key: string, offset: number): string[] {
  const stride = Math.max(1, Math.round(4 / scaled(1)));
  const count = (doc: Document): number => {
    let n = 0;
    visit(doc, { Map: () => void (n += 1) });
    return n;
  };
  const total = count(parseDocument(text));
  const out: string[] = [];
  // A file with fewer mappings than the stride still gets one variant per key.
  const first = total <= stride ? offset % total : offset % stride;
  for (let target = first; target < total; target += stride) {
    const doc = parseDocument(text);
    let i = 0;
    visit(doc, {
      Map(_key, node) {
        if (i++ === target && isMap(node)) node.add(doc.createPair(key, { polluted: 1, isAdmin: true }));
      },
    });
    out.push(doc.toString());
  }
  return out;
}

/** How a loader names `key` in a problem path. */
const pathMark = (key: string): string => (key === '<<' ? '["<<"]' : key);

describe.each(LOADERS.map((l) => [l.name, l] as const))(
  'fuzz › malicious YAML › %s',
  (_name, loader: Loader) => {
    it.each(HOSTILE_KEYS)('a %s key at every level is refused with its path, prototype untouched', (key) => {
      const offset = HOSTILE_KEYS.indexOf(key);
      let variants = 0;
      for (const sample of loader.samples.filter((s) => !s.trimStart().startsWith('{'))) {
        for (const text of withKeyAtEveryLevel(sample, key, offset)) {
          variants += 1;
          const outcome = loadChecked(loader, text);
          // Nowhere does a mapping {polluted, isAdmin} fit the schema: the key cannot pass silently.
          expect(outcome.ok).toBe(false);
          if (outcome.ok) continue;
          const named =
            problemsOf(outcome.error).some((p) => p.path.includes(pathMark(key))) ||
            outcome.error.message.includes(`${key}: `);
          expect(named).toBe(true);
          expect(prototypePolluted()).toBe(false);
        }
      }
      expect(variants).toBeGreaterThan(0);
    });

    it('JSON-style {"__proto__": ...} and merge keys with anchors are refused, prototype untouched', () => {
      for (const text of [
        '{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 1}}}',
        'base: &b {polluted: 1}\n<<: *b\n',
        '<<: {polluted: 1}\n__proto__: {isAdmin: true}\n',
        'a: !!js/function "function(){}"\n',
        '__proto__: !!map {polluted: 1}\n',
      ]) {
        expect(loadChecked(loader, text).ok).toBe(false);
        expect(prototypePolluted()).toBe(false);
      }
    });

    it('a billion laughs is refused quickly, naming aliases, with the heap intact', () => {
      const levels = ['lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
      for (let i = 1; i < 10; i++) {
        const prev = String.fromCharCode(96 + i);
        const cur = String.fromCharCode(97 + i);
        levels.push(`l${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
      }
      const text = levels.join('\n') + '\n';
      const heapBefore = heapUsedMb();
      const cpuBefore = process.cpuUsage();
      const outcome = loadChecked(loader, text);
      const cpu = process.cpuUsage(cpuBefore);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      const heapGrowth = heapUsedMb() - heapBefore;
      console.log(
        `${loader.name}: billion laughs refused in ${cpuMs.toFixed(1)} ms CPU, heap +${heapGrowth.toFixed(1)} MB`,
      );
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(outcome.error.message).toMatch(/alias/i);
      // 9^10 strings would take gigabytes and minutes; refused, it takes milliseconds.
      expect(cpuMs).toBeLessThan(1000);
      expect(heapGrowth).toBeLessThan(50);
    });

    // Found by this suite: past a few hundred levels the YAML composer overflows the stack and V8
    // could abort the whole process ("RegExpCompiler Allocation failed") on the second such file.
    it.each([
      ['flow brackets', '['.repeat(100_000)],
      ['flow mappings', '{a: '.repeat(50_000)],
      ['compact sequences', '- '.repeat(200_000) + 'x'],
      ['explicit keys', '? '.repeat(200_000) + 'x'],
      ['indentation', Array.from({ length: 1400 }, (_, i) => ' '.repeat(i) + 'a:').join('\n')],
    ])('deep nesting (%s) is refused with a clear message, twice in a row', (_kind, text) => {
      for (let i = 0; i < 2; i++) {
        const outcome = loadChecked(loader, text);
        expect(outcome.ok).toBe(false);
        if (!outcome.ok)
          expect(outcome.error.message).toMatch(/nested deeper than 100 levels \(at line \d+\)/);
      }
    });

    it('many syntax errors make a bounded message', () => {
      const outcome = loadChecked(
        loader,
        'a: "\n'.repeat(1) + ': : :\n'.repeat(5000) + '\t- ]\n'.repeat(5000),
      );
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(outcome.error.message.length).toBeLessThan(64 * 1024);
    });
  },
);
