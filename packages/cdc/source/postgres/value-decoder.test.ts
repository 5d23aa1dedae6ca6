import { createTestDatabase } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import type { ChangeEvent, ColumnValue, Row, TableRef } from '../../change-event.ts';
import { PostgresSource, type SnapshotRange } from './index.ts';
import { collect, testConnection } from './testing/memory-table.ts';
import { forEachServer } from './testing/servers.ts';
import { decoderFor, parseArray } from './value-decoder.ts';

describe('array literals', () => {
  const text = (value: string): ColumnValue => value;
  it('parses quoting, escapes, NULL, nesting and dimension decorations', () => {
    expect(parseArray('{}', text)).toEqual([]);
    expect(parseArray('{"a b","c\\"d",NULL,"NULL",e\\,f}', text)).toEqual([
      'a b',
      'c"d',
      null,
      'NULL',
      'e,f',
    ]);
    expect(parseArray('{{1,2},{3,4}}', Number)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(parseArray('[0:1]={x,y}', text)).toEqual(['x', 'y']);
    expect(parseArray('{(1,1),(0,0);(2,2),(1,1)}', text, 0x3b)).toEqual(['(1,1),(0,0)', '(2,2),(1,1)']);
  });
  it.each(['', '{', '{a', '{"a}', 'x', '{a}b'])('refuses the malformed literal %j', (literal) => {
    expect(() => parseArray(literal, text)).toThrow(SyntaxError);
  });
  it('decodes floats with PostgreSQL spellings of NaN and infinities', () => {
    const float = decoderFor({ oid: 701, name: 'float8', modifier: -1, kind: 'base' });
    expect([float('NaN'), float('Infinity'), float('-Infinity'), float('1.5')]).toEqual([
      'NaN',
      'Infinity',
      '-Infinity',
      1.5,
    ]);
  });
});

const schemaName = 'Spaß "schema"';
const zoo: TableRef = { schema: schemaName, name: 'Zoo "Ünï" 表' };

const columns: [string, string, string, ColumnValue][] = [
  ['b', 'bool', 'true', true],
  ['i2', 'int2', `'-32768'`, -32768],
  ['i4', 'int4', '2147483647', 2147483647],
  ['i8', 'int8', `'-9223372036854775808'`, '-9223372036854775808'],
  ['o', 'oid', '4294967295', 4294967295],
  ['f4', 'float4', `'NaN'`, 'NaN'],
  ['f8', 'float8', `'-Infinity'`, '-Infinity'],
  ['f8b', 'float8', '1.5e300', 1.5e300],
  ['f8c', 'float8', '0.1', 0.1],
  ['num', 'numeric(30,10)', '12345678901234567890.0123456789', '12345678901234567890.0123456789'],
  ['num_nan', 'numeric', `'NaN'`, 'NaN'],
  ['num_inf', 'numeric', `'-Infinity'`, '-Infinity'],
  ['m', 'money', '12.34', '$12.34'],
  ['t', 'text', `E'Ünïcödé ✓ "q" \\\\ tab\\tnl\\n'`, 'Ünïcödé ✓ "q" \\ tab\tnl\n'],
  ['vc', 'varchar(10)', `'abc'`, 'abc'],
  ['ch', 'char(3)', `'a'`, 'a  '],
  ['by', 'bytea', `'\\x00ff10'`, '00ff10'],
  ['d', 'date', `'2024-02-29'`, '2024-02-29'],
  ['d_bc', 'date', `'0044-03-15 BC'`, '0044-03-15 BC'],
  ['d_inf', 'date', `'-infinity'`, '-infinity'],
  ['ts', 'timestamp', `'2024-01-02 03:04:05.123456'`, '2024-01-02 03:04:05.123456'],
  ['ts_inf', 'timestamp', `'infinity'`, 'infinity'],
  ['tz', 'timestamptz', `'2024-01-02 03:04:05.5+02'`, '2024-01-02 01:04:05.5+00'],
  ['tz_inf', 'timestamptz', `'-infinity'`, '-infinity'],
  ['tm', 'time', `'12:34:56.789'`, '12:34:56.789'],
  ['ttz', 'timetz', `'12:34:56+05:30'`, '12:34:56+05:30'],
  ['iv', 'interval', `'1 year 2 months 3 days 04:05:06'`, '1 year 2 mons 3 days 04:05:06'],
  ['u', 'uuid', `'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'`, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  ['js', 'json', `'{"b": [1, 2],  "a": 1}'`, '{"b": [1, 2],  "a": 1}'],
  ['jb', 'jsonb', `'{"b": [1, 2], "a": "x"}'`, '{"a": "x", "b": [1, 2]}'],
  ['x', 'xml', `'<a>1</a>'`, '<a>1</a>'],
  ['ip', 'inet', `'192.168.0.1/24'`, '192.168.0.1/24'],
  ['net', 'cidr', `'10.0.0.0/8'`, '10.0.0.0/8'],
  ['mac', 'macaddr', `'08:00:2b:01:02:03'`, '08:00:2b:01:02:03'],
  ['pt', 'point', `'(1,2)'`, '(1,2)'],
  ['bx', 'box', `'(0,0),(1,1)'`, '(1,1),(0,0)'],
  ['bits', 'bit(4)', `B'1010'`, '1010'],
  ['vbits', 'varbit', `B'101'`, '101'],
  ['tsv', 'tsvector', `'b a'`, "'a' 'b'"],
  ['lsn', 'pg_lsn', `'16/B374D848'`, '16/B374D848'],
  ['rng', 'int4range', `'[1,10)'`, '[1,10)'],
  ['mood', 'mood', `'happy'`, 'happy'],
  ['dom', 'posint', '42', 42],
  ['arr', 'int4[]', `'{1,NULL,3}'`, [1, null, 3]],
  ['tarr', 'text[]', `'{"a b","c\\"d",NULL,"NULL"}'`, ['a b', 'c"d', null, 'NULL']],
  [
    'marr',
    'int4[][]',
    `'{{1,2},{3,4}}'`,
    [
      [1, 2],
      [3, 4],
    ],
  ],
  ['barr', 'box[]', `'{"(1,1),(0,0)";"(2,2),(1,1)"}'`, ['(1,1),(0,0)', '(2,2),(1,1)']],
  ['earr', 'mood[]', `'{sad,happy}'`, ['sad', 'happy']],
  ['darr', 'posint[]', `'{1,2}'`, [1, 2]],
  ['byarr', 'bytea[]', `array['\\x01'::bytea]`, ['01']],
  ['tzarr', 'timestamptz[]', `'{"2024-01-01 00:00:00+00"}'`, ['2024-01-01 00:00:00+00']],
  ['i8arr', 'int8[]', `'{1,-2}'`, ['1', '-2']],
  ['numarr', 'numeric[]', `'{1.50,NaN}'`, ['1.50', 'NaN']],
  ['farr', 'float8[]', `'{NaN,1}'`, ['NaN', 1]],
  ['boolarr', 'bool[]', `'{t,f}'`, [true, false]],
  ['f4n', 'float4', '0.1', 0.1],
  ['nm', 'name', `'a name'`, 'a name'],
  ['qc', '"char"', `'q'`, 'q'],
  ['x8', 'xid8', `'123'`, '123'],
  ['rc', 'regclass', `'pg_class'`, 'pg_class'],
  ['i2v', 'int2vector', `'1 2 3'`, '1 2 3'],
  ['oidv', 'oidvector', `'1 2'`, '1 2'],
  ['mac8', 'macaddr8', `'08:00:2b:01:02:03:04:05'`, '08:00:2b:01:02:03:04:05'],
  ['ln', 'line', `'{1,2,3}'`, '{1,2,3}'],
  ['ls', 'lseg', `'[(0,0),(1,1)]'`, '[(0,0),(1,1)]'],
  ['pth', 'path', `'((0,0),(1,1))'`, '((0,0),(1,1))'],
  ['pg', 'polygon', `'((0,0),(1,1),(1,0))'`, '((0,0),(1,1),(1,0))'],
  ['cr', 'circle', `'<(0,0),1>'`, '<(0,0),1>'],
  ['tsr', 'tstzrange', `'[2024-01-01 00:00+00,infinity)'`, '["2024-01-01 00:00:00+00",infinity)'],
  ['mr', 'int4multirange', `'{[1,3),[5,7)}'`, '{[1,3),[5,7)}'],
  ['jp', 'jsonpath', `'$.a[*] ? (@ > 1)'`, '$."a"[*]?(@ > 1)'],
  ['tq', 'tsquery', `'a & b'`, "'a' & 'b'"],
  ['comp', 'pair', `'(1,"x y")'`, '(1,"x y")'],
  ['comparr', 'pair[]', `array['(1,a)'::pair, '(2,"b c")'::pair]`, ['(1,a)', '(2,"b c")']],
  ['ts_bc', 'timestamp', `'0001-01-01 00:00:00 BC'`, '0001-01-01 00:00:00 BC'],
  ['ts_far', 'timestamptz', `'294276-12-31 23:59:59+00'`, '294276-12-31 23:59:59+00'],
  ['tm24', 'time', `'24:00:00'`, '24:00:00'],
  ['Mixed "Case" ключ', 'text', `'ok'`, 'ok'],
];

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
const qualified = `${quote(zoo.schema)}.${quote(zoo.name)}`;

function expectedRow(id: number, nulls: boolean): Row {
  const row: Row = { id };
  for (const [name, , , value] of columns) row[name] = nulls ? null : value;
  return row;
}

forEachServer((server) => {
  it('a type zoo with every built-in type and edge values round-trips through the snapshot and the stream; Unicode and quoted identifiers work', async () => {
    const db = await createTestDatabase('zoo', server());
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'zoo',
      tables: [zoo],
    });
    try {
      await db.client.query(`create schema ${quote(schemaName)}`);
      await db.client.query(`create type mood as enum ('sad', 'happy')`);
      await db.client.query('create domain posint as int4 check (value > 0)');
      await db.client.query('create type pair as (n int, label text)');
      await db.client.query(
        `create table ${qualified} (id int primary key, ${columns.map(([name, type]) => `${quote(name)} ${type}`).join(', ')})`,
      );
      const insert = (id: number) =>
        db.client.query(
          `insert into ${qualified} values (${id}, ${columns.map(([, type, literal]) => `${literal}::${type}`).join(', ')})`,
        );
      await insert(1);
      await db.client.query(`insert into ${qualified} (id) values (2)`);

      const setup = await source.setup();
      const schema = setup.schemas[0]!;
      const byName = new Map(schema.columns.map((column) => [column.name, column.type]));
      expect(byName.get('dom')).toMatchObject({ name: 'int4', kind: 'base', domain: 'posint' });
      expect(byName.get('earr')).toMatchObject({ kind: 'array', element: { name: 'mood', kind: 'enum' } });
      expect(byName.get('num')?.modifier).toBeGreaterThan(0);

      const copied: Row[] = [];
      await source.snapshot({
        store: {
          load: async () => undefined,
          savePlan: async (_planned: SnapshotRange[]) => undefined,
          completeRange: async () => undefined,
        },
        onBatch: async (batch) => {
          copied.push(...batch.rows);
        },
      });
      copied.sort((a, b) => (a.id as number) - (b.id as number));
      expect(copied).toEqual([expectedRow(1, false), expectedRow(2, true)]);

      const stream = await source.stream();
      const { events } = collect(stream);
      await insert(3);
      await db.client.query(`insert into ${qualified} (id) values (4)`);
      await db.client.query(`delete from ${qualified} where id = 3`);
      const { waitFor } = await import('@sluice/testkit');
      await waitFor(() => events.some((event) => event.kind === 'delete'), { description: 'the delete' });
      const inserts = events.filter(
        (event): event is Extract<ChangeEvent, { kind: 'insert' }> => event.kind === 'insert',
      );
      expect(inserts.map((event) => event.table)).toEqual([zoo, zoo]);
      expect(inserts.map((event) => event.row)).toEqual([expectedRow(3, false), expectedRow(4, true)]);
      const first = events.find((event) => event.kind === 'schema');
      expect(first?.kind === 'schema' && first.schema.columns.map((column) => column.type)).toEqual(
        schema.columns.map((column) => column.type),
      );
      const deleted = events.find((event) => event.kind === 'delete');
      expect(deleted?.kind === 'delete' && deleted.key).toEqual({ id: 3 });
    } finally {
      await source.close();
      await db.drop();
    }
  });
});
