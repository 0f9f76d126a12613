/**
 * SQL lives in the store modules only (controller/store/ and the *-store.ts files): the engine,
 * the services and the handlers ask them, so a schema change is made in one place and the
 * decisions stay testable without a database.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const SQL =
  /\b(SELECT\s+[\w*(]|UPDATE\s+\w+\s+SET|INSERT\s+(OR\s+\w+\s+)?INTO|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE)/;

function isStoreModule(file: string): boolean {
  return file.startsWith('controller/store/') || file.endsWith('-store.ts');
}

/** `file:line` of every SQL statement in `text`. */
function sqlLines(file: string, text: string): string[] {
  return text.split('\n').flatMap((line, i) => (SQL.test(line) ? [`${file}:${i + 1}`] : []));
}

function productFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return productFiles(rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [rel] : [];
  });
}

describe('SQL only in the store modules', () => {
  it('finds SQL nowhere else in controller/ and agent/', () => {
    const files = [...productFiles('controller'), ...productFiles('agent')];
    expect(files.length).toBeGreaterThan(50);
    const outside = files
      .filter((f) => !isStoreModule(f))
      .flatMap((f) => sqlLines(f, readFileSync(path.join(ROOT, f), 'utf8')));
    expect(outside).toEqual([]);
  });

  it('sees the statements the store modules hold', () => {
    const text = readFileSync(path.join(ROOT, 'controller/rollout/rollout-store.ts'), 'utf8');
    expect(sqlLines('rollout-store.ts', text).length).toBeGreaterThan(3);
  });

  it.each([
    ["await tx.run('UPDATE phase_runs SET state = ? WHERE id = ?', [s, id]);"],
    ['const row = await db.get(`SELECT id FROM rollouts WHERE id = ?`, [id]);'],
    ["await tx.run('INSERT OR REPLACE INTO step_results VALUES (?)', [x]);"],
    ["await tx.run('DELETE FROM hosts WHERE id = ?', [id]);"],
  ])('finds %s', (line) => {
    expect(sqlLines('controller/rollout/engine.ts', `// engine\n${line}\n`)).toEqual([
      'controller/rollout/engine.ts:2',
    ]);
  });

  it('does not take prose for SQL', () => {
    expect(sqlLines('x.ts', '// select the hosts, then update the rollout and insert a row\n')).toEqual([]);
  });
});
