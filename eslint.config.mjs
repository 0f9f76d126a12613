// Lint rules that carry weight here: promises are never dropped, type-only imports stay type-only,
// no import cycles, and the deployable units keep their boundaries (style.md §1, §27).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const boundaryPatterns = (from, forbidden) =>
  forbidden.map((dir) => ({
    group: [`**/${dir}/*`, `**/${dir}`],
    message: `${from}/ must not import ${dir}/: share code through shared/ or proto/.`,
  }));

const boundary = (from, forbidden) => ({
  files: [`${from}/**/*.ts`],
  rules: { 'no-restricted-imports': ['error', { patterns: boundaryPatterns(from, forbidden) }] },
});

// shared/ is pure (style.md §2): what needs I/O, the environment or a clock takes it from its
// caller. test/unit/shared-purity.test.ts is the full check; this flags the common slips early.
const SHARED_FORBIDDEN = ['agent', 'controller', 'scripts', 'test'];
const IMPURE_MODULES = [
  'fs',
  'fs/promises',
  'child_process',
  'net',
  'http',
  'https',
  'http2',
  'os',
  'timers',
];
const PURE = 'shared/ is pure: take it from the caller, or move the code to controller/ or agent/.';
const sharedPure = {
  files: ['shared/**/*.ts'],
  ignores: ['**/*.test.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: boundaryPatterns('shared', SHARED_FORBIDDEN),
        paths: IMPURE_MODULES.flatMap((m) => [m, `node:${m}`]).map((name) => ({ name, message: PURE })),
      },
    ],
    'no-restricted-properties': [
      'error',
      ...['env', 'cwd', 'exit', 'stdout', 'stderr', 'pid'].map((property) => ({
        object: 'process',
        property,
        message: PURE,
      })),
      { object: 'Date', property: 'now', message: PURE },
      { object: 'performance', property: 'now', message: PURE },
      { object: 'Math', property: 'random', message: `${PURE} (take the random source as a parameter)` },
      { object: 'path', property: 'resolve', message: `${PURE} (path.resolve reads the working directory)` },
    ],
    'no-restricted-globals': [
      'error',
      ...['setTimeout', 'setInterval', 'setImmediate'].map((name) => ({ name, message: PURE })),
    ],
  },
};

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      'bin/**',
      '*.config.js',
      'eslint.config.mjs',
      'test/summary-reporter.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      '@typescript-eslint/require-await': 'off',
      // Runtime cycles only: import-x skips type-only imports and has no option not to (4.x knows
      // maxDepth, ignoreExternal and allowUnsafeDynamicCyclicDependency). Type-only and folder-level
      // cycles are caught by test/unit/import-cycles.test.ts.
      'import-x/no-cycle': ['error', { allowUnsafeDynamicCyclicDependency: false }],
    },
  },
  boundary('agent', ['controller']),
  boundary('controller', ['agent']),
  boundary('shared', SHARED_FORBIDDEN),
  sharedPure,
  boundary('proto', ['agent', 'controller', 'scripts', 'test']),
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
