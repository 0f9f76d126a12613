/**
 * No import cycles in the product code, type-only imports included, at file and at folder level
 * (see ./import-graph.ts for what each level means). eslint's import-x/no-cycle skips type-only
 * imports and has no option not to; this test is the guard that sees them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildImportGraph, fileCycles, folderCycles, type Cycle, type Sources } from './import-graph';

const ROOT = path.resolve(__dirname, '../..');
// test/ too, for file-level cycles: unit tests next to the code import its helpers, and no file
// may cycle. Folder level is about the product's responsibilities: its non-test files only (a
// test beside the code importing test/helpers/ is not a dependency of that folder).
const SCANNED = ['agent', 'controller', 'shared', 'proto', 'scripts', 'test'];
const isProduct = (file: string): boolean => !file.startsWith('test/') && !file.endsWith('.test.ts');

/**
 * Cycles tolerated for now: none. The two known when this guard was added (issue 12:
 * operator/handlers.ts <-> operator/run-phase.ts, and operator/ <-> rollout/) were taken apart by
 * moving phase sending to controller/phase/ and the service dependencies to controller/deps.ts.
 * A listed cycle that no longer exists fails the test too, so this list only ever shrinks.
 */
const KNOWN_FILE_CYCLES: readonly string[] = [];
const KNOWN_FOLDER_CYCLES: readonly string[] = [];

function repoSources(): Sources {
  const sources = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts')) sources.set(rel, readFileSync(path.join(ROOT, rel), 'utf8'));
    }
  };
  for (const dir of SCANNED) walk(dir);
  return sources;
}

const show = (c: Cycle): string => `${c.path}\n    ${c.via.join('\n    ')}`;

describe('import cycles', () => {
  const sources = repoSources();
  const graph = buildImportGraph(sources);
  const product = buildImportGraph(new Map([...sources].filter(([file]) => isProduct(file))));

  it('sees the whole tree: every relative import resolves to a scanned file', () => {
    expect(graph.files.length).toBeGreaterThan(100);
    expect(graph.unresolved).toEqual([]);
  });

  it.each([
    ['file', fileCycles, KNOWN_FILE_CYCLES],
    ['folder', folderCycles, KNOWN_FOLDER_CYCLES],
  ] as const)(
    'has no %s-level cycle beyond the known ones, and each known one still exists',
    (level, find, known) => {
      const cycles = find(level === 'file' ? graph : product);
      expect(cycles.filter((c) => !known.includes(c.key)).map(show)).toEqual([]);
      const found = new Set(cycles.map((c) => c.key));
      expect(known.filter((k) => !found.has(k)).map((k) => `fixed, remove from the list: ${k}`)).toEqual([]);
    },
  );
});

describe('import graph', () => {
  const graphOf = (files: Record<string, string>): ReturnType<typeof buildImportGraph> =>
    buildImportGraph(new Map(Object.entries(files)));

  it.each([
    ['a type-only import', "import type { B } from './b';"],
    ['an inline type import', "import { type B } from './b';"],
    ['an export-from', "export { b } from './b';"],
    ['a type re-export', "export type { B } from './b';"],
    ['a dynamic import', "export const load = () => import('./b');"],
    ['a require', "export const b = require('./b');"],
  ])('counts %s as an edge of a file-level cycle', (_what, importOfB) => {
    const cycles = fileCycles(graphOf({ 'x/a.ts': importOfB, 'x/b.ts': "import { a } from './a';" }));
    expect(cycles.map((c) => [c.key, c.path])).toEqual([['x/a.ts <-> x/b.ts', 'x/a.ts -> x/b.ts -> x/a.ts']]);
  });

  it('names a longer cycle by one path through it and the imports that make it', () => {
    const cycles = fileCycles(
      graphOf({
        'a.ts': "import './b';",
        'b.ts': "import './c';",
        'c.ts': "import type { A } from './a';",
        'd.ts': "import './a';",
      }),
    );
    expect(cycles).toEqual([
      {
        key: 'a.ts <-> b.ts <-> c.ts',
        path: 'a.ts -> b.ts -> c.ts -> a.ts',
        via: ['a.ts imports b.ts', 'b.ts imports c.ts', 'c.ts imports a.ts'],
      },
    ]);
  });

  it('finds a folder-level cycle between a folder and a file of its parent', () => {
    const graph = graphOf({
      'shared/schedule.ts': "import type { W } from './fleet/types';",
      'shared/fleet/types.ts': '',
      'shared/fleet/schema.ts': "import { cron } from '../schedule';",
    });
    expect(fileCycles(graph)).toEqual([]);
    expect(folderCycles(graph)).toEqual([
      {
        key: 'shared/fleet/ <-> shared/schedule.ts',
        path: 'shared/fleet/ -> shared/schedule.ts -> shared/fleet/',
        via: [
          'shared/fleet/schema.ts imports shared/schedule.ts',
          'shared/schedule.ts imports shared/fleet/types.ts',
        ],
      },
    ]);
  });

  it('finds a folder-level cycle between sibling folders, whatever files make it', () => {
    const graph = graphOf({
      'c/operator/handlers.ts': "import { x } from '../rollout/store';",
      'c/rollout/store.ts': '',
      'c/rollout/engine.ts': "import type { D } from '../operator/deps/types';",
      'c/operator/deps/types.ts': '',
    });
    expect(folderCycles(graph).map((c) => c.key)).toEqual(['c/operator/ <-> c/rollout/']);
  });

  it('lets an entry point wire its sub-folders while they use its sibling files', () => {
    const graph = graphOf({
      'cli/main.ts': "import { run } from './commands/run';",
      'cli/commands/run.ts': "import { out } from '../output';",
      'cli/output.ts': '',
    });
    expect(folderCycles(graph)).toEqual([]);
  });

  it('reports a relative import it cannot resolve, and ignores packages', () => {
    const graph = graphOf({
      'a.ts': "import x from 'yaml';\nimport { y } from './missing';\nimport p from '../package.json';",
    });
    expect(graph.unresolved).toEqual(['a.ts -> ./missing']);
  });
});
