/**
 * Jest 30 on ESM TypeScript through @swc/jest (which keeps decorator metadata, unlike esbuild). Tests talk to
 * the real Postgres and Redis of the machine and to an s3rver started by the global setup; each run gets its
 * own database and Redis prefix, removed afterwards.
 */
const swc = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'es6' },
  sourceMaps: 'inline',
};

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/bench/**/*.spec.ts', '<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 60_000,
  maxWorkers: 2,
  // Each test file loads the application's module graph into its own registry, and a worker kept them all: 1.1
  // to 1.5 GB by the end of a run, which took longer than Jest's 500 ms to exit under load ("A worker process
  // has failed to exit gracefully", with no handle left open). A worker past this is replaced between files.
  workerIdleMemoryLimit: '700MB',
};
