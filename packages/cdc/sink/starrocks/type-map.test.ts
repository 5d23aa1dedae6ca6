import { describe, expect, it } from 'vitest';
import type { PgColumnType } from '../../change-event.ts';
import { mapColumnType } from './type-map.ts';

const base = (name: string, modifier = -1): PgColumnType => ({ oid: 0, name, modifier, kind: 'base' });
const arrayOf = (element: PgColumnType): PgColumnType => ({
  oid: 0,
  name: `_${element.name}`,
  modifier: -1,
  kind: 'array',
  element,
});
const numeric = (precision: number, scale: number) =>
  base('numeric', ((precision << 16) | (scale & 0x7ff)) + 4);
const varcharTypmod = (n: number) => n + 4;

// Every type the PostgreSQL source decodes: [description, type, StarRocks type, value rule, as key, key rule].
// Rules: plain = the type's own rule, text = VARCHAR holding PostgreSQL's text.
const cases: [string, PgColumnType, string, string, string, string][] = [
  ['bool', base('bool'), 'BOOLEAN', 'plain', 'BOOLEAN', 'plain'],
  ['int2', base('int2'), 'SMALLINT', 'plain', 'SMALLINT', 'plain'],
  ['int4', base('int4'), 'INT', 'plain', 'INT', 'plain'],
  ['int8', base('int8'), 'BIGINT', 'plain', 'BIGINT', 'plain'],
  ['oid', base('oid'), 'BIGINT', 'plain', 'BIGINT', 'plain'],
  ['float4', base('float4'), 'FLOAT', 'plain', 'VARCHAR(128)', 'text'],
  ['float8', base('float8'), 'DOUBLE', 'plain', 'VARCHAR(128)', 'text'],
  ['numeric(10,2)', numeric(10, 2), 'DECIMAL(10, 2)', 'plain', 'VARCHAR(128)', 'text'],
  ['numeric(38,0)', numeric(38, 0), 'DECIMAL(38, 0)', 'plain', 'VARCHAR(128)', 'text'],
  ['numeric(50,5) (beyond DECIMAL)', numeric(50, 5), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['numeric(5,-2) (negative scale)', numeric(5, -2), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['numeric without precision', base('numeric'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['money', base('money'), 'VARCHAR(64)', 'plain', 'VARCHAR(64)', 'plain'],
  ['text', base('text'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['varchar(20)', base('varchar', varcharTypmod(20)), 'VARCHAR(80)', 'plain', 'VARCHAR(80)', 'plain'],
  ['varchar without length', base('varchar'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['bpchar(3)', base('bpchar', varcharTypmod(3)), 'VARCHAR(12)', 'plain', 'VARCHAR(12)', 'plain'],
  ['"char"', base('char'), 'VARCHAR(4)', 'plain', 'VARCHAR(4)', 'plain'],
  ['name', base('name'), 'VARCHAR(64)', 'plain', 'VARCHAR(64)', 'plain'],
  ['bytea', base('bytea'), 'VARBINARY(1048576)', 'plain', 'VARCHAR(128)', 'text'],
  ['date', base('date'), 'DATE', 'date', 'DATE', 'date'],
  ['time', base('time'), 'VARCHAR(32)', 'plain', 'VARCHAR(32)', 'plain'],
  ['timetz', base('timetz'), 'VARCHAR(32)', 'plain', 'VARCHAR(32)', 'plain'],
  ['timestamp', base('timestamp'), 'DATETIME', 'datetime', 'DATETIME', 'datetime'],
  ['timestamp(3)', base('timestamp', 3), 'DATETIME', 'datetime', 'DATETIME', 'datetime'],
  ['timestamptz', base('timestamptz'), 'DATETIME', 'datetime', 'DATETIME', 'datetime'],
  ['interval', base('interval'), 'VARCHAR(128)', 'plain', 'VARCHAR(128)', 'plain'],
  ['json', base('json'), 'JSON', 'json', 'VARCHAR(128)', 'text'],
  ['jsonb', base('jsonb'), 'JSON', 'json', 'VARCHAR(128)', 'text'],
  ['uuid', base('uuid'), 'VARCHAR(36)', 'plain', 'VARCHAR(36)', 'plain'],
  ['inet', base('inet'), 'VARCHAR(64)', 'plain', 'VARCHAR(64)', 'plain'],
  ['cidr', base('cidr'), 'VARCHAR(64)', 'plain', 'VARCHAR(64)', 'plain'],
  ['macaddr', base('macaddr'), 'VARCHAR(17)', 'plain', 'VARCHAR(17)', 'plain'],
  ['macaddr8', base('macaddr8'), 'VARCHAR(23)', 'plain', 'VARCHAR(23)', 'plain'],
  ['bit(8)', base('bit', 8), 'VARCHAR(8)', 'plain', 'VARCHAR(8)', 'plain'],
  ['varbit(12)', base('varbit', 12), 'VARCHAR(12)', 'plain', 'VARCHAR(12)', 'plain'],
  ['varbit', base('varbit'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['xml', base('xml'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['tsvector', base('tsvector'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['tsquery', base('tsquery'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['point', base('point'), 'VARCHAR(512)', 'plain', 'VARCHAR(128)', 'plain'],
  ['line', base('line'), 'VARCHAR(512)', 'plain', 'VARCHAR(128)', 'plain'],
  ['lseg', base('lseg'), 'VARCHAR(512)', 'plain', 'VARCHAR(128)', 'plain'],
  ['box', base('box'), 'VARCHAR(512)', 'plain', 'VARCHAR(128)', 'plain'],
  ['path', base('path'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['polygon', base('polygon'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  ['circle', base('circle'), 'VARCHAR(512)', 'plain', 'VARCHAR(128)', 'plain'],
  ['pg_lsn', base('pg_lsn'), 'VARCHAR(32)', 'plain', 'VARCHAR(32)', 'plain'],
  [
    'int4range',
    { oid: 0, name: 'int4range', modifier: -1, kind: 'range' },
    'VARCHAR(1048576)',
    'text',
    'VARCHAR(128)',
    'text',
  ],
  [
    'tstzrange',
    { oid: 0, name: 'tstzrange', modifier: -1, kind: 'range' },
    'VARCHAR(1048576)',
    'text',
    'VARCHAR(128)',
    'text',
  ],
  [
    'int4multirange',
    { oid: 0, name: 'int4multirange', modifier: -1, kind: 'multirange' },
    'VARCHAR(1048576)',
    'text',
    'VARCHAR(128)',
    'text',
  ],
  [
    'composite',
    { oid: 0, name: 'address', modifier: -1, kind: 'composite' },
    'VARCHAR(1048576)',
    'text',
    'VARCHAR(128)',
    'text',
  ],
  [
    'enum',
    { oid: 0, name: 'mood', modifier: -1, kind: 'enum' },
    'VARCHAR(256)',
    'plain',
    'VARCHAR(128)',
    'plain',
  ],
  ['domain over int4', { ...base('int4'), domain: 'positive_int' }, 'INT', 'plain', 'INT', 'plain'],
  [
    'domain over varchar(5)',
    { ...base('varchar', varcharTypmod(5)), domain: 'code' },
    'VARCHAR(20)',
    'plain',
    'VARCHAR(20)',
    'plain',
  ],
  ['extension type (citext)', base('citext'), 'VARCHAR(1048576)', 'plain', 'VARCHAR(128)', 'plain'],
  [
    'unknown extension type',
    { oid: 0, name: 'geometry', modifier: -1, kind: 'other' },
    'VARCHAR(1048576)',
    'text',
    'VARCHAR(128)',
    'text',
  ],
];

// Arrays of each scalar: [element, StarRocks type, codec]; keys of array type are always VARCHAR text.
const arrayCases: [string, PgColumnType, string, string][] = [
  ['bool[]', base('bool'), 'ARRAY<BOOLEAN>', 'plain'],
  ['int2[]', base('int2'), 'ARRAY<SMALLINT>', 'plain'],
  ['int4[]', base('int4'), 'ARRAY<INT>', 'plain'],
  ['int8[]', base('int8'), 'ARRAY<BIGINT>', 'plain'],
  ['float4[]', base('float4'), 'ARRAY<FLOAT>', 'plain'],
  ['float8[]', base('float8'), 'ARRAY<DOUBLE>', 'plain'],
  ['numeric(10,2)[]', numeric(10, 2), 'ARRAY<DECIMAL(10, 2)>', 'plain'],
  ['numeric[]', base('numeric'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['money[]', base('money'), 'ARRAY<VARCHAR(64)>', 'plain'],
  ['text[]', base('text'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['varchar(4)[]', base('varchar', varcharTypmod(4)), 'ARRAY<VARCHAR(16)>', 'plain'],
  ['bpchar(2)[]', base('bpchar', varcharTypmod(2)), 'ARRAY<VARCHAR(8)>', 'plain'],
  ['name[]', base('name'), 'ARRAY<VARCHAR(64)>', 'plain'],
  ['bytea[]', base('bytea'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['date[]', base('date'), 'ARRAY<DATE>', 'date-array'],
  ['time[]', base('time'), 'ARRAY<VARCHAR(32)>', 'plain'],
  ['timetz[]', base('timetz'), 'ARRAY<VARCHAR(32)>', 'plain'],
  ['timestamp[]', base('timestamp'), 'ARRAY<DATETIME>', 'datetime-array'],
  ['timestamptz[]', base('timestamptz'), 'ARRAY<DATETIME>', 'datetime-array'],
  ['interval[]', base('interval'), 'ARRAY<VARCHAR(128)>', 'plain'],
  ['json[]', base('json'), 'JSON', 'json-array'],
  ['jsonb[]', base('jsonb'), 'JSON', 'json-array'],
  ['uuid[]', base('uuid'), 'ARRAY<VARCHAR(36)>', 'plain'],
  ['inet[]', base('inet'), 'ARRAY<VARCHAR(64)>', 'plain'],
  ['cidr[]', base('cidr'), 'ARRAY<VARCHAR(64)>', 'plain'],
  ['macaddr[]', base('macaddr'), 'ARRAY<VARCHAR(17)>', 'plain'],
  ['macaddr8[]', base('macaddr8'), 'ARRAY<VARCHAR(23)>', 'plain'],
  ['bit(1)[]', base('bit', 1), 'ARRAY<VARCHAR(1)>', 'plain'],
  ['varbit[]', base('varbit'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['xml[]', base('xml'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['tsvector[]', base('tsvector'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['tsquery[]', base('tsquery'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['point[]', base('point'), 'ARRAY<VARCHAR(512)>', 'plain'],
  ['line[]', base('line'), 'ARRAY<VARCHAR(512)>', 'plain'],
  ['lseg[]', base('lseg'), 'ARRAY<VARCHAR(512)>', 'plain'],
  ['box[]', base('box'), 'ARRAY<VARCHAR(512)>', 'plain'],
  ['path[]', base('path'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['polygon[]', base('polygon'), 'ARRAY<VARCHAR(1048576)>', 'plain'],
  ['circle[]', base('circle'), 'ARRAY<VARCHAR(512)>', 'plain'],
  ['oid[]', base('oid'), 'ARRAY<BIGINT>', 'plain'],
  ['pg_lsn[]', base('pg_lsn'), 'ARRAY<VARCHAR(32)>', 'plain'],
  ['enum[]', { oid: 0, name: 'mood', modifier: -1, kind: 'enum' }, 'ARRAY<VARCHAR(256)>', 'plain'],
  [
    'int4range[]',
    { oid: 0, name: 'int4range', modifier: -1, kind: 'range' },
    'ARRAY<VARCHAR(1048576)>',
    'plain',
  ],
  [
    'composite[]',
    { oid: 0, name: 'address', modifier: -1, kind: 'composite' },
    'ARRAY<VARCHAR(1048576)>',
    'plain',
  ],
];

describe('PostgreSQL → StarRocks type mapping', () => {
  it.each(cases)('maps %s to %s, and as a key to %s', (_name, type, sql, _rule, keySql) => {
    expect(mapColumnType(type).sql).toBe(sql);
    expect(mapColumnType(type, true).sql).toBe(keySql);
    if (keySql.startsWith('VARCHAR')) expect(mapColumnType(type, true).rule.kind).toBe('varchar');
  });

  it.each(arrayCases)('maps %s to %s, and as a key to VARCHAR text', (_name, element, sql) => {
    expect(mapColumnType(arrayOf(element)).sql).toBe(sql);
    expect(mapColumnType(arrayOf(element), true)).toEqual({
      sql: 'VARCHAR(128)',
      rule: { kind: 'varchar', bytes: 128 },
    });
  });

  it('maps any column the job marks as text to VARCHAR holding PostgreSQL text, keys to VARCHAR(128)', () => {
    for (const [, type] of cases) {
      expect(mapColumnType(type, false, 'text')).toEqual({
        sql: 'VARCHAR(1048576)',
        rule: { kind: 'varchar', bytes: 1048576 },
      });
      expect(mapColumnType(type, true, 'text').sql).toBe('VARCHAR(128)');
    }
  });

  it('maps bytea to VARBINARY decoded from hex, never to a VARBINARY fed hex text', () => {
    expect(mapColumnType(base('bytea')).rule).toEqual({ kind: 'binary', bytes: 1048576 });
    expect(mapColumnType(arrayOf(base('bytea'))).rule).toEqual({
      kind: 'array',
      element: { kind: 'varchar', bytes: 1048576 },
    });
  });

  it('maps every key to a type StarRocks accepts as a Primary Key column', () => {
    const keyTypes = /^(BOOLEAN|TINYINT|SMALLINT|INT|BIGINT|LARGEINT|DATE|DATETIME|VARCHAR\((\d+)\))$/;
    for (const [, type] of cases) {
      const { sql } = mapColumnType(type, true);
      const match = keyTypes.exec(sql);
      expect(match, sql).not.toBeNull();
      if (match?.[2]) expect(Number(match[2])).toBeLessThanOrEqual(128);
    }
  });

  it('maps an array with an unknown element to JSON', () => {
    expect(mapColumnType({ oid: 0, name: '_x', modifier: -1, kind: 'array' })).toEqual({
      sql: 'JSON',
      rule: { kind: 'json-value' },
    });
  });
});
