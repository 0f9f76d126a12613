import { ConvoyError } from '../errors';
import { compileRecipe } from './compile';
import { interpolate, interpolateStep, placeholderValues } from './interpolate';
import type { ExecStep, HttpStep } from './types';

const values = { target: '4.1.2', installed: '4.0.5', 'var.root': '/opt/app' };

describe('interpolate', () => {
  it.each([
    ['{{target}}', '4.1.2'],
    ['v{{ installed }} -> v{{target}}', 'v4.0.5 -> v4.1.2'],
    ['{{var.root}}/bin/{{var.root}}', '/opt/app/bin//opt/app'],
    ['no placeholders, ${HOME} and {single}', 'no placeholders, ${HOME} and {single}'],
  ])('turns %j into %j', (text, expected) => {
    expect(interpolate(text, values)).toBe(expected);
  });

  it('substitutes once: a value that looks like a placeholder stays as it is', () => {
    expect(interpolate('{{var.x}}', { 'var.x': '{{target}}' })).toBe('{{target}}');
  });

  it.each([
    ['{{oops}}', 'unknown placeholder {{oops}}'],
    ['{{var.}}', 'unknown placeholder {{var.}}'],
    ['{{constructor}}', 'unknown placeholder {{constructor}}'],
    ['{{var.missing}}', 'placeholder {{var.missing}} has no value here'],
  ])('throws RECIPE_INVALID for %j', (text, message) => {
    expect(() => interpolate(text, values)).toThrow(message);
    expect(() => interpolate(text, values)).toThrow(ConvoyError);
  });

  it('throws for a known placeholder without a value (installed before anything is known)', () => {
    expect(() => interpolate('{{installed}}', { target: '1.0.0' })).toThrow(
      'placeholder {{installed}} has no value here',
    );
  });
});

describe('interpolateStep', () => {
  const recipe = compileRecipe(
    `
name: app
versions: { installed: { argv: [app, --version], pattern: '(.*)' } }
secrets: [dbPassword]
vars: { root: /opt/app, url: 'http://127.0.0.1:1/health' }
phases:
  upgrade:
    - id: migrate
      type: exec
      argv: ['{{var.root}}/bin/app', migrate, '--to={{target}}']
      env: { FROM: '{{installed}}' }
      cwd: '{{var.root}}'
      stdinSecret: dbPassword
      when: { role: core }
      source: 'doc says {{ this }} literally'
  verify:
    - id: health
      type: http
      action: check
      url: '{{var.url}}'
      jsonField: { path: version, equals: '{{target}}' }
      basicAuth: { user: '{{var.root}}', passwordSecret: dbPassword }
      source: s
`,
    'app.yaml',
  );
  const vars = placeholderValues(recipe, { target: '4.1.2', installed: '4.0.5' });

  it('substitutes every string field, lists and nested objects included, and nothing else', () => {
    const step = interpolateStep(recipe.phases.upgrade[0] as ExecStep, vars);
    expect(step).toEqual({
      ...recipe.phases.upgrade[0],
      argv: ['/opt/app/bin/app', 'migrate', '--to=4.1.2'],
      env: { FROM: '4.0.5' },
      cwd: '/opt/app',
    });
    expect(step.source).toBe('doc says {{ this }} literally');
    expect(Object.getPrototypeOf(step.env)).toBeNull();
    const http = interpolateStep(recipe.phases.verify[0] as HttpStep, vars);
    expect(http).toMatchObject({
      url: 'http://127.0.0.1:1/health',
      jsonField: { path: 'version', equals: '4.1.2' },
      basicAuth: { user: '/opt/app', passwordSecret: 'dbPassword' },
    });
  });

  it('returns a new frozen step and leaves the recipe untouched', () => {
    const original = recipe.phases.upgrade[0] as ExecStep;
    const step = interpolateStep(original, vars);
    expect(step).not.toBe(original);
    expect(Object.isFrozen(step) && Object.isFrozen(step.argv) && Object.isFrozen(step.env)).toBe(true);
    expect(original.argv[2]).toBe('--to={{target}}');
  });

  it('lets overrides replace the recipe vars', () => {
    const v = placeholderValues(recipe, { target: '5.0.0' }, { root: '/srv/app' });
    expect(v).toEqual({ 'var.root': '/srv/app', 'var.url': 'http://127.0.0.1:1/health', target: '5.0.0' });
    expect(() => interpolateStep(recipe.phases.upgrade[0] as ExecStep, v)).toThrow(
      '{{installed}} has no value',
    );
  });
});
