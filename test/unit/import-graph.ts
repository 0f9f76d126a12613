/**
 * The import graph of a set of TypeScript sources, and its cycles at two levels, for
 * ./import-cycles.test.ts. Every relative import counts: `import type`, `export ... from`, dynamic
 * `import()` and `require()` alike. A type-only import has no runtime effect, but it is coupling
 * all the same, and eslint's import-x/no-cycle cannot be told to see it.
 *
 * File level: a cycle of files importing each other.
 *
 * Folder level: inside each directory D, every entry of D (a file directly in D, or a
 * sub-directory of D with everything below it) is one node, and a file below entry A importing a
 * file below entry B is an edge A -> B. A cycle among the entries of some D is a folder-level
 * cycle: `shared/fleet/` -> `shared/schedule.ts` -> `shared/fleet/`. An entry point that wires
 * its sub-folders (`controller/cli/main.ts` -> `commands/`) while they use a sibling file of it
 * (`commands/` -> `controller/cli/common.ts`) is not one: that is the layering style.md §3 asks for.
 */
import path from 'node:path';
import ts from 'typescript';

/** Repository-relative, `/`-separated paths of `.ts` files, with their source. */
export type Sources = ReadonlyMap<string, string>;

export interface Edge {
  readonly from: string;
  readonly to: string;
}

export interface ImportGraph {
  readonly files: readonly string[];
  readonly edges: readonly Edge[];
  /** Relative imports that name no file in the set: `from -> specifier`. */
  readonly unresolved: readonly string[];
}

export interface Cycle {
  /** The nodes of one strongly connected component, sorted: the allow-list key. */
  readonly key: string;
  /** One cycle through them, e.g. `a.ts -> b.ts -> a.ts`. */
  readonly path: string;
  /** The file imports that make the edges of `path` (folder level: one per edge). */
  readonly via: readonly string[];
}

const posix = path.posix;

export function buildImportGraph(sources: Sources): ImportGraph {
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  for (const [file, text] of sources) {
    const info = ts.preProcessFile(text, true, true);
    const seen = new Set<string>();
    for (const { fileName: spec } of info.importedFiles) {
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(sources, file, spec);
      if (target === undefined) {
        if (!spec.endsWith('.json')) unresolved.push(`${file} -> ${spec}`);
        continue;
      }
      if (!seen.has(target)) edges.push({ from: file, to: target });
      seen.add(target);
    }
  }
  return { files: [...sources.keys()].sort(), edges, unresolved };
}

function resolveRelative(sources: Sources, from: string, spec: string): string | undefined {
  const base = posix.normalize(posix.join(posix.dirname(from), spec));
  const stem = base.replace(/\.js$/, '');
  return [`${stem}.ts`, `${stem}.d.ts`, `${base}/index.ts`, base].find((c) => sources.has(c));
}

export function fileCycles(graph: ImportGraph): Cycle[] {
  return cyclesOf(
    graph.files,
    graph.edges.map((e) => ({ ...e, via: `${e.from} imports ${e.to}` })),
  );
}

export function folderCycles(graph: ImportGraph): Cycle[] {
  const edges: (Edge & { via: string })[] = [];
  for (const e of graph.edges) {
    const pair = entriesApart(e.from, e.to);
    if (pair !== undefined) edges.push({ from: pair[0], to: pair[1], via: `${e.from} imports ${e.to}` });
  }
  const nodes = [...new Set(edges.flatMap((e) => [e.from, e.to]))].sort();
  return cyclesOf(nodes, edges);
}

/**
 * The entries of the deepest directory holding both files under which `from` and `to` lie:
 * `agent/phase/remote.ts`, `agent/commands.ts` -> [`agent/phase/`, `agent/commands.ts`].
 * Undefined for two files of one directory (a file-level edge only).
 */
function entriesApart(from: string, to: string): [string, string] | undefined {
  const a = from.split('/');
  const b = to.split('/');
  let i = 0;
  while (i < a.length - 1 && i < b.length - 1 && a[i] === b[i]) i++;
  if (i === a.length - 1 && i === b.length - 1) return undefined;
  const entry = (parts: string[]): string =>
    parts.slice(0, i + 1).join('/') + (i === parts.length - 1 ? '' : '/');
  return [entry(a), entry(b)];
}

/** Tarjan's strongly connected components with more than one node (or a node importing itself). */
function cyclesOf(nodes: readonly string[], edges: readonly (Edge & { via: string })[]): Cycle[] {
  const out = new Map<string, (Edge & { via: string })[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const { to } of out.get(v) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(v, Math.min(low.get(v)!, index.get(to)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (out.get(v) ?? []).some((e) => e.to === v)) components.push(component.sort());
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return components.map((c) => describeCycle(c, out)).sort((x, y) => x.key.localeCompare(y.key));
}

/** One shortest cycle from the first node back to itself, inside the component. */
function describeCycle(component: string[], out: Map<string, (Edge & { via: string })[]>): Cycle {
  const members = new Set(component);
  const start = component[0]!;
  const cameBy = new Map<string, Edge & { via: string }>();
  const queue = [start];
  while (queue.length > 0 && !cameBy.has(start)) {
    const v = queue.shift()!;
    for (const e of out.get(v) ?? []) {
      if (!members.has(e.to) || cameBy.has(e.to)) continue;
      cameBy.set(e.to, e);
      queue.push(e.to);
    }
  }
  const steps: (Edge & { via: string })[] = [];
  let at = start;
  do {
    const e = cameBy.get(at)!;
    steps.unshift(e);
    at = e.from;
  } while (at !== start);
  return {
    key: component.join(' <-> '),
    path: [start, ...steps.map((e) => e.to)].join(' -> '),
    via: steps.map((e) => e.via),
  };
}
