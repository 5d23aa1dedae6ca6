import { describe, expect, it } from 'vitest';
import { UNCHANGED_TOAST } from '../../change-event.ts';
import { type EncodedBody, type EncodedColumn, encodeBodies, encodeValue } from './encoding.ts';
import type { ValueRule } from './type-map.ts';

const columns: EncodedColumn[] = [
  { name: 'id', rule: { kind: 'integer' }, key: true, sql: 'INT' },
  { name: 'doc', rule: { kind: 'json', duplicateKeys: true }, key: false },
  { name: 'at', rule: { kind: 'datetime' }, key: false },
  { name: 'note', rule: { kind: 'varchar', bytes: 1000 }, key: false },
];

const parse = (body: EncodedBody) => JSON.parse(Buffer.concat(body.chunks).toString('utf8')) as unknown[];

describe('Stream Load body encoding', () => {
  it('writes upserts with __op 0, deletes with only the key and __op 1, and skips unchanged TOAST columns', () => {
    const {
      bodies: [body],
    } = encodeBodies(
      columns,
      [
        {
          kind: 'upsert',
          row: { id: 1, doc: '{"a": [1, "x"]}', at: '2024-01-02 03:04:05.5+00', note: 'é "q"' },
        },
        { kind: 'upsert', row: { id: 2, doc: UNCHANGED_TOAST, at: null, note: null } },
        { kind: 'delete', key: { id: 3, doc: '{}', at: null, note: 'old row under REPLICA IDENTITY FULL' } },
      ],
      1 << 20,
    );
    expect(body?.rows).toBe(3);
    expect(body?.bytes).toBe(Buffer.concat(body!.chunks).length);
    expect(parse(body!)).toEqual([
      { id: 1, doc: { a: [1, 'x'] }, at: '2024-01-02 03:04:05.5', note: 'é "q"', __op: 0 },
      { id: 2, at: null, note: null, __op: 0 },
      { id: 3, __op: 1 },
    ]);
  });

  it('splits bodies at the byte limit, each a JSON array, rows in order, in bounded chunks', () => {
    const ops = Array.from({ length: 3000 }, (_, i) => ({
      kind: 'upsert' as const,
      row: { id: i, doc: null, at: null, note: 'ü'.repeat(200) },
    }));
    const { bodies } = encodeBodies(columns, ops, 300_000);
    expect(bodies.length).toBeGreaterThan(1);
    const ids: number[] = [];
    for (const body of bodies) {
      expect(body.bytes).toBeLessThanOrEqual(300_000);
      expect(body.bytes).toBe(Buffer.concat(body.chunks).length);
      for (const chunk of body.chunks) expect(chunk.length).toBeLessThanOrEqual(256 * 1024 * 3 + 4096);
      ids.push(...parse(body).map((row) => (row as { id: number }).id));
    }
    expect(ids).toEqual(ops.map((op) => op.row.id));
    const single = encodeBodies(columns, ops, 1 << 30).bodies;
    expect(single).toHaveLength(1);
    expect(single[0]!.chunks.length).toBeGreaterThan(1);
  });

  it('refuses a row holding a column the mapping lacks, rather than dropping it', () => {
    expect(() => encodeBodies(columns, [{ kind: 'upsert', row: { id: 1, surprise: 'x' } }], 1000)).toThrow(
      /"surprise".*apply the schema change first/,
    );
    expect(() => encodeBodies(columns, [{ kind: 'delete', key: { note: 'x' } }], 1000)).toThrow(
      /primary-key column "id"/,
    );
  });

  const rules = {
    datetime: { kind: 'datetime' },
    date: { kind: 'date' },
    json: { kind: 'json', duplicateKeys: true },
    jsonArray: { kind: 'json-array' },
    text: { kind: 'varchar', bytes: 1000 },
    integer: { kind: 'integer' },
    float: { kind: 'float', bits: 64 },
    float4: { kind: 'float', bits: 32 },
    decimal: { kind: 'decimal', precision: 10, scale: 2 },
    binary: { kind: 'binary', bytes: 100 },
    dates: { kind: 'array', element: { kind: 'date' } },
    texts: { kind: 'array', element: { kind: 'varchar', bytes: 100 } },
  } satisfies Record<string, ValueRule>;

  it.each([
    ['datetime', '2024-01-01 00:00:00+00', '"2024-01-01 00:00:00"'],
    ['datetime', '2024-01-01 00:00:00.123456', '"2024-01-01 00:00:00.123456"'],
    ['date', '2024-02-29', '"2024-02-29"'],
    ['json', '{"k": "v"}', '{"k": "v"}'],
    ['json', '"scalar"', '"scalar"'],
    ['jsonArray', ['{"a":1}', null, ['[1]', '2']], '[{"a":1},null,[[1],2]]'],
    ['text', 1.5, '"1.5"'],
    ['text', true, '"t"'],
    ['text', [1, 'a b', null, 'NULL', ''], '"{1,\\"a b\\",NULL,\\"NULL\\",\\"\\"}"'],
    ['text', '{"j":1}', '"{\\"j\\":1}"'],
    ['integer', '-9223372036854775808', '"-9223372036854775808"'],
    ['float', -0, '-0.0'],
    ['float', 0, '0'],
    ['float', 'NaN', '"NaN"'],
    ['float4', 3.4028235e38, '3.4028234663852886e+38'],
    ['float4', 1e-45, '1.401298464324817e-45'],
    ['float4', 1.1, '1.100000023841858'],
    [
      'json',
      '{"big": 100000000000000000000, "max": 18446744073709551615, "s": "123456789012345678901"}',
      '{"big": 1e+20, "max": 18446744073709551615, "s": "123456789012345678901"}',
    ],
    [
      'json',
      '[1e400, -1e400, 1.5e-400, 0.0]',
      '[1.7976931348623157e+308, -1.7976931348623157e+308, 0.0, 0.0]',
    ],
    ['float', '-Infinity', '"-Infinity"'],
    ['decimal', '-12.50', '"-12.50"'],
    ['binary', '00ff', '"00ff"'],
    ['text', 'line\nbreak\u2028😀', '"line\\nbreak\u2028😀"'],
    ['dates', ['2024-01-01', null], '["2024-01-01",null]'],
  ] as const)('encodes %s %j as %s', (rule, value, json) => {
    expect(encodeValue(value as never, rules[rule])).toBe(json);
  });

  it('encodes null as null for every rule', () => {
    for (const rule of Object.values(rules)) expect(encodeValue(null, rule)).toBe('null');
  });
});

describe('values StarRocks would change', () => {
  const context = { datasource: 'warehouse', table: 'public.t' };
  const table = (rule: ValueRule, policy?: 'fail' | 'null' | 'clamp', sql = 'X'): EncodedColumn[] => [
    { name: 'id', rule: { kind: 'integer' }, key: true, sql: 'INT' },
    { name: 'v', rule, key: false, sql, ...(policy ? { policy } : {}) },
  ];
  const load = (rule: ValueRule, value: unknown, policy?: 'fail' | 'null' | 'clamp') => {
    const encoded = encodeBodies(
      table(rule, policy),
      [{ kind: 'upsert', row: { id: 7, v: value as never } }],
      1 << 20,
      context,
    );
    const [row] = parse(encoded.bodies[0]!) as { v: unknown }[];
    return { value: row!.v, nulled: encoded.nulled, clamped: encoded.clamped };
  };

  it.each([
    ['a BC date', { kind: 'date' }, '0044-03-15 BC', /BC date/, '0000-01-01'],
    ['a date after 9999', { kind: 'date' }, '10000-01-01', /after 9999-12-31/, '9999-12-31'],
    ['infinity as a timestamp', { kind: 'datetime' }, 'infinity', /infinity/, '9999-12-31 23:59:59.999999'],
    ['-infinity as a date', { kind: 'date' }, '-infinity', /-infinity/, '0000-01-01'],
    ['a BC timestamp', { kind: 'datetime' }, '0001-01-01 00:00:00 BC', /BC date/, '0000-01-01 00:00:00'],
    [
      'numeric Infinity as DECIMAL',
      { kind: 'decimal', precision: 5, scale: 2 },
      'Infinity',
      /Infinity/,
      '999.99',
    ],
    [
      'text over its VARCHAR bytes',
      { kind: 'varchar', bytes: 5 },
      'ab😀c',
      /7 bytes, over VARCHAR\(5\)/,
      'ab',
    ],
    [
      'a jsonb number beyond double',
      { kind: 'json', duplicateKeys: true },
      '{"n": 123456789012345678901234567890}',
      /123456789012345678901234567890/,
      { n: 1.2345678901234568e29 },
    ],
    [
      'a json number with more digits than a double',
      { kind: 'json', duplicateKeys: true },
      '[0.1000000000000000055511151231257827]',
      /rounded/,
      [0.1],
    ],
    [
      'an array element StarRocks would load as NULL',
      { kind: 'array', element: { kind: 'date' } },
      ['2020-01-01', '0010-01-01 BC'],
      /element 2/,
      ['2020-01-01', '0000-01-01'],
    ],
  ] as const)(
    'stops on %s, naming datasource, table, column, key and value, or loads NULL / the nearest value when chosen',
    (_name, rule, value, reason, nearest) => {
      let error: unknown;
      try {
        load(rule as ValueRule, value);
      } catch (caught) {
        error = caught;
      }
      expect(error).toMatchObject({ kind: 'operator' });
      const { message, solution } = error as { message: string; solution: string };
      expect(message).toMatch(/^warehouse: public\.t column "v" \(StarRocks X\), key \{"id":7\}: the value /);
      expect(message).toContain(JSON.stringify(value).slice(0, 20));
      expect(message).toMatch(reason);
      expect(solution).toContain('--column-as public.t.v=text');
      expect(solution).toContain('--on-unrepresentable public.t.v=null or =clamp');
      expect(solution).toContain('--exclude-column public.t.v');
      expect(load(rule as ValueRule, value, 'null')).toEqual({ value: null, nulled: 1, clamped: 0 });
      expect(load(rule as ValueRule, value, 'clamp')).toEqual({ value: nearest, nulled: 0, clamped: 1 });
    },
  );

  it.each([
    ['numeric NaN as DECIMAL', { kind: 'decimal', precision: 10, scale: 2 }, 'NaN', /NaN/],
    [
      'a 2-D array into a one-dimensional ARRAY',
      { kind: 'array', element: { kind: 'integer' } },
      [
        [1, 2],
        [3, 4],
      ],
      /multi-dimensional/,
    ],
    [
      'the JSON document null, which would become SQL NULL',
      { kind: 'json', duplicateKeys: true },
      'null',
      /JSON document null/,
    ],
    [
      'a json object with a duplicate key',
      { kind: 'json', duplicateKeys: true },
      '{"a": 1, "a": 2}',
      /key "a" twice/,
    ],
  ] as const)('stops on %s, with no nearest value to clamp to', (_name, rule, value, reason) => {
    expect(() => load(rule as ValueRule, value)).toThrow(reason);
    expect(() => load(rule as ValueRule, value, 'clamp')).toThrow(reason);
    expect(load(rule as ValueRule, value, 'null')).toEqual({ value: null, nulled: 1, clamped: 0 });
  });

  it('loads exactly what StarRocks holds exactly: -0, NaN, ±Infinity floats, int64/uint64 JSON, year 0000 and 9999', () => {
    expect(load({ kind: 'float', bits: 64 }, -0).value).toBe(-0);
    expect(Object.is(load({ kind: 'float', bits: 64 }, -0).value, -0)).toBe(true);
    expect(load({ kind: 'float', bits: 64 }, 'NaN').value).toBe('NaN');
    expect(
      load(
        { kind: 'json', duplicateKeys: true },
        '{"u": 18446744073709551615, "i": -9223372036854775808, "d": 0.1, "e": 1e300}',
      ).value,
    ).toBeDefined();
    expect(load({ kind: 'date' }, '0000-01-01').value).toBe('0000-01-01');
    expect(load({ kind: 'datetime' }, '9999-12-31 23:59:59.999999+00').value).toBe(
      '9999-12-31 23:59:59.999999',
    );
  });

  it('never adjusts a key value, whatever the column choice', () => {
    const columns: EncodedColumn[] = [
      { name: 'd', rule: { kind: 'date' }, key: true, sql: 'DATE', policy: 'null' },
    ];
    expect(() =>
      encodeBodies(columns, [{ kind: 'upsert', row: { d: 'infinity' } }], 1 << 20, context),
    ).toThrow(expect.objectContaining({ solution: expect.stringMatching(/--column-as public\.t\.d=text/) }));
  });

  it('refuses a primary key StarRocks would encode in more than 128 bytes', () => {
    const columns: EncodedColumn[] = [
      { name: 'a', rule: { kind: 'varchar', bytes: 128 }, key: true, sql: 'VARCHAR(128)' },
      { name: 'b', rule: { kind: 'integer' }, key: true, sql: 'BIGINT' },
    ];
    const row = (a: string) => [{ kind: 'upsert' as const, row: { a, b: 1 } }];
    expect(encodeBodies(columns, row('x'.repeat(118)), 1 << 20, context).bodies).toHaveLength(1);
    expect(() => encodeBodies(columns, row('x'.repeat(119)), 1 << 20, context)).toThrow(
      /129 bytes encoded; StarRocks holds at most 128/,
    );
  });
});
