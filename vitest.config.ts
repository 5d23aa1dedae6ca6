import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    // One embedded PostgreSQL per run, shared by every test file (see packages/testkit/global-setup.ts).
    globalSetup: ['packages/testkit/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: more forks only thrash.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
