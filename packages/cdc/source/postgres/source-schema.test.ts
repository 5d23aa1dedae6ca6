import { createTestDatabase, type TestDatabase, waitFor } from '@sluice/testkit';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { ColumnSchema, Row, SchemaEvent, TableRef, TableSchema } from '../../change-event.ts';
import { PostgresSource, type SnapshotRange } from './index.ts';
import { diffSchema, sameSchema } from './source-schema.ts';
import { collect, testConnection } from './testing/memory-table.ts';
import { forEachServer } from './testing/servers.ts';

const table = (name: string): TableRef => ({ schema: 'public', name });

const noStore = {
  async load() {
    return undefined;
  },
  async savePlan(_planned: SnapshotRange[]) {},
  async completeRange(_range: SnapshotRange) {},
};

async function relfilenode(client: pg.Client, name: string): Promise<number> {
  const { rows } = await client.query<{ node: number }>(
    'select relfilenode::int4 as node from pg_class where oid = $1::regclass',
    [name],
  );
  return rows[0]!.node;
}

async function attribute(
  client: pg.Client,
  relation: string,
  column: string,
): Promise<{ atthasmissing: boolean; missing: string | null; has_default: boolean }> {
  const { rows } = await client.query(
    `select a.atthasmissing, a.attmissingval::text as missing,
            exists (select 1 from pg_attrdef d where d.adrelid = a.attrelid and d.adnum = a.attnum) as has_default
       from pg_attribute a where a.attrelid = $1::regclass and a.attname = $2`,
    [relation, column],
  );
  return rows[0];
}

/** Adds a column and reports whether PostgreSQL rewrote the table to do it. */
async function addColumn(db: TestDatabase, relation: string, definition: string): Promise<boolean> {
  const before = await relfilenode(db.client, relation);
  await db.client.query(`alter table ${relation} add column ${definition}`);
  return (await relfilenode(db.client, relation)) !== before;
}

function backfills(schema: TableSchema | undefined): Record<string, ColumnSchema['backfill'] | 'absent'> {
  return Object.fromEntries(
    (schema?.columns ?? []).map((column) => [column.name, column.backfill ?? 'absent']),
  );
}

forEachServer((server) => {
  it('setup reports each added column’s backfill: PostgreSQL’s missing value decoded as the copy decodes it, unknown after a rewrite or for a volatile default, absent for NULL', async () => {
    const db = await createTestDatabase('backfill', server());
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'backfill',
      tables: [table('wide'), table('vol'), table('later')],
    });
    try {
      await db.client.query(`
        create domain label as text;
        create domain posint as int check (value > 0);
        create table wide (id int primary key, base int default 5, plain text);
        insert into wide (id) select g from generate_series(1, 3) g;
        create table vol (id int primary key);
        insert into vol select g from generate_series(1, 3) g;
        create table later (id int primary key);
        insert into later select g from generate_series(1, 3) g;`);

      // Constant defaults: PostgreSQL fills old rows without touching the heap (or writing WAL).
      const constant = [
        'd int not null default 42',
        `s text default 'a "b", c\\d {x} NULL'`,
        `nul text default 'NULL'`,
        `empty text default ''`,
        `ts timestamptz default '2024-01-02 03:04:05.123456+02'`,
        'num numeric(10,3) default 1.5',
        `big int8 default 9007199254740993`,
        `b bytea default '\\x00ff'`,
        `j jsonb default '{"a": [1, "x, y"]}'`,
        `ia int[] default '{1,NULL,3}'`,
        `ta text[] default array['a,b', 'c"d', 'NULL']`,
        `bx box default '(1,1),(0,0)'`,
        `bxa box[] default array['(1,1),(0,0)'::box, '(2,2),(1,1)']`,
        `dom label default 'tagged'`,
        'flag bool default true',
        `f float8 default 'NaN'`,
        'n int',
        'nn int default null',
      ];
      for (const definition of constant) expect(await addColumn(db, 'wide', definition)).toBe(false);
      expect(await attribute(db.client, 'wide', 'd')).toEqual({
        atthasmissing: true,
        missing: '{42}',
        has_default: true,
      });
      expect(await attribute(db.client, 'wide', 'ia')).toMatchObject({ missing: '{"{1,NULL,3}"}' });
      expect(await attribute(db.client, 'wide', 'n')).toEqual({
        atthasmissing: false,
        missing: null,
        has_default: false,
      });
      expect(await attribute(db.client, 'wide', 'nn')).toMatchObject({
        atthasmissing: false,
        has_default: false,
      });

      // Volatile defaults, checked domains and identity columns rewrite the table instead.
      expect(await addColumn(db, 'vol', 'r float8 default random()')).toBe(true);
      expect(await attribute(db.client, 'vol', 'r')).toEqual({
        atthasmissing: false,
        missing: null,
        has_default: true,
      });
      expect(await addColumn(db, 'vol', 'pos posint default 7')).toBe(true);
      expect(await addColumn(db, 'vol', 'ident int generated always as identity')).toBe(true);
      expect(await attribute(db.client, 'vol', 'ident')).toMatchObject({
        atthasmissing: false,
        has_default: false,
      });

      // A default set later keeps the old missing value; a later rewrite clears every missing value.
      expect(await addColumn(db, 'later', 'kept int default 42')).toBe(false);
      await db.client.query('alter table later alter column kept set default 7');
      expect(await attribute(db.client, 'later', 'kept')).toMatchObject({ missing: '{42}' });
      expect(await addColumn(db, 'later', 'c int default 1')).toBe(false);
      await db.client.query('alter table later add column v text');
      await db.client.query('alter table later alter column v set default $$x$$');
      const laterSchema = async () =>
        (await source.setup()).schemas.find((schema) => schema.table.name === 'later');
      expect(backfills(await laterSchema())).toEqual({
        id: 'absent',
        kept: { value: 42 },
        c: { value: 1 },
        v: 'unknown',
      });
      expect(await addColumn(db, 'later', 'r float8 default random()')).toBe(true);
      expect(await attribute(db.client, 'later', 'kept')).toMatchObject({
        atthasmissing: false,
        missing: null,
      });

      const { schemas } = await source.setup();
      const wide = schemas.find((schema) => schema.table.name === 'wide');
      expect(backfills(wide)).toEqual({
        id: 'absent',
        base: 'unknown',
        plain: 'absent',
        d: { value: 42 },
        s: { value: 'a "b", c\\d {x} NULL' },
        nul: { value: 'NULL' },
        empty: { value: '' },
        ts: { value: '2024-01-02 01:04:05.123456+00' },
        num: { value: '1.500' },
        big: { value: '9007199254740993' },
        b: { value: '00ff' },
        j: { value: '{"a": [1, "x, y"]}' },
        ia: { value: [1, null, 3] },
        ta: { value: ['a,b', 'c"d', 'NULL'] },
        bx: { value: '(1,1),(0,0)' },
        bxa: { value: ['(1,1),(0,0)', '(2,2),(1,1)'] },
        dom: { value: 'tagged' },
        flag: { value: true },
        f: { value: 'NaN' },
        n: 'absent',
        nn: 'absent',
      });
      expect(backfills(schemas.find((schema) => schema.table.name === 'vol'))).toEqual({
        id: 'absent',
        r: 'unknown',
        pos: 'unknown',
        ident: 'unknown',
      });
      expect(backfills(schemas.find((schema) => schema.table.name === 'later'))).toMatchObject({
        kept: 'unknown',
        c: 'unknown',
        r: 'unknown',
      });

      // The old rows, as the snapshot decodes them, hold exactly the reported missing values.
      const copied: Row[] = [];
      await source.snapshot({
        store: noStore,
        onBatch: async (batch) => {
          if (batch.table.name === 'wide') copied.push(...batch.rows);
        },
      });
      expect(copied).toHaveLength(3);
      for (const column of wide!.columns) {
        if (typeof column.backfill !== 'object') continue;
        for (const row of copied) expect(row[column.name], column.name).toEqual(column.backfill.value);
      }
    } finally {
      await source.close();
      await db.drop();
    }
  });

  it('a column added while streaming carries its backfill in the SchemaEvent, read from the catalog when the Relation arrives', async () => {
    const db = await createTestDatabase('backfill_stream', server());
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'backfill_stream',
      tables: [table('grows'), table('rewrites')],
    });
    try {
      await db.client.query(`
        create table grows (id int primary key);
        insert into grows values (1);
        create table rewrites (id int primary key);
        insert into rewrites values (1);`);
      await source.setup();
      const stream = await source.stream();
      const { events } = collect(stream);
      // A table's first Relation is its first sight (no diff): let both be seen before they change.
      await db.client.query('insert into grows values (10); insert into rewrites values (10)');
      await db.client.query(`
        alter table grows add column d int not null default 42;
        alter table grows add column ia int[] default '{1,NULL,3}';
        alter table grows add column t text default 'it''s, "quoted"';
        alter table grows add column n int;
        insert into grows (id) values (2);
        alter table rewrites add column r float8 default random();
        insert into rewrites (id) values (2);`);
      const added = (name: string) =>
        events.find(
          (event): event is SchemaEvent =>
            event.kind === 'schema' && event.schema.table.name === name && event.added.length > 0,
        );
      await waitFor(() => added('grows') !== undefined && added('rewrites') !== undefined, {
        description: 'schema events with added columns',
      });
      const grows = added('grows')!;
      expect(grows.added.map((column) => [column.name, column.backfill ?? 'absent'])).toEqual([
        ['d', { value: 42 }],
        ['ia', { value: [1, null, 3] }],
        ['t', { value: `it's, "quoted"` }],
        ['n', 'absent'],
      ]);
      expect(grows.schema.columns.find((column) => column.name === 'd')?.backfill).toEqual({ value: 42 });
      expect(added('rewrites')!.added.map((column) => [column.name, column.backfill])).toEqual([
        ['r', 'unknown'],
      ]);
      const inserted = events.find((event) => event.kind === 'insert' && event.row.id === 2);
      expect(inserted?.kind === 'insert' && inserted.row).toEqual({
        id: 2,
        d: 42,
        ia: [1, null, 3],
        t: `it's, "quoted"`,
        n: null,
      });
    } finally {
      await source.close();
      await db.drop();
    }
  });
});

describe('schema comparison', () => {
  const base: TableSchema = {
    table: table('t'),
    columns: [
      { name: 'id', type: { oid: 23, name: 'int4', modifier: -1, kind: 'base' }, nullable: false },
      { name: 'd', type: { oid: 23, name: 'int4', modifier: -1, kind: 'base' }, nullable: true },
    ],
    primaryKey: ['id'],
  };
  const withBackfill: TableSchema = {
    ...base,
    columns: [base.columns[0]!, { ...base.columns[1]!, backfill: { value: 42 } }],
  };

  it('sameSchema and diffSchema ignore backfill', () => {
    expect(sameSchema(base, withBackfill)).toBe(true);
    expect(
      sameSchema(withBackfill, {
        ...base,
        columns: [base.columns[0]!, { ...base.columns[1]!, backfill: 'unknown' }],
      }),
    ).toBe(true);
    expect(diffSchema(base, withBackfill)).toEqual({ added: [], dropped: [], retyped: [] });
    expect(diffSchema({ ...base, columns: [base.columns[0]!] }, withBackfill).added).toEqual([
      withBackfill.columns[1],
    ]);
  });
});
