import { parse, stringify } from 'yaml';
import { ConvoyError } from '../errors';
import { formatProblem } from '../schema';
import { compileRecipe, compileRecipeData, countSteps, RecipeError } from './compile';
import { DEFAULT_ARTIFACT_MAX_BYTES } from './step-schema';
import type { Recipe } from './types';

/** Every step type, most optional fields left to their defaults. */
const VALID = `
name: demo
description: A demo application
versions:
  installed: { argv: [demo, --version], pattern: 'demo ([0-9.]+)' }
  available: { argv: ['{{var.root}}/bin/demo-list'], pattern: '^v([0-9.]+)$' }
policy: { allowedRange: '>=1.0.0 <3', pinnedVersion: 2.1.0 }
cautions:
  - { from: 1.x, to: '>=2.0.0', message: Read the 2.0 notes. }
secrets: [adminPassword, dbPassword]
vars: { root: /opt/demo, health: 'http://127.0.0.1:8080/health' }
phases:
  check:
    - { id: list, type: apt, action: listUpgradable, packages: [demo], source: seed 1 }
  download:
    - { id: fetch, type: dnf, action: downloadOnly, source: seed 2 }
    - id: stage
      type: artifact
      url: 'https://example.test/{{target}}/demo'
      name: demo-bin
      signatureUrl: 'https://example.test/{{ target }}/demo.sig'
      source: seed 3
    - { id: tags, type: git, action: fetchTags, dir: '{{var.root}}', source: seed 4 }
  upgrade:
    - { id: maint-on, type: maintenance, action: on, flagFile: '{{var.root}}/maintenance', source: seed 5 }
    - { id: stop, type: service, action: stop, name: demo, when: { role: web }, source: seed 6 }
    - id: backup
      type: backup
      paths: ['{{var.root}}/config']
      dumpArgv: [pg_dump, demo]
      dest: /var/backups/demo
      source: seed 7
    - id: migrate
      type: exec
      argv: [demo, migrate, --to, '{{target}}']
      env: { DEMO_FROM: '{{installed}}' }
      stdinSecret: dbPassword
      timeout: 1h
      retries: 2
      acceptExitCodes: [0, 3]
      source: seed 8
    - { id: swap, type: binary.replace, fromStep: stage, target: '{{var.root}}/bin/demo', setcap: cap_net_bind_service=+ep, source: seed 9 }
  finalize:
    role: core
    steps:
      - id: setup
        type: http
        action: request
        method: POST
        url: '{{var.health}}'
        basicAuth: { user: admin, passwordSecret: adminPassword }
        source: seed 10
  verify:
    - id: health
      type: http
      action: check
      url: '{{var.health}}'
      jsonField: { path: status.version, equals: '{{target}}' }
      backoff: 2s
      retries: 5
      source: seed 11
  rollback:
    - { id: restore, type: restore, fromStep: backup, source: seed 12 }
    - { id: checkout, type: git, action: checkoutTag, dir: /opt/demo, when: { notRole: [edge] }, source: seed 13 }
`;

type Data = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The valid recipe, changed by `edit`, as YAML. */
function variant(edit: (r: Data) => void): string {
  const data = parse(VALID) as Data;
  edit(data);
  return stringify(data);
}

function problemsOf(text: string): string[] {
  try {
    compileRecipe(text, 'demo.yaml');
  } catch (err) {
    if (err instanceof RecipeError) return err.problems.map(formatProblem);
    throw err;
  }
  throw new Error('the recipe compiled');
}

describe('compileRecipe', () => {
  describe('a valid recipe', () => {
    const recipe = compileRecipe(VALID, 'demo.yaml');

    it('compiles with defaults applied', () => {
      expect(recipe.name).toBe('demo');
      expect(recipe.policy).toEqual({
        majorNeedsApproval: true,
        allowDowngrade: false,
        allowedRange: '>=1.0.0 <3',
        pinnedVersion: '2.1.0',
      });
      expect(recipe.vars).toEqual({ root: '/opt/demo', health: 'http://127.0.0.1:8080/health' });
      expect(countSteps(recipe)).toBe(13);
      expect(recipe.phases.check[0]).toEqual({
        id: 'list',
        type: 'apt',
        action: 'listUpgradable',
        packages: ['demo'],
        frontend: 'apt-get',
        source: 'seed 1',
        timeoutMs: 30 * 60_000,
        retries: 0,
      });
      expect(recipe.phases.download).toMatchObject([
        { type: 'dnf', command: 'yum', packages: [], timeoutMs: 30 * 60_000 },
        { type: 'artifact', maxBytes: DEFAULT_ARTIFACT_MAX_BYTES, timeoutMs: 30 * 60_000 },
        { type: 'git', tagPattern: 'v*', timeoutMs: 5 * 60_000 },
      ]);
      expect(recipe.phases.upgrade).toMatchObject([
        { type: 'maintenance', timeoutMs: 60_000 },
        { type: 'service', when: { role: ['web'] }, timeoutMs: 2 * 60_000 },
        { type: 'backup', timeoutMs: 30 * 60_000 },
        {
          type: 'exec',
          timeoutMs: 3_600_000,
          retries: 2,
          acceptExitCodes: [0, 3],
          env: { DEMO_FROM: '{{installed}}' },
        },
        { type: 'binary.replace', timeoutMs: 2 * 60_000 },
      ]);
      expect(recipe.phases.finalize).toMatchObject({
        role: 'core',
        steps: [{ method: 'POST', expectStatus: [200] }],
      });
      expect(recipe.phases.verify[0]).toMatchObject({
        method: 'GET',
        backoffMs: 2000,
        retries: 5,
        timeoutMs: 60_000,
      });
      expect(recipe.phases.rollback[1]).toMatchObject({ when: { notRole: ['edge'] } });
    });

    it('is frozen all the way down', () => {
      const frozen = (v: unknown): boolean =>
        typeof v !== 'object' || v === null || (Object.isFrozen(v) && Object.values(v).every(frozen));
      expect(frozen(recipe)).toBe(true);
    });

    it('leaves absent phases empty and finalize absent', () => {
      const small = compileRecipe(
        'name: s\nversions: { installed: { argv: [s], pattern: "(.*)" } }\nphases: {}\n',
        's.yaml',
      );
      expect(small.phases).toEqual({ check: [], download: [], upgrade: [], verify: [], rollback: [] });
      expect(small).toMatchObject({ description: '', cautions: [], secrets: [], vars: {} });
    });

    it('compiles parsed data the same way (JSON from the wire)', () => {
      const again: Recipe = compileRecipeData(JSON.parse(JSON.stringify(parse(VALID))), 'wire');
      expect(again).toEqual(recipe);
    });
  });

  // Each malformed recipe is refused with a problem naming the exact path.
  it.each<[string, string, string]>([
    [
      'a point of no return without manualRecovery',
      variant((r) => (r.phases.upgrade[1].pointOfNoReturn = true)),
      'phases.upgrade[1].pointOfNoReturn: needs the recipe-level manualRecovery',
    ],
    [
      'a point of no return outside upgrade and finalize',
      variant((r) => {
        r.manualRecovery = 'restore by hand';
        r.phases.check[0].pointOfNoReturn = true;
      }),
      'phases.check[0].pointOfNoReturn: only a step of upgrade or finalize can be a point of no return',
    ],
    ['an unknown top-level key', variant((r) => (r.colour = 'red')), 'colour: unknown field (known: name,'],
    [
      'an unknown step key',
      variant((r) => (r.phases.upgrade[1].colour = 'red')),
      'phases.upgrade[1].colour: unknown field (known: id, type, source, timeout, retries, when, pointOfNoReturn, action, name, commands)',
    ],
    [
      'an unknown step type',
      variant((r) => (r.phases.check[0].type = 'teleport')),
      'phases.check[0].type: unknown type "teleport" (one of exec, apt, dnf, git, service, maintenance, backup, restore, artifact, binary.replace, binary.restore, agent.restart, reboot, http)',
    ],
    [
      'a missing step type',
      variant((r) => delete r.phases.check[0].type),
      'phases.check[0].type: is required (one of exec,',
    ],
    ['a missing id', variant((r) => delete r.phases.check[0].id), 'phases.check[0].id: is required'],
    [
      'a bad id',
      variant((r) => (r.phases.check[0].id = '../x')),
      'phases.check[0].id: must be letters, digits',
    ],
    [
      'a missing source',
      variant((r) => delete r.phases.download[0].source),
      'phases.download[0].source: is required',
    ],
    [
      'an empty source',
      variant((r) => (r.phases.download[0].source = ' ')),
      'phases.download[0].source: must be a non-empty string',
    ],
    [
      'a negative timeout',
      variant((r) => (r.phases.upgrade[3].timeout = '-5s')),
      'phases.upgrade[3].timeout: must be a positive duration such as 30s, 10m or 1h (got "-5s")',
    ],
    [
      'a timeout in words',
      variant((r) => (r.phases.upgrade[3].timeout = 'soon')),
      'phases.upgrade[3].timeout: must be a positive duration',
    ],
    [
      'a timeout without a unit',
      variant((r) => (r.phases.upgrade[3].timeout = 30)),
      'phases.upgrade[3].timeout: must be a positive duration',
    ],
    [
      'a timeout over a day',
      variant((r) => (r.phases.upgrade[3].timeout = '2d')),
      'phases.upgrade[3].timeout: must be at most 86400s',
    ],
    [
      '99 retries',
      variant((r) => (r.phases.verify[0].retries = 99)),
      'phases.verify[0].retries: must be an integer from 0 to 10',
    ],
    [
      'a duplicate id',
      variant((r) => {
        r.phases.verify = [...r.phases.verify, { id: 'health', type: 'apt', action: 'update', source: 's' }];
      }),
      'phases.verify[1].id: duplicate id "health" (first at phases.verify[0].id)',
    ],
    [
      'a duplicate id across phases',
      variant((r) => (r.phases.verify[0].id = 'list')),
      'phases.verify[0].id: duplicate id "list" (first at phases.check[0].id)',
    ],
    [
      'a restore from a missing step',
      variant((r) => (r.phases.rollback[0].fromStep = 'nope')),
      'phases.rollback[0].fromStep: no step has id "nope" (expected a backup step)',
    ],
    [
      'a restore from a non-backup step',
      variant((r) => (r.phases.rollback[0].fromStep = 'migrate')),
      'phases.rollback[0].fromStep: step "migrate" is an exec step, not a backup step',
    ],
    [
      'a binary.replace from a non-artifact step',
      variant((r) => (r.phases.upgrade[4].fromStep = 'backup')),
      'phases.upgrade[4].fromStep: step "backup" is a backup step, not an artifact step',
    ],
    [
      'a restore from a later step',
      variant((r) => {
        r.phases.check = [
          ...r.phases.check,
          { id: 'early', type: 'restore', fromStep: 'backup', source: 's' },
        ];
      }),
      'phases.check[1].fromStep: step "backup" runs later (at phases.upgrade[2]); it must come before',
    ],
    [
      'an apt restorePrevious without fromStep',
      variant((r) => {
        r.phases.rollback = [
          ...r.phases.rollback,
          { id: 'back', type: 'apt', action: 'restorePrevious', source: 's' },
        ];
      }),
      'phases.rollback[2]: restorePrevious needs fromStep (the downloadOnly step that kept the packages)',
    ],
    [
      'an apt restorePrevious from an apt step that downloads nothing',
      variant((r) => {
        r.phases.rollback = [
          ...r.phases.rollback,
          {
            id: 'back',
            type: 'apt',
            action: 'restorePrevious',
            fromStep: 'list',
            source: 's',
          },
        ];
      }),
      'phases.rollback[2].fromStep: step "list" is not an apt downloadOnly step',
    ],
    [
      'an apt restorePrevious from a dnf step',
      variant((r) => {
        r.phases.rollback = [
          ...r.phases.rollback,
          {
            id: 'back',
            type: 'apt',
            action: 'restorePrevious',
            fromStep: 'fetch',
            source: 's',
          },
        ];
      }),
      'phases.rollback[2].fromStep: step "fetch" is a dnf step, not an apt step',
    ],
    [
      'a fromStep on an apt step that restores nothing',
      variant((r) => (r.phases.check[0].fromStep = 'list')),
      'phases.check[0]: fromStep is for restorePrevious only',
    ],
    [
      'an apt pin on update',
      variant((r) => {
        r.phases.check[0].action = 'update';
        r.phases.check[0].pin = { packages: ['demo-*'], version: '{{target}}' };
      }),
      'phases.check[0]: pin does not apply to update',
    ],
    [
      'an apt pin without packages',
      variant((r) => (r.phases.check[0].pin = { packages: [], version: '{{target}}' })),
      'phases.check[0].pin.packages: ',
    ],
    [
      'an undeclared stdin secret',
      variant((r) => (r.phases.upgrade[3].stdinSecret = 'rootPassword')),
      'phases.upgrade[3].stdinSecret: names no secret declared in secrets',
    ],
    [
      'an undeclared basic auth secret',
      variant((r) => (r.secrets = ['dbPassword'])),
      'phases.finalize.steps[0].basicAuth.passwordSecret: names no secret declared in secrets',
    ],
    [
      'a secret value where a name belongs',
      variant((r) => (r.phases.upgrade[3].stdinSecret = 'hunter2 !')),
      'phases.upgrade[3].stdinSecret: must be a secret name (letters, digits, "_", "." or "-"), not a value',
    ],
    [
      'maintenance with two modes',
      variant((r) => (r.phases.upgrade[0].argv = ['site', 'down'])),
      'phases.upgrade[0]: must have exactly one of argv, flagFile or url (found argv and flagFile)',
    ],
    [
      'maintenance with no mode',
      variant((r) => delete r.phases.upgrade[0].flagFile),
      'phases.upgrade[0]: must have exactly one of argv, flagFile or url (found none)',
    ],
    ...['../x', '/etc/passwd', '%2e%2e', '..', '.', 'a/b', '.hidden'].map(
      (name): [string, string, string] => [
        `the artifact name ${JSON.stringify(name)}`,
        variant((r) => (r.phases.download[1].name = name)),
        'phases.download[1].name: must be a plain file name',
      ],
    ),
    [
      'an artifact name with NUL',
      variant((r) => (r.phases.download[1].name = 'a\u0000b')),
      'phases.download[1].name: must not contain NUL',
    ],
    [
      'a bad caution range',
      variant((r) => (r.cautions[0].from = 'four-ish')),
      'cautions[0].from: must be a semver range such as ">=4.1.0 <5" (got "four-ish")',
    ],
    [
      'a blank caution range',
      variant((r) => (r.cautions[0].to = ' ')),
      'cautions[0].to: must be a semver range',
    ],
    [
      'a bad pinned version',
      variant((r) => (r.policy.pinnedVersion = 'latest')),
      'policy.pinnedVersion: must be a semver version such as 4.1.2 (got "latest")',
    ],
    [
      'a bad allowed range',
      variant((r) => (r.policy.allowedRange = '>=banana')),
      'policy.allowedRange: must be a semver range',
    ],
    [
      'a regex that does not compile',
      variant((r) => (r.versions.installed.pattern = 'demo ([0-9.]+')),
      'versions.installed.pattern: must be a valid regular expression (Invalid regular expression:',
    ],
    [
      'a regex without a group',
      variant((r) => (r.versions.available.pattern = '^v[0-9.]+$')),
      'versions.available.pattern: must have a group, (...), capturing the version',
    ],
    [
      'an unknown placeholder',
      variant((r) => (r.phases.upgrade[3].argv[1] = '{{oops}}')),
      'phases.upgrade[3].argv[1]: unknown placeholder {{oops}} (allowed: {{target}}, {{installed}}, {{var.NAME}})',
    ],
    [
      'an undeclared var',
      variant((r) => (r.phases.verify[0].url = '{{var.undeclared}}/health')),
      'phases.verify[0].url: placeholder {{var.undeclared}}: "undeclared" is not declared in vars',
    ],
    [
      'a placeholder in a version probe',
      variant((r) => (r.versions.installed.argv = ['{{var.nope}}'])),
      'versions.installed.argv[0]: placeholder {{var.nope}}: "nope" is not declared in vars',
    ],
    [
      'an unbalanced placeholder',
      variant((r) => (r.phases.upgrade[3].argv[1] = '{{target')),
      'phases.upgrade[3].argv[1]: has an unbalanced {{ or }}',
    ],
    [
      'a placeholder in a var',
      variant((r) => (r.vars.bin = '{{var.root}}/bin')),
      'vars.bin: vars are not substituted themselves: {{...}} is not allowed here',
    ],
    ['a var that is not a string', variant((r) => (r.vars.port = 8080)), 'vars.port: must be a string'],
    [
      'an empty argv',
      variant((r) => (r.phases.upgrade[3].argv = [])),
      'phases.upgrade[3].argv: must have at least 1 item',
    ],
    [
      'an empty argv element',
      variant((r) => (r.phases.upgrade[3].argv = ['demo', ''])),
      'phases.upgrade[3].argv[1]: must be a non-empty string',
    ],
    [
      'a finalize without role',
      variant((r) => delete r.phases.finalize.role),
      'phases.finalize.role: is required',
    ],
    [
      'a finalize without steps',
      variant((r) => (r.phases.finalize.steps = [])),
      'phases.finalize.steps: must have at least 1 item',
    ],
    [
      'an unknown phase',
      variant((r) => (r.phases.deploy = [])),
      'phases.deploy: unknown field (known: check, download, upgrade, finalize, verify, rollback)',
    ],
    [
      'an empty when',
      variant((r) => (r.phases.upgrade[1].when = { role: [] })),
      'phases.upgrade[1].when.role: must have at least 1 item',
    ],
    [
      'a when without roles',
      variant((r) => (r.phases.upgrade[1].when = {})),
      'phases.upgrade[1].when: must have role, notRole, installed or onTarget',
    ],
    [
      'a when whose installed is not a range',
      variant((r) => (r.phases.upgrade[1].when = { installed: 'four-one' })),
      'phases.upgrade[1].when.installed: must be a semver range (">=4.1.0")',
    ],
    [
      'a when whose onTarget is not a boolean',
      variant((r) => (r.phases.upgrade[1].when = { onTarget: 'yes' })),
      'phases.upgrade[1].when.onTarget: must be',
    ],
    [
      'a secret listed twice',
      variant((r) => {
        r.secrets = [...r.secrets, 'dbPassword'];
      }),
      'secrets[2]: is listed twice',
    ],
    [
      'an http status out of range',
      variant((r) => (r.phases.verify[0].expectStatus = [700])),
      'phases.verify[0].expectStatus[0]: must be an integer from 100 to 599',
    ],
    [
      'a json field without a value',
      variant((r) => delete r.phases.verify[0].jsonField.equals),
      'phases.verify[0].jsonField.equals: is required',
    ],
    [
      'a url that is not http',
      variant((r) => (r.phases.download[1].url = 'file:///etc/passwd')),
      'phases.download[1].url: must be an http:// or https:// URL',
    ],
    ['a missing versions field', variant((r) => delete r.versions), 'versions: is required'],
    ['a bad recipe name', variant((r) => (r.name = '../evil')), 'name: must be letters, digits'],
    ['a __proto__ key', VALID + '__proto__: { polluted: true }\n', '__proto__: unknown field'],
    [
      'a __proto__ var',
      variant((r) => (r.vars = JSON.parse('{"__proto__": "x"}') as Data)),
      'vars.__proto__: is not allowed as a key',
    ],
    [
      'a YAML alias',
      VALID.replace(
        '  rollback:\n',
        '  rollback:\n    - &again { id: r1, type: restore, fromStep: backup, source: s }\n    - *again\n',
      ),
      'phases.rollback[1]: YAML aliases are not allowed (*again at line',
    ],
    [
      'a duplicate YAML key',
      VALID.replace('id: list, type: apt,', 'id: list, id: other, type: apt,'),
      'phases.check[0].id: duplicate key (at line 14, column 19; first at line 14, column 9)',
    ],
    ['not a mapping', '- name: demo\n', 'must be a mapping of fields (name, versions, phases, ...)'],
    ['an empty file', '', 'must be a mapping of fields'],
    [
      'not YAML at all',
      'name: [demo\n',
      'not valid YAML: line 2, column 1: Flow sequence in block collection',
    ],
    [
      'phases that are not a mapping',
      variant((r) => (r.phases = ['check'])),
      'phases: must be a mapping of fields',
    ],
    ['a phase that is not a list', variant((r) => (r.phases.check = 'list')), 'phases.check: must be a list'],
    [
      'a step that is a string',
      variant((r) => (r.phases.check = ['apt-get update'])),
      'phases.check[0]: must be a mapping of fields',
    ],
  ])('refuses %s', (_what, text, expected) => {
    const problems = problemsOf(text);
    expect(problems).toContainEqual(expect.stringContaining(expected));
    expect(() => compileRecipe(text, 'demo.yaml')).toThrow(`demo.yaml: `);
    expect(() => compileRecipe(text, 'demo.yaml')).toThrow(expected);
  });

  it('compiles an apt pin and a restorePrevious that names the pinned download', () => {
    const recipe = compileRecipe(
      variant((r) => {
        r.phases.download[0] = {
          id: 'fetch',
          type: 'apt',
          action: 'downloadOnly',
          pin: { packages: ['demo-*'], version: '{{target}}' },
          source: 's',
        };
        r.phases.rollback = [
          ...r.phases.rollback,
          { id: 'back', type: 'apt', action: 'restorePrevious', fromStep: 'fetch', source: 's' },
        ];
      }),
      'demo.yaml',
    );
    expect(recipe.phases.download[0]).toMatchObject({
      action: 'downloadOnly',
      frontend: 'apt-get',
      pin: { packages: ['demo-*'], version: '{{target}}' },
    });
    expect(recipe.phases.rollback[2]).toMatchObject({
      action: 'restorePrevious',
      fromStep: 'fetch',
      packages: [],
    });
  });

  it('reports every problem of a recipe together, in one RECIPE_INVALID error', () => {
    const text = variant((r) => {
      r.colour = 'red';
      r.phases.check[0].timeout = 'soon';
      r.phases.download[1].name = '../x';
      r.phases.upgrade[3].argv = ['{{oops}}'];
      r.phases.verify[0].id = 'list';
      r.phases.rollback[0].fromStep = 'nope';
      r.policy.pinnedVersion = 'latest';
    });
    let caught: unknown;
    try {
      compileRecipe(text, 'demo.yaml');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConvoyError);
    const err = caught as RecipeError;
    expect(err.code).toBe('RECIPE_INVALID');
    expect(err.context).toEqual({ file: 'demo.yaml', field: 'colour' });
    expect(err.problems.map((p) => p.path)).toEqual([
      'colour',
      'policy.pinnedVersion',
      'phases.check[0].timeout',
      'phases.download[1].name',
      'phases.verify[0].id',
      'phases.rollback[0].fromStep',
      'phases.upgrade[3].argv[0]',
    ]);
    expect(err.message).toBe(`demo.yaml: ${err.problems.map(formatProblem).join('; ')}`);
  });

  it('keeps reporting cross-step problems when a step has a schema problem of its own', () => {
    // The backup's bad timeout must not make it look missing to the restore that names it.
    const problems = problemsOf(variant((r) => (r.phases.upgrade[2].timeout = 'soon')));
    expect(problems).toEqual([
      'phases.upgrade[2].timeout: must be a positive duration such as 30s, 10m or 1h (got "soon")',
    ]);
  });

  it('accepts a single role as a list of one and placeholders with inner spaces', () => {
    const recipe = compileRecipe(VALID, 'demo.yaml');
    expect(recipe.phases.upgrade[1]?.when).toEqual({ role: ['web'] });
    expect(recipe.phases.download[1]).toMatchObject({
      signatureUrl: 'https://example.test/{{ target }}/demo.sig',
    });
  });

  it('refuses a recipe over 1 MiB before parsing it', () => {
    expect(problemsOf(`description: "${'x'.repeat(1024 * 1024)}"\n`)).toEqual(['larger than 1048576 bytes']);
  });
});
