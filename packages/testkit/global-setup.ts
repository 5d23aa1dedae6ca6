// Vitest global setup: one TLS-enabled PostgreSQL 18 with logical replication for the whole run. Test
// files reach it through `inject('postgres')` (see test-database.ts); teardown runs even when tests fail.
import type { TestProject } from 'vitest/node';
import { type PostgresServerInfo, startPostgres } from './postgres-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresServerInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres({ tls: true });
  const { connectionConfig: _c, stop: _s, kill: _k, restart: _r, ...info } = server;
  project.provide('postgres', info);
  return () => server.stop();
}
