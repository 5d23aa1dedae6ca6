// Vitest global setup: one TLS-enabled PostgreSQL 18 with logical replication for the whole run. Test
// files reach it through `inject('postgres')` (see test-database.ts); teardown runs even when tests fail.
// It also starts the canary run (see canary.ts): a run directory for planted canaries and service process
// logs, and a teardown that fails the run when any log holds a planted canary.
import type { TestProject } from 'vitest/node';
import { startCanaryRun } from './canary.ts';
import { type PostgresServerInfo, startPostgres } from './postgres-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresServerInfo;
    runDirectory: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const canaryRun = startCanaryRun();
  project.provide('runDirectory', canaryRun.directory);
  const server = await startPostgres({ tls: true });
  const { connectionConfig: _c, stop: _s, kill: _k, restart: _r, ...info } = server;
  project.provide('postgres', info);
  return async () => {
    try {
      await server.stop();
    } finally {
      // A throw from a global setup's teardown makes `vitest run` exit non-zero ("error during close").
      canaryRun.finish();
    }
  };
}
