/**
 * Reads recipe YAML into plain data with the same safety as the agent's config (unique keys,
 * aliases refused), but reports duplicate keys and aliases at their paths (`phases.check[0].id`)
 * rather than by line alone, so that they read like every other recipe problem.
 */
import type * as YamlModule from 'yaml';
import { at, type Problem } from '../schema';

export interface YamlSource {
  /** The data, or undefined when the text cannot be read as YAML at all (see problems). */
  readonly data: unknown;
  readonly problems: readonly Problem[];
}

/** Recipes are a few kilobytes; anything near this is not a recipe. */
export const MAX_RECIPE_BYTES = 1024 * 1024;

type Node = YamlModule.Node | YamlModule.Pair | YamlModule.Document;

export function readRecipeYaml(text: string): YamlSource {
  if (Buffer.byteLength(text, 'utf8') > MAX_RECIPE_BYTES) {
    return { data: undefined, problems: [{ path: '', message: `larger than ${MAX_RECIPE_BYTES} bytes` }] };
  }
  // Required lazily: the YAML library costs about 5 MB of resident memory, and an agent that is
  // handed already-parsed data (compileRecipeData) should not pay for it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Y = require('yaml') as typeof YamlModule;
  const lines = new Y.LineCounter();
  const doc = Y.parseDocument(text, { uniqueKeys: true, lineCounter: lines });
  const problems: Problem[] = [];
  const where = (offset: number): string => {
    const { line, col } = lines.linePos(offset);
    return `line ${line}, column ${col}`;
  };
  // Duplicate keys are reported below with their paths; every other YAML error stops here.
  for (const err of doc.errors) {
    if (err.code === 'DUPLICATE_KEY') continue;
    const first = err.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? '';
    problems.push({ path: '', message: `not valid YAML: ${where(err.pos[0])}: ${first}` });
  }
  if (problems.length > 0) return { data: undefined, problems };

  let aliases = 0;
  Y.visit(doc, {
    Alias(_key, node, ancestors) {
      aliases += 1;
      const path = pathOf(Y, [...ancestors, node]);
      // Refused outright, as in agent.yaml: a recipe has no use for them (billion laughs).
      problems.push({
        path,
        message: `YAML aliases are not allowed (*${node.source} at ${where(node.range?.[0] ?? 0)})`,
      });
    },
    Map(_key, node, ancestors) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        const key = Y.isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const offset = Y.isNode(pair.key) ? (pair.key.range?.[0] ?? 0) : 0;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, offset);
        else {
          const path = at(pathOf(Y, [...ancestors, node]), key);
          problems.push({ path, message: `duplicate key (at ${where(offset)}; first at ${where(first)})` });
        }
      }
    },
  });
  if (aliases > 0) return { data: undefined, problems };
  return { data: doc.toJS({ maxAliasCount: 0 }) as unknown, problems };
}

/** The data path (`phases.check[1]`) of the last node of a chain of YAML ancestors. */
function pathOf(Y: typeof YamlModule, chain: readonly unknown[]): string {
  let path = '';
  for (let i = 0; i < chain.length - 1; i++) {
    const node = chain[i] as Node;
    const child = chain[i + 1];
    if (Y.isPair(node) && child === node.value) {
      path = at(path, Y.isScalar(node.key) ? String(node.key.value) : String(node.key));
    } else if (Y.isSeq(node)) {
      path = `${path}[${node.items.indexOf(child)}]`;
    }
  }
  return path;
}
