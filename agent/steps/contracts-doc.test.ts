/** docs/recipes.md documents every step type with the contract its executor actually has. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { STEP_REGISTRY } from '.';

const DOC = readFileSync(path.join(__dirname, '../../docs/recipes.md'), 'utf8');

describe('step contracts in docs/recipes.md', () => {
  it.each([...STEP_REGISTRY.keys()])('documents %s with its interrupted policy', (type) => {
    const section = DOC.split(`### \`${type}\``)[1]?.split('\n### ')[0] ?? '';
    expect(section).not.toBe('');
    const contract = STEP_REGISTRY.get(type)?.contract;
    expect(section).toContain(`Interrupted: \`${contract?.interrupted ?? '?'}\``);
    expect(section).toContain(`Idempotent: ${contract?.idempotent === true ? 'yes' : 'no'}`);
  });
});
