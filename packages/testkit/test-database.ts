// One uniquely named database per test on the run's shared server, so tests never see each other's
// tables, slots or publications.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { connectionConfig, type PostgresServerInfo } from './postgres-server.ts';

export interface TestDatabase {
  /** The database's name: `t_<label>_<random>`. */
  name: string;
  server: PostgresServerInfo;
  /** Superuser connection settings for this database, TLS verified against the test CA. */
  config: pg.ClientConfig;
  /** A connected superuser client on this database (closed by `drop`). */
  client: pg.Client;
  /** Drops replication slots on this database, then the database. */
  drop(): Promise<void>;
}

/** The run's shared server (started by global-setup.ts). */
export function sharedPostgres(): PostgresServerInfo {
  return inject('postgres');
}

export async function createTestDatabase(
  label = 'test',
  server: PostgresServerInfo = sharedPostgres(),
): Promise<TestDatabase> {
  const name = `t_${label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(connectionConfig(server));
  await admin.connect();
  try {
    await admin.query(`create database ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const config = connectionConfig(server, name);
  const client = new pg.Client(config);
  await client.connect();
  return {
    name,
    server,
    config,
    client,
    async drop() {
      await client.end().catch(() => undefined);
      const admin = new pg.Client(connectionConfig(server));
      await admin.connect();
      try {
        const slots = await admin.query<{ slot_name: string }>(
          'select slot_name from pg_replication_slots where database = $1',
          [name],
        );
        for (const { slot_name } of slots.rows) {
          await admin.query(
            'select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active_pid is not null',
            [slot_name],
          );
          await admin.query('select pg_drop_replication_slot($1)', [slot_name]).catch(() => undefined);
        }
        await admin.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}
