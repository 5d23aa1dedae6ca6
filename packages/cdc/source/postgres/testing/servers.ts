// Test support: run a suite against the shared PostgreSQL 18 and, where the system has it, PostgreSQL 15.
import {
  findSystemPostgres,
  type PostgresServer,
  type PostgresServerInfo,
  sharedPostgres,
  startPostgres,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe } from 'vitest';

export function forEachServer(suite: (server: () => PostgresServerInfo) => void): void {
  describe('on PostgreSQL 18', () => suite(() => sharedPostgres()));
  const pg15 = findSystemPostgres(15);
  describe.skipIf(!pg15)('on PostgreSQL 15', () => {
    let server: PostgresServer | undefined;
    beforeAll(async () => {
      server = await startPostgres({ binDir: pg15, tls: true });
    });
    afterAll(async () => {
      await server?.stop();
    });
    suite(() => {
      if (!server) throw new Error('PostgreSQL 15 did not start');
      return server;
    });
  });
}
