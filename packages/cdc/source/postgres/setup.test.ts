import { createTestDatabase, startPostgres, type TestDatabase, waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableRef } from '../../change-event.ts';
import { PostgresSource, replicationName, SourceError } from './index.ts';
import { collect, testConnection } from './testing/memory-table.ts';

async function setupError(source: PostgresSource): Promise<SourceError> {
  try {
    await source.setup();
  } catch (error) {
    expect(error).toBeInstanceOf(SourceError);
    return error as SourceError;
  } finally {
    await source.close();
  }
  throw new Error('expected setup to fail');
}

describe('setup', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('setup');
  });
  afterAll(async () => {
    await db?.drop();
  });
  const source = (tables: TableRef[], job = 'setup', user?: { user: string; password: string }) =>
    new PostgresSource({ connection: { ...testConnection(db.server, db.name), ...user }, job, tables });

  it('names slot and publication sluice_<job> and refuses unusable job ids', () => {
    expect(replicationName('7f2c1e9a-0b3d-4c5e-8f60-112233445566')).toBe(
      'sluice_7f2c1e9a_0b3d_4c5e_8f60_112233445566',
    );
    expect(() => replicationName('--')).toThrow(/job id/);
    expect(() => replicationName('x'.repeat(80))).toThrow(/job id/);
  });

  it('a table without a primary key or replica identity is an error naming it, with the fix', async () => {
    await db.client.query('create table "No Key" (a int)');
    const error = await setupError(source([{ schema: 'public', name: 'No Key' }]));
    expect(error.code).toBe('table');
    expect(error.message).toMatch(/table "public"\."No Key" has no primary key or replica identity/);
    expect(error.solution).toMatch(/alter table "public"\."No Key" add primary key/);
    await db.client.query(
      'create table nothing_ident (a int primary key); alter table nothing_ident replica identity nothing',
    );
    expect((await setupError(source([{ schema: 'public', name: 'nothing_ident' }]))).code).toBe('table');
  });

  it('an unknown table with an SQL-ish name is a precise error; an existing one replicates', async () => {
    const sqlish = `x"; drop table victim; --`;
    const unknown = await setupError(source([{ schema: 'public', name: `nope'); drop table victim; --` }]));
    expect(unknown.code).toBe('table');
    expect(unknown.message).toBe(`table "public"."nope'); drop table victim; --" does not exist`);

    await db.client.query('create table victim (id int primary key)');
    await db.client.query(`create table "${sqlish.replaceAll('"', '""')}" (id int primary key, "a'b" text)`);
    const table = { schema: 'public', name: sqlish };
    const replicating = source([table], 'sqlish');
    try {
      const setup = await replicating.setup();
      expect(setup.slotCreated).toBe(true);
      const stream = await replicating.stream();
      const { events } = collect(stream);
      await db.client.query(`insert into "${sqlish.replaceAll('"', '""')}" values (1, 'it''s')`);
      await waitFor(() => events.some((event) => event.kind === 'insert'), { description: 'the insert' });
      expect(events.find((event) => event.kind === 'insert')).toMatchObject({
        table,
        row: { id: 1, "a'b": "it's" },
      });
      const victim = await db.client.query("select 1 from pg_class where relname = 'victim'");
      expect(victim.rowCount).toBe(1);
    } finally {
      await replicating.close();
    }
  });

  it('reuses the slot on a second run and makes the publication follow the table list', async () => {
    await db.client.query(
      'create table first_t (id int primary key); create table second_t (id int primary key)',
    );
    const first = source([{ schema: 'public', name: 'first_t' }], 'reuse');
    const created = await first.setup();
    await first.close();
    expect(created.slotCreated).toBe(true);
    const second = source(
      [
        { schema: 'public', name: 'first_t' },
        { schema: 'public', name: 'second_t' },
      ],
      'reuse',
    );
    const reused = await second.setup();
    await second.close();
    expect(reused.slotCreated).toBe(false);
    expect(reused.consistentPoint).toBe(created.consistentPoint);
    const { rows } = await db.client.query(
      "select tablename from pg_publication_tables where pubname = 'sluice_reuse' order by tablename",
    );
    expect(rows).toEqual([{ tablename: 'first_t' }, { tablename: 'second_t' }]);
    const dropping = source([{ schema: 'public', name: 'first_t' }], 'reuse');
    await dropping.setup();
    await dropping.drop();
    const gone = await db.client.query("select 1 from pg_replication_slots where slot_name = 'sluice_reuse'");
    expect(gone.rowCount).toBe(0);
  });

  it('replicates a partitioned table under its own name, snapshot and stream alike', async () => {
    await db.client.query(`create table parted (id int primary key, v text) partition by range (id);
      create table parted_low partition of parted for values from (0) to (100);
      create table parted_high partition of parted for values from (100) to (1000);
      insert into parted values (1, 'a'), (150, 'b')`);
    const table = { schema: 'public', name: 'parted' };
    const replicating = source([table], 'parted');
    try {
      await replicating.setup();
      const copied: unknown[] = [];
      await replicating.snapshot({
        store: {
          load: async () => undefined,
          savePlan: async () => undefined,
          completeRange: async () => undefined,
        },
        onBatch: async (batch) => {
          copied.push(...batch.rows);
        },
      });
      expect(copied).toEqual(
        expect.arrayContaining([
          { id: 1, v: 'a' },
          { id: 150, v: 'b' },
        ]),
      );
      expect(copied).toHaveLength(2);
      const stream = await replicating.stream();
      const { events } = collect(stream);
      await db.client.query(`insert into parted values (2, 'c'), (200, 'd')`);
      await waitFor(() => events.filter((event) => event.kind === 'insert').length === 2, {
        description: 'inserts',
      });
      for (const event of events.filter((event) => event.kind === 'insert'))
        expect(event).toMatchObject({ table });
    } finally {
      await replicating.close();
    }
  });

  it('tells an unprivileged role exactly what to run, step by step, and never shows its password', async () => {
    const role = `r_${db.name.slice(-8)}`;
    const password = 'canary-role-secret-93b1';
    await db.client.query(`create role ${role} login password '${password}'`);
    await db.client.query('create table guarded (id int primary key)');
    const table = [{ schema: 'public', name: 'guarded' }];
    const as = { user: role, password };
    try {
      let error = await setupError(source(table, 'priv', as));
      expect(error.code).toBe('privilege');
      expect(error.solution).toBe(`run: alter role "${role}" with replication`);
      await db.client.query(`alter role ${role} with replication`);

      error = await setupError(source(table, 'priv', as));
      if (error.solution?.includes('pg_logical_emit_message')) {
        expect(error.solution).toMatch(
          new RegExp(`^run: grant execute on function pg_logical_emit_message\\(.*\\) to "${role}"$`),
        );
        await db.client.query(
          `grant execute on function ${error.solution.slice('run: grant execute on function '.length, error.solution.lastIndexOf(' to '))} to ${role}`,
        );
        error = await setupError(source(table, 'priv', as));
      }
      expect(error.solution).toBe(`run: grant select on table "public"."guarded" to "${role}"`);
      await db.client.query(`grant select on guarded to ${role}`);

      error = await setupError(source(table, 'priv', as));
      expect(error.code).toBe('privilege');
      expect(error.solution).toBe(
        `run as the tables' owner: create publication "sluice_priv" for table "public"."guarded" with (publish_via_partition_root = true)`,
      );
      await db.client.query('create publication sluice_priv for table guarded');

      const working = source(table, 'priv', as);
      expect((await working.setup()).slotCreated).toBe(true);
      await working.close();

      const wrong = await setupError(source(table, 'priv', { user: role, password: `${password}-wrong` }));
      expect(wrong.code).toBe('auth');
      expect(wrong.message).not.toContain(password);
    } finally {
      await db.client.query(`drop owned by ${role}`).catch(() => undefined);
      await db.client.query(`drop role ${role}`).catch(() => undefined);
    }
  });
});

describe('setup on a server without logical decoding', () => {
  it('says wal_level must be logical and how to set it', async () => {
    const server = await startPostgres({ tls: false, settings: { wal_level: 'replica' } });
    try {
      const db = await createTestDatabase('walrep', server);
      try {
        await db.client.query('create table t (id int primary key)');
        const source = new PostgresSource({
          connection: testConnection(server, db.name),
          job: 'wal',
          tables: [{ schema: 'public', name: 't' }],
        });
        const error = await setupError(source);
        expect(error.code).toBe('privilege');
        expect(error.message).toMatch(/wal_level is replica/);
        expect(error.solution).toBe('run: alter system set wal_level = logical; then restart PostgreSQL');
      } finally {
        await db.drop();
      }
    } finally {
      await server.stop();
    }
  });
});
