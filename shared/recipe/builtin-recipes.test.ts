/**
 * Every built-in recipe compiles, and every step says where in the vendor's document it comes
 * from; the agent's own recipe traces to Convoy's documentation instead, which must say it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compileRecipe } from './compile';
import { PHASES, type Recipe, type Step } from './types';

const DIR = path.resolve(__dirname, '../../recipes');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));

function allSteps(recipe: Recipe): Step[] {
  return PHASES.flatMap((p) => (p === 'finalize' ? (recipe.phases.finalize?.steps ?? []) : recipe.phases[p]));
}

describe('built-in recipes', () => {
  it('include the five applications of the seeds', () => {
    for (const name of ['passbolt', 'bluemind', 'bluemind-redhat', 'cells', 'kcm', 'owncloud']) {
      expect(FILES).toContain(`${name}.yaml`);
    }
  });

  it.each(FILES)('%s compiles and traces every step to a seed document', (file) => {
    const recipe = compileRecipe(readFileSync(path.join(DIR, file), 'utf8'), file);
    expect(`${recipe.name}.yaml`).toBe(file);
    const steps = allSteps(recipe);
    expect(steps.length).toBeGreaterThan(2);
    if (recipe.name === 'convoy-agent') {
      const doc = readFileSync(path.resolve(__dirname, '../../docs/packaging.md'), 'utf8');
      for (const step of steps) {
        const m = /^convoy docs\/packaging\.md "([^"]+)"/.exec(step.source ?? '');
        expect(m).not.toBeNull();
        expect(doc).toContain(`## ${m?.[1] ?? '?'}`);
      }
      return;
    }
    for (const step of steps) expect(step.source).toMatch(/^00[0-4] /);
  });

  it('finalizes BlueMind once, on the core host, through /setup', () => {
    const recipe = compileRecipe(readFileSync(path.join(DIR, 'bluemind.yaml'), 'utf8'), 'bluemind.yaml');
    expect(recipe.phases.finalize?.role).toBe('core');
    expect(recipe.phases.finalize?.steps.map((s) => s.type)).toEqual(['http']);
    expect(recipe.cautions.some((c) => c.from === '4.0.x' && /virtual/.test(c.message))).toBe(true);
  });
});
