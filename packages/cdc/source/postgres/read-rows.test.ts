import { createTestDatabase, waitFor } from '@sluice/testkit';
import { expect, it } from 'vitest';
import type { ChangeEvent, InsertEvent, Row, TableRef } from '../../change-event.ts';
import { UNCHANGED_TOAST } from '../../change-event.ts';
import { PostgresSource, readRows, SourceError, TypeCatalog } from './index.ts';
import { collect, testConnection } from './testing/memory-table.ts';
import { forEachServer } from './testing/servers.ts';

const table = (name: string): TableRef => ({ schema: 'public', name });

/** One table per kind of key: its key columns' DDL, three rows' key literals, and how an update moves one. */
const kinds = [
  { name: 'by_int', key: 'k int', keys: ['1', '2', '3'], move: 'k = k + 100' },
  {
    name: 'by_text',
    key: 'k text',
    keys: [`'a,"b" {c}'`, `E'back\\\\slash ü'`, `'NULL'`],
    move: `k = k || ' moved'`,
  },
  {
    name: 'by_uuid',
    key: 'k uuid',
    keys: [
      `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`,
      `'00000000-0000-0000-0000-000000000000'`,
      `'ffffffff-ffff-ffff-ffff-ffffffffffff'`,
    ],
    move: `k = 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`,
  },
  { name: 'by_bytea', key: 'k bytea', keys: [`'\\x00ff'`, `'\\x'`, `'\\x5c22'`], move: `k = k || '\\xab'` },
  {
    name: 'by_timestamptz',
    key: 'k timestamptz',
    keys: [`'2024-01-02 03:04:05.123456+02'`, `'infinity'`, `'0044-03-15 12:00:00+00 BC'`],
    move: `k = k + interval '1 day'`,
  },
  {
    name: 'composite',
    key: 'a int, b text, c timestamptz, d bytea',
    keys: [
      `1, 'one', '2024-01-01 00:00:00+00', '\\x01'`,
      `1, 'two', '2024-01-01 00:00:00+00', '\\x01'`,
      `2, 'one', '2024-01-01 00:00:00.5+00', '\\x'`,
    ],
    move: `b = 'moved', d = '\\xff'`,
  },
  {
    name: 'by_array',
    key: 'k text[]',
    keys: [`'{a,"b,c",NULL}'`, `'{}'`, `'{{x,y},{z,"\\""}}'`],
    move: `k = k || '{m}'::text[]`,
  },
  {
    name: 'by_char',
    key: 'k char(4), n numeric',
    keys: [`'ab', 1.50`, `'a', 1.5`, `'abcd', -0`],
    move: 'n = n + 1',
  },
];

function keyColumns(definition: string): string[] {
  return definition.split(',').map((part) => part.trim().split(' ')[0]!);
}

function keyOf(row: Row, names: string[]): Row {
  return Object.fromEntries(names.map((name) => [name, row[name] ?? null]));
}

forEachServer((server) => {
  it('readRows re-reads a moved row whose unchanged TOAST value the WAL left out: int, text, uuid, bytea, timestamptz, composite, array and char keys; gone keys are left out', async () => {
    const db = await createTestDatabase('read_rows', server());
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'read_rows',
      tables: kinds.map((kind) => table(kind.name)),
    });
    try {
      for (const kind of kinds) {
        await db.client.query(
          `create table ${kind.name} (${kind.key}, body text, note text, primary key (${keyColumns(kind.key).join(', ')}));
           alter table ${kind.name} alter column body set storage external`,
        );
      }
      await source.setup();
      const stream = await source.stream();
      const { events } = collect(stream);
      const rowEvents = (name: string, kind: ChangeEvent['kind']) =>
        events.filter(
          (event) => event.kind === kind && 'table' in event && event.table.name === name,
        ) as Extract<ChangeEvent, { kind: 'insert' | 'update' | 'delete' }>[];

      for (const kind of kinds) {
        const columns = keyColumns(kind.key);
        for (const [index, key] of kind.keys.entries())
          await db.client.query(
            `insert into ${kind.name} values (${key}, (select string_agg(md5(($1 * 1000 + g)::text), '') from generate_series(1, 400) g), $2)`,
            [index, `note ${index}`],
          );
        const toast = await db.client.query<{ bytes: string }>(
          `select pg_relation_size(reltoastrelid)::text as bytes from pg_class where oid = $1::regclass`,
          [kind.name],
        );
        expect(Number(toast.rows[0]!.bytes), `${kind.name} body is TOASTed`).toBeGreaterThan(8192 * 3);
        // Moves the first row's key and leaves body alone; deletes the second row.
        await db.client.query(
          `update ${kind.name} set ${kind.move} where (${columns.join(', ')}) = (${kind.keys[0]})`,
        );
        await db.client.query(`delete from ${kind.name} where (${columns.join(', ')}) = (${kind.keys[1]})`);
        await waitFor(() => rowEvents(kind.name, 'delete').length === 1, {
          description: `${kind.name} delete`,
        });

        const inserts = rowEvents(kind.name, 'insert') as InsertEvent[];
        const [update] = rowEvents(kind.name, 'update') as Extract<ChangeEvent, { kind: 'update' }>[];
        expect(inserts).toHaveLength(3);
        expect(update?.row.body, `${kind.name}: the WAL has no body`).toBe(UNCHANGED_TOAST);
        expect(update?.oldKey).toBeDefined();

        const moved = keyOf(update!.row, columns);
        const gone = keyOf(inserts[1]!.row, columns);
        const kept = keyOf(inserts[2]!.row, columns);
        const stale = keyOf(inserts[0]!.row, columns);
        const found = await source.readRows(
          table(kind.name),
          [moved, gone, kept, stale, kept],
          ['body', 'note'],
        );
        const byKey = new Map(found.map((row) => [JSON.stringify(keyOf(row, columns)), row]));
        expect(found, kind.name).toHaveLength(2);
        expect(byKey.get(JSON.stringify(moved)), kind.name).toEqual({
          ...moved,
          body: inserts[0]!.row.body,
          note: 'note 0',
        });
        expect(byKey.get(JSON.stringify(kept)), kind.name).toEqual({
          ...kept,
          body: inserts[2]!.row.body,
          note: 'note 2',
        });
        expect((inserts[0]!.row.body as string).length).toBe(12_800);
      }
    } finally {
      await source.close();
      await db.drop();
    }
  });

  it('readRows: no keys read nothing; many keys go in batches; an unknown column or table is a table error; the source reconnects after a broken connection', async () => {
    const db = await createTestDatabase('read_rows_edges', server());
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'read_rows_edges',
      tables: [table('many')],
    });
    try {
      await db.client.query(`
        create table many (id int8 primary key, v float8, flag bool, at date);
        insert into many select g, g / 3.0, g % 2 = 0, date '2024-01-01' + g from generate_series(1, 50) g;`);
      expect(await source.readRows(table('many'), [], ['v'])).toEqual([]);

      const keys = [{ id: '7' }, { id: '8' }, { id: '49' }, { id: '51' }, { id: '1' }];
      const client = await source.connect();
      try {
        const rows = await readRows(client, new TypeCatalog(), table('many'), keys, ['v', 'flag', 'at'], {
          batchKeys: 2,
        });
        expect(rows.sort((a, b) => Number(a.id) - Number(b.id))).toEqual([
          { id: '1', v: 0.3333333333333333, flag: false, at: '2024-01-02' },
          { id: '7', v: 2.3333333333333335, flag: false, at: '2024-01-08' },
          { id: '8', v: 2.6666666666666665, flag: true, at: '2024-01-09' },
          { id: '49', v: 16.333333333333332, flag: false, at: '2024-02-19' },
        ]);
      } finally {
        await client.end();
      }

      const unknownColumn = await source.readRows(table('many'), keys, ['nope']).catch((error) => error);
      expect(unknownColumn).toBeInstanceOf(SourceError);
      expect(unknownColumn.code).toBe('table');
      expect(unknownColumn.message).toContain('"nope"');
      const unknownTable = await source.readRows(table('none'), keys, []).catch((error) => error);
      expect(unknownTable).toMatchObject({ code: 'table' });

      // Kill the reader's backend: the call fails as a connection error, the next one reconnects.
      await db.client.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`,
      );
      const broken = await source.readRows(table('many'), [{ id: '1' }], []).catch((error) => error);
      expect(broken).toMatchObject({ code: 'connection' });
      expect(await source.readRows(table('many'), [{ id: '1' }], [])).toEqual([{ id: '1' }]);
    } finally {
      await source.close();
      await db.drop();
    }
  });
});
