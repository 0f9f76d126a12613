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

/**
 * Nesting deeper than this is refused before the YAML library builds the document: its composer
 * recurses once per level and relies on catching the stack overflow, and past a few hundred levels
 * V8 may instead abort the whole process ("RegExpCompiler Allocation failed") while it compiles a
 * regular expression near the stack limit. Real files nest fewer than 20 levels.
 */
export const MAX_YAML_DEPTH = 100;

/** YAML syntax errors reported one by one; past this, one more problem gives their count. */
const MAX_SYNTAX_PROBLEMS = 20;

type Node = YamlModule.Node | YamlModule.Pair | YamlModule.Document;

export function readRecipeYaml(text: string): YamlSource {
  if (Buffer.byteLength(text, 'utf8') > MAX_RECIPE_BYTES) {
    return { data: undefined, problems: [{ path: '', message: `larger than ${MAX_RECIPE_BYTES} bytes` }] };
  }
  // Required lazily: the YAML library costs about 5 MB of resident memory, and an agent that is
  // handed already-parsed data (compileRecipeData) should not pay for it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Y = require('yaml') as typeof YamlModule;
  const tooDeep = yamlNestingProblem(Y, text);
  if (tooDeep !== null) return { data: undefined, problems: [{ path: '', message: tooDeep }] };
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
  if (problems.length > MAX_SYNTAX_PROBLEMS) {
    const more = problems.length - MAX_SYNTAX_PROBLEMS;
    problems.length = MAX_SYNTAX_PROBLEMS;
    problems.push({ path: '', message: `not valid YAML: ${more} more errors` });
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

/**
 * Says where YAML text nests deeper than MAX_YAML_DEPTH, or null. Reads lexemes only (the lexer
 * does not recurse) and stops at the first excess. The depth it counts is an upper bound: flow
 * brackets open, plus the indentation and the block indicators (`-`, `?`, `:`) of the line.
 */
export function yamlNestingProblem(Y: typeof YamlModule, text: string): string | null {
  let flow = 0;
  let block = 0;
  let line = 1;
  let lineStart = true;
  for (const lexeme of new Y.Lexer().lex(text)) {
    const type = Y.CST.tokenType(lexeme);
    if (type === 'newline') {
      line += 1;
      block = 0;
      lineStart = true;
      continue;
    }
    if (type === null) line += lexeme.split('\n').length - 1; // multi-line scalars
    if (type === 'space' && lineStart) block += lexeme.length;
    else if (type === 'flow-map-start' || type === 'flow-seq-start') flow += 1;
    else if (type === 'flow-map-end' || type === 'flow-seq-end') flow = Math.max(0, flow - 1);
    else if (
      flow === 0 &&
      (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind')
    )
      block += 1;
    if (type !== 'space' && type !== 'doc-mode' && type !== 'byte-order-mark') lineStart = false;
    if (flow + block > MAX_YAML_DEPTH) return `nested deeper than ${MAX_YAML_DEPTH} levels (at line ${line})`;
  }
  return null;
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
