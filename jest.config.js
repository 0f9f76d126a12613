// Three layers (style.md §21): unit tests are pure and fast; integration tests use real gRPC on
// loopback and real SQLite files; e2e tests spawn controller and agent processes from dist/.
// Two more suites prove the promises under attack and faults: fuzz and chaos.
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
// Nothing left behind (test/setup/): one temporary root per run, a directory per test file, and a
// check after each file that fails it when it leaves a process, an open handle or a file; jest runs
// each project's global setup and teardown once however many projects name them.
const common = {
  testEnvironment: '<rootDir>/test/setup/leak-check-environment.ts',
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
};

/** @type {import('jest').Config} */
module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/{shared,controller,agent,proto}/**/*.test.ts',
        '<rootDir>/test/unit/**/*.test.ts',
      ],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
    },
    // Property-based fuzzing and hostile input to every decoder, loader and RPC (issue 6).
    {
      ...common,
      displayName: 'fuzz',
      testMatch: ['<rootDir>/test/fuzz/**/*.test.ts'],
    },
    // Fault injection: kill -9 sweeps, partitions, full disks, clock skew, reconnect storms. Slow,
    // so `npm run test:chaos` runs it alone; `npm test` (and CI) runs it after the rest.
    {
      ...common,
      displayName: 'chaos',
      testMatch: ['<rootDir>/test/chaos/**/*.test.ts'],
    },
  ],
};
