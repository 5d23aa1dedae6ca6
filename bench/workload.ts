// The data every PostgreSQL scenario moves: one table of ~200-byte rows (the size the reference figures in
// shared/reference/postgres.md were measured with), a database per scenario, and the ways to write rows.
import { randomBytes } from 'node:crypto';
import type { ConnectionOptions } from '@sluice/cdc';
import type { PostgresServer } from '@sluice/testkit';
import pg from 'pg';

export const TABLE = { schema: 'public', name: 'bench' } as const;

export const CREATE_TABLE = `create table bench (id int8 primary key, name text, email text,
  amount numeric(12,2), created timestamptz, flag bool, payload text)`;

/** The row with id `g` (an SQL expression): ~200 bytes on disk, 7 columns of common types. */
const rowValues = (g: string) =>
  `${g}, 'name ' || ${g}, 'user' || ${g} || '@example.com', ${g} * 1.25, now(), ${g} % 2 = 0,
   repeat(md5(${g}::text), 3)`;

/** Inserts ids `from`..`to` in one statement. */
export function insertRange(from: number, to: number): string {
  return `insert into bench select ${rowValues('g')} from generate_series(${from}, ${to}) g`;
}

/**
 * Inserts ids 1..rows as transactions of `perTransaction` rows each, committed one after another by a
 * server-side loop (no client round trips: the WAL is what matters, not the client that wrote it).
 */
export function insertTransactions(rows: number, perTransaction: number): string {
  return `do $$
    begin
      for i in 0..${Math.ceil(rows / perTransaction) - 1} loop
        insert into bench select ${rowValues('g')}
          from generate_series(i * ${perTransaction} + 1, least((i + 1) * ${perTransaction}, ${rows})) g;
        commit;
      end loop;
    end $$`;
}

export interface BenchDatabase {
  name: string;
  client: pg.Client;
  /** node-postgres settings for this database (for the peer library). */
  pgConfig: pg.ClientConfig;
  /** Connection settings for Sluice's source (plaintext: loopback only, and TLS would tax every reader). */
  connection: ConnectionOptions;
  /** A libpq connection string for psql and pg_recvlogical (password in PGPASSWORD, see `libpqEnv`). */
  libpq: string;
  drop(): Promise<void>;
}

export function libpqEnv(server: PostgresServer): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, PGPASSWORD: server.password, PGSSLMODE: 'disable' };
}

export async function createDatabase(server: PostgresServer, label: string): Promise<BenchDatabase> {
  const name = `bench_${label}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client(server.connectionConfig());
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client(server.connectionConfig(name));
  await client.connect();
  return {
    name,
    client,
    pgConfig: server.connectionConfig(name),
    connection: {
      host: server.host,
      port: server.port,
      database: name,
      user: server.user,
      password: server.password,
      sslMode: 'disable',
    },
    libpq: `host=${server.host} port=${server.port} dbname=${name} user=${server.user}`,
    async drop() {
      await client.end().catch(() => undefined);
      const admin = new pg.Client(server.connectionConfig());
      await admin.connect();
      try {
        // A terminated walsender takes a moment to release its slot: retry, bounded.
        for (let attempt = 0; attempt < 50; attempt++) {
          await admin.query(
            `select pg_terminate_backend(active_pid) from pg_replication_slots
              where database = $1 and active_pid is not null`,
            [name],
          );
          const dropped = await admin
            .query(
              `select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1`,
              [name],
            )
            .then(
              () => true,
              () => false,
            );
          if (dropped) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await admin.query(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

/**
 * The end of the WAL written so far: readers stop once they have passed it. The insert position, not
 * `pg_current_wal_lsn()` (the write position): with `synchronous_commit=off` the last commit record may
 * not be written yet, and pg_recvlogical then stops at a keep-alive in the middle of the transaction.
 */
export async function currentLsn(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
  return rows[0]!.lsn;
}
