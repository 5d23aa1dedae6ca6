import { createTestDatabase, type TestDatabase } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableRef } from '../../change-event.ts';
import { checkReplicableTables, SourceError } from './index.ts';

const t = (name: string, schema = 'public'): TableRef => ({ schema, name });

describe('checkReplicableTables against real PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('table_check');
    await db.client.query(`
      create table with_pk (id int primary key, v text);
      create table no_pk (a int, b text);
      create table full_ident (a int, b text);
      alter table full_ident replica identity full;
      create table nothing_pk (id int primary key);
      alter table nothing_pk replica identity nothing;
      create table nothing_no_pk (a int);
      alter table nothing_no_pk replica identity nothing;
      create table by_index (a int not null, b text);
      create unique index by_index_a on by_index (a);
      alter table by_index replica identity using index by_index_a;
      create table unique_candidate (code text not null, v int);
      create unique index unique_candidate_code on unique_candidate (code);
      create table "Mixed Case" (id int primary key);
      create view a_view as select 1 as x;
      create schema hidden;
      create table hidden.secret (id int primary key);
    `);
  });
  afterAll(async () => {
    await db?.client.query('reset role').catch(() => undefined);
    await db?.drop();
  });

  async function refusal(tables: TableRef[]): Promise<SourceError> {
    const error = await checkReplicableTables(db.client, tables).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, 'the check should have refused').toBeInstanceOf(SourceError);
    expect((error as SourceError).code).toBe('table');
    return error as SourceError;
  }

  it('passes tables with a primary key or USING INDEX', async () => {
    await expect(
      checkReplicableTables(db.client, [t('with_pk'), t('by_index'), t('Mixed Case')]),
    ).resolves.toBeUndefined();
  });

  it('refuses REPLICA IDENTITY FULL without a primary key: StarRocks upserts by key', async () => {
    const error = await refusal([t('full_ident')]);
    expect(error.message).toMatch(/"public"\."full_ident" has REPLICA IDENTITY FULL but no primary key/);
    expect(error.solution).toBe('run: alter table "public"."full_ident" add primary key (<key columns>)');
  });

  it('refuses a table without a primary key, with the statements that fix it', async () => {
    const error = await refusal([t('with_pk'), t('no_pk')]);
    expect(error.message).toMatch(/^table "public"\."no_pk" has no primary key or replica identity/);
    expect(error.solution).toBe('run: alter table "public"."no_pk" add primary key (<key columns>)');
  });

  it('names the unique index to use when the table has one that can be its replica identity', async () => {
    const error = await refusal([t('unique_candidate')]);
    expect(error.solution).toBe(
      'run: alter table "public"."unique_candidate" replica identity using index "unique_candidate_code"',
    );
    // The fix works: applying it makes the table pass.
    await db.client.query(
      'alter table public.unique_candidate replica identity using index unique_candidate_code',
    );
    await expect(checkReplicableTables(db.client, [t('unique_candidate')])).resolves.toBeUndefined();
  });

  it('refuses REPLICA IDENTITY NOTHING, even with a primary key', async () => {
    const withPk = await refusal([t('nothing_pk')]);
    expect(withPk.message).toMatch(/"public"\."nothing_pk" has REPLICA IDENTITY NOTHING/);
    expect(withPk.solution).toMatch(/^run: alter table "public"\."nothing_pk" replica identity default/);
    const without = await refusal([t('nothing_no_pk')]);
    expect(without.solution).toMatch(/add primary key \(<key columns>\)$/);
  });

  it('refuses a missing table, a view, and hints at a name that differs only in case', async () => {
    const missing = await refusal([t('with_pk'), t('nope')]);
    expect(missing.message).toMatch(/^table "public"\."nope" does not exist — /);
    expect(missing.solution).toMatch(/remove "public"\."nope" from the job's tables/);
    const cased = await refusal([t('mixed case')]);
    expect(cased.message).toMatch(/^table "public"\."mixed case" does not exist — /);
    expect(cased.solution).toMatch(/did you mean public\.Mixed Case/);
    const view = await refusal([t('a_view')]);
    expect(view.message).toMatch(/^"public"\."a_view" is a view; only tables can be replicated — /);
  });

  it('refuses a table the role may not read, naming the grant', async () => {
    const role = `tc_${db.name.slice(-8)}`;
    await db.client.query(`create role ${role}`);
    await db.client.query(`grant usage on schema hidden to ${role}`);
    await db.client.query(`set role ${role}`);
    try {
      const unreadable = await refusal([t('secret', 'hidden')]);
      expect(unreadable.message).toMatch(
        new RegExp(`^role "${role}" may not read table "hidden"\\."secret" — `),
      );
      expect(unreadable.solution).toBe(`run: grant select on table "hidden"."secret" to "${role}"`);
      await db.client.query('reset role');
      await db.client.query(`revoke usage on schema hidden from ${role}`);
      await db.client.query(`grant select on hidden.secret to ${role}`);
      await db.client.query(`set role ${role}`);
      const noUsage = await refusal([t('secret', 'hidden')]);
      expect(noUsage.solution).toBe(`run: grant usage on schema "hidden" to "${role}"`);
    } finally {
      await db.client.query('reset role');
    }
  });
});
