import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConvoyError } from '../errors';
import { FleetError, loadFleetText } from './load';

const VALID = `
windows:
  sunday-night: { cron: "0 3 * * 0", duration: 2h, timezone: Europe/Paris, cutoff: 30m }
  any-night: { cron: "0 1 * * *", duration: 1h30m }
deployments:
  - name: mail-prod
    recipe: bluemind
    target: 4.1.2
    vars: { setupUrl: "https://example.test/setup" }
    hosts:
      - { id: h-3f2a9c0d11223344, role: core, vars: { healthUrl: "http://127.0.0.1/health" } }
      - { select: { site: paris, tier: edge }, role: edge }
    policy: { autoApprove: [patch, minor], allowDowngrade: false, allowedRange: ">=4 <6", pinnedVersion: "4.1.2", allowPrerelease: false }
    window: sunday-night
    staging: { cron: "0 2 * * *", timezone: Europe/Paris, jitter: 10m, concurrency: 20 }
    batches: { canary: 2, concurrency: "25%", errorThreshold: "10%", pause: 10m }
  - name: cells.staging
    recipe: ./recipes/cells.yaml
    hosts: [{ id: h-0000000000000001 }]
    window: any-night
    batches: { pause: manual }
`;

/** The message of the FleetError that loading `text` throws. */
function failure(text: string, file = 'fleet.yaml'): string {
  try {
    loadFleetText(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(FleetError);
    return (err as FleetError).message;
  }
  throw new Error('expected a FleetError');
}

/** A fleet of one deployment whose fields are overridden by `extra` lines (YAML, 4 spaces in). */
const oneDeployment = (extra: string, windows = 'w: { cron: "0 3 * * *", duration: 1h }'): string => `
windows:
  ${windows}
deployments:
  - name: app
    recipe: bluemind
    hosts: [{ id: h-1 }]
    window: w
${extra}
`;

describe('loadFleetText › a valid file', () => {
  const fleet = loadFleetText(VALID, '/etc/convoy/fleet.yaml');

  it('names each window by its key and converts durations to ms, UTC and cutoff 0 by default', () => {
    expect(fleet.windows['sunday-night']).toEqual({
      name: 'sunday-night',
      cron: '0 3 * * 0',
      durationMs: 2 * 3_600_000,
      timezone: 'Europe/Paris',
      cutoffMs: 30 * 60_000,
    });
    expect(fleet.windows['any-night']).toEqual({
      name: 'any-night',
      cron: '0 1 * * *',
      durationMs: 90 * 60_000,
      timezone: 'UTC',
      cutoffMs: 0,
    });
  });

  it('reads every field of a full deployment', () => {
    expect(fleet.deployments[0]).toEqual({
      name: 'mail-prod',
      recipe: 'bluemind',
      target: '4.1.2',
      vars: { setupUrl: 'https://example.test/setup' },
      hosts: [
        { id: 'h-3f2a9c0d11223344', role: 'core', vars: { healthUrl: 'http://127.0.0.1/health' } },
        { select: { site: 'paris', tier: 'edge' }, role: 'edge', vars: {} },
      ],
      policy: {
        autoApprove: ['patch', 'minor'],
        allowDowngrade: false,
        allowedRange: '>=4 <6',
        pinnedVersion: '4.1.2',
        allowPrerelease: false,
      },
      window: 'sunday-night',
      staging: { cron: '0 2 * * *', timezone: 'Europe/Paris', jitterMs: 600_000, concurrency: 20 },
      batches: {
        canary: 2,
        concurrency: { kind: 'percent', value: 25 },
        errorThreshold: { kind: 'percent', value: 10 },
        pause: { kind: 'timed', ms: 600_000 },
      },
    });
  });

  it('fills the documented defaults and resolves a recipe path against the fleet file', () => {
    expect(fleet.deployments[1]).toEqual({
      name: 'cells.staging',
      recipe: '/etc/convoy/recipes/cells.yaml',
      target: 'latest',
      vars: {},
      hosts: [{ id: 'h-0000000000000001', vars: {} }],
      policy: {},
      window: 'any-night',
      staging: { cron: null, timezone: 'UTC', jitterMs: 0, concurrency: 10 },
      batches: {
        canary: 1,
        concurrency: { kind: 'count', value: 1 },
        errorThreshold: { kind: 'count', value: 0 },
        pause: { kind: 'manual' },
      },
    });
  });

  it('returns deeply frozen plain data that survives JSON', () => {
    expect(Object.isFrozen(fleet)).toBe(true);
    expect(Object.isFrozen(fleet.deployments[0]?.batches.concurrency)).toBe(true);
    expect(Object.isFrozen(fleet.deployments[1]?.batches.errorThreshold)).toBe(true);
    expect(JSON.parse(JSON.stringify(fleet))).toEqual(fleet);
  });

  it('has no inherited window names', () => {
    expect(fleet.windows['constructor']).toBeUndefined();
  });
});

describe('loadFleetText › recipe paths', () => {
  it('joins a relative recipe path to the file directory, or to the directory given, and keeps an absolute one', () => {
    const recipes = (fleet: ReturnType<typeof loadFleetText>): string[] =>
      fleet.deployments.map((d) => d.recipe);
    expect(recipes(loadFleetText(VALID, '/etc/convoy/fleet.yaml'))).toEqual([
      'bluemind',
      '/etc/convoy/recipes/cells.yaml',
    ]);
    expect(recipes(loadFleetText(VALID, 'fleet.yaml', '/srv/ops'))).toEqual([
      'bluemind',
      '/srv/ops/recipes/cells.yaml',
    ]);
    const absolute = VALID.replace('./recipes/cells.yaml', '/opt/recipes/../cells.yaml');
    expect(recipes(loadFleetText(absolute, 'fleet.yaml', '/srv/ops'))).toEqual([
      'bluemind',
      '/opt/cells.yaml',
    ]);
  });
});

describe('loadFleetText › bad input names the file and the path', () => {
  it.each([
    [
      'an unknown key',
      oneDeployment('    colour: blue'),
      'deployments[0].colour: unknown field (known: name, recipe, target, vars, hosts, policy, window, staging, batches)',
    ],
    [
      'a cron with a bad field',
      oneDeployment('', 'w: { cron: "61 3 * * *", duration: 1h }'),
      'windows.w.cron: must be a five-field cron expression (minute hour day-of-month month day-of-week): Invalid value for minute: 61',
    ],
    [
      'a cron with six fields',
      oneDeployment('', 'w: { cron: "0 0 3 * * *", duration: 1h }'),
      'windows.w.cron: must be a five-field cron expression (minute hour day-of-month month day-of-week), got 6 fields',
    ],
    [
      'a cron that never fires',
      oneDeployment('', 'w: { cron: "0 3 30 2 *", duration: 1h }'),
      'windows.w.cron: never fires ("0 3 30 2 *")',
    ],
    [
      'a bad staging cron',
      oneDeployment('    staging: { cron: "@daily" }'),
      'deployments[0].staging.cron: must be a five-field cron expression',
    ],
    [
      'a bad time zone',
      oneDeployment('', 'w: { cron: "0 3 * * *", duration: 1h, timezone: Mars/Olympus }'),
      'windows.w.timezone: must be an IANA time zone such as Europe/Paris or UTC (got "Mars/Olympus")',
    ],
    [
      'a missing window',
      oneDeployment('').replace('window: w', 'window: weekend'),
      'deployments[0].window: no window named "weekend" in windows (known: w)',
    ],
    [
      'a cutoff as long as the window',
      oneDeployment('', 'w: { cron: "0 3 * * *", duration: 1h, cutoff: 1h }'),
      'windows.w.cutoff: must be shorter than the duration',
    ],
    [
      'a percentage over 100',
      oneDeployment('    batches: { concurrency: "150%" }'),
      'deployments[0].batches.concurrency: must be a percentage from 1% to 100% (got "150%")',
    ],
    [
      'a zero percentage',
      oneDeployment('    batches: { errorThreshold: "0%" }'),
      'deployments[0].batches.errorThreshold: must be a percentage from 1% to 100% (got "0%")',
    ],
    [
      'a concurrency of 0',
      oneDeployment('    batches: { concurrency: 0 }'),
      'deployments[0].batches.concurrency: must be a positive integer or a percentage like "25%" (got 0)',
    ],
    [
      'a concurrency that is neither',
      oneDeployment('    batches: { concurrency: lots }'),
      'deployments[0].batches.concurrency: must be a positive integer or a percentage like "25%"',
    ],
    [
      'a bad pause',
      oneDeployment('    batches: { pause: later }'),
      'deployments[0].batches.pause: must be none, manual or a duration such as 10m (got "later")',
    ],
    [
      'a host with both id and select',
      oneDeployment('').replace('[{ id: h-1 }]', '[{ id: h-1, select: { site: paris } }]'),
      'deployments[0].hosts[0]: must have either id or select, not both',
    ],
    [
      'a host with neither id nor select',
      oneDeployment('').replace('[{ id: h-1 }]', '[{ role: core }]'),
      'deployments[0].hosts[0]: must have id (one host) or select (hosts by labels)',
    ],
    [
      'an empty selector',
      oneDeployment('').replace('[{ id: h-1 }]', '[{ select: {} }]'),
      'deployments[0].hosts[0].select: must name at least one label',
    ],
    [
      'a bad label in a selector',
      oneDeployment('').replace('[{ id: h-1 }]', `[{ select: { site: "a\\u0001b" } }]`),
      'deployments[0].hosts[0].select.site: value must not contain control characters',
    ],
    [
      'a host listed twice',
      oneDeployment('').replace('[{ id: h-1 }]', '[{ id: h-1 }, { id: h-2 }, { id: h-1 }]'),
      'deployments[0].hosts[2].id: host "h-1" is listed twice (first at deployments[0].hosts[0].id)',
    ],
    [
      'no hosts',
      oneDeployment('').replace('[{ id: h-1 }]', '[]'),
      'deployments[0].hosts: must have at least 1 item',
    ],
    [
      'a bad deployment name',
      oneDeployment('').replace('name: app', 'name: "-app"'),
      'deployments[0].name: must be letters, digits',
    ],
    [
      'a bad target',
      oneDeployment('    target: newest'),
      'deployments[0].target: must be "latest" or a version such as 4.1.2 (got "newest")',
    ],
    [
      'a bad recipe name',
      oneDeployment('').replace('recipe: bluemind', 'recipe: "blue mind"'),
      'deployments[0].recipe: must be a built-in recipe name',
    ],
    [
      'a bad policy range',
      oneDeployment('    policy: { allowedRange: "not a range" }'),
      'deployments[0].policy.allowedRange: must be a semver range',
    ],
    [
      'a bad var name',
      oneDeployment('    vars: { "bad name": x }'),
      'deployments[0].vars["bad name"]: key must be a name of letters, digits and "_"',
    ],
    [
      'a bad window name',
      oneDeployment('', '"bad window": { cron: "0 3 * * *", duration: 1h }'),
      'windows["bad window"]: key must be letters, digits',
    ],
    ['a missing duration', oneDeployment('', 'w: { cron: "0 3 * * *" }'), 'windows.w.duration: is required'],
    ['no deployments', 'windows: {}\ndeployments: []\n', 'deployments: must have at least 1 item'],
  ])('%s', (_what, text, expected) => {
    expect(failure(text)).toContain(`fleet.yaml: ${expected}`);
  });

  it('reports a duplicate deployment name at the second one', () => {
    const text = oneDeployment(`  - name: app
    recipe: bluemind
    hosts: [{ id: h-2 }]
    window: w`);
    expect(failure(text)).toBe(
      'fleet.yaml: deployments[1].name: duplicate deployment name "app" (first at deployments[0].name)',
    );
  });

  it('says so when there are no windows at all', () => {
    const text = 'deployments: [{ name: app, recipe: bluemind, hosts: [{ id: h-1 }], window: w }]\n';
    expect(failure(text)).toBe(
      'fleet.yaml: deployments[0].window: no window named "w" in windows (the file defines no windows)',
    );
  });

  it('reports text that is not YAML', () => {
    expect(failure('deployments: [unclosed\n')).toMatch(/^fleet\.yaml: not valid YAML: line \d+, column \d+/);
  });

  it.each([
    ['a list', '- name: app\n'],
    ['a scalar', 'hello\n'],
    ['empty', ''],
  ])('reports YAML that is %s', (_what, text) => {
    expect(failure(text)).toBe('fleet.yaml: must be a mapping of fields (windows, deployments)');
  });

  it('reports a __proto__ key without polluting any prototype', () => {
    const message = failure(oneDeployment('    __proto__: { polluted: true }\n    vars: { __proto__: x }'));
    expect(message).toContain('fleet.yaml: deployments[0].__proto__: unknown field');
    expect(message).toContain('deployments[0].vars.__proto__: is not allowed as a key');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses YAML aliases (no billion laughs) and reports duplicate keys at their paths', () => {
    const aliases = failure('windows: &w {}\ndeployments: *w\n');
    expect(aliases).toContain('fleet.yaml: deployments: YAML aliases are not allowed');
    const duplicate = failure(oneDeployment('    window: w'));
    expect(duplicate).toContain('fleet.yaml: deployments[0].window: duplicate key');
  });

  it('lists every problem at once, each with its path', () => {
    const message = failure(
      oneDeployment(
        '    batches: { concurrency: "0%", pause: soon }\n    staging: { timezone: Nowhere/Land }',
        'w: { cron: "99 * * * *", duration: 1h }',
      ),
    );
    for (const path of [
      'windows.w.cron',
      'deployments[0].batches.concurrency',
      'deployments[0].batches.pause',
      'deployments[0].staging.timezone',
    ])
      expect(message).toContain(`${path}: `);
    expect(message.split('; ')).toHaveLength(4);
  });

  it('is a ConvoyError with code INVALID_ARGUMENT, the file and the first path', () => {
    let error: unknown;
    try {
      loadFleetText(oneDeployment('    colour: blue'), 'prod/fleet.yaml');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConvoyError);
    expect(error).toMatchObject({
      code: 'INVALID_ARGUMENT',
      retryable: false,
      context: { file: 'prod/fleet.yaml', field: 'deployments[0].colour' },
      problems: [{ path: 'deployments[0].colour' }],
    });
  });
});

describe('docs/fleet.md', () => {
  it('shows a complete example that loads, the second deployment taking every default', () => {
    const doc = readFileSync(path.join(__dirname, '../../docs/fleet.md'), 'utf8');
    const example = /## A complete example\s+```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    const fleet = loadFleetText(example, '/srv/fleet.yaml');
    expect(fleet.deployments.map((d) => d.name)).toEqual(['mail-prod', 'wiki-staging']);
    expect(fleet.deployments[1]).toMatchObject({
      recipe: '/srv/recipes/wiki.yaml',
      target: 'latest',
      policy: {},
      staging: { cron: null, jitterMs: 0, concurrency: 10 },
      batches: { canary: 1, concurrency: { kind: 'count', value: 1 }, pause: { kind: 'none' } },
    });
  });
});
