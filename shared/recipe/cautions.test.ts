import { matchCautions } from './cautions';
import { compileRecipe } from './compile';

const recipe = compileRecipe(
  `
name: mail
versions: { installed: { argv: [v], pattern: '(.*)' } }
cautions:
  - { from: 4.0.x, to: '>=4.1.0', message: virtual inbox folders are deleted }
  - { from: '<4.1.0', to: '>=4.1.0', message: prepare the update in the admin console }
  - { from: '>=4.0.0', to: '>=5.0.0', message: new repository address }
phases: {}
`,
  'mail.yaml',
);

const messagesFor = (installed: string, target: string): string[] =>
  matchCautions(recipe, installed, target).map((c) => c.message);

describe('matchCautions', () => {
  it.each([
    ['4.0.5', '4.1.2', ['virtual inbox folders are deleted', 'prepare the update in the admin console']],
    ['4.1.0', '4.1.2', []],
    ['4.0.5', '4.0.9', []],
    ['3.5.0', '4.1.0', ['prepare the update in the admin console']],
    ['4.1.2', '5.0.0', ['new repository address']],
    [
      '4.0.5',
      '5.0.0',
      [
        'virtual inbox folders are deleted',
        'prepare the update in the admin console',
        'new repository address',
      ],
    ],
  ])('%s -> %s shows %j', (installed, target, expected) => {
    expect(messagesFor(installed, target)).toEqual(expected);
  });

  it('counts prereleases inside a range (semver would skip them by default)', () => {
    expect(messagesFor('4.0.5', '4.1.1-rc.1')).toEqual([
      'virtual inbox folders are deleted',
      'prepare the update in the admin console',
    ]);
    // 4.1.0-rc.1 sorts below 4.1.0: a recipe that means it writes >=4.1.0-0.
    expect(messagesFor('4.0.5', '4.1.0-rc.1')).toEqual([]);
  });

  it('reads versions as the policy does (leading v, packaging revisions)', () => {
    expect(messagesFor('v4.0.5', 'v4.1.2')).toHaveLength(2);
    expect(messagesFor('4.0', '4.1')).toHaveLength(2);
  });

  it('matches nothing for versions that do not parse', () => {
    expect(messagesFor('unknown', '4.1.2')).toEqual([]);
    expect(messagesFor('4.0.5', 'latest')).toEqual([]);
  });
});
