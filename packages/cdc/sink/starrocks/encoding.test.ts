import { describe, expect, it } from 'vitest';
import { UNCHANGED_TOAST } from '../../change-event.ts';
import { type EncodedBody, type EncodedColumn, encodeBodies, encodeValue } from './encoding.ts';
import type { TableMapping } from './schema.ts';
import { groupByColumnSet } from './starrocks-sink.ts';

const columns: EncodedColumn[] = [
  { name: 'id', codec: 'plain', key: true },
  { name: 'doc', codec: 'json', key: false },
  { name: 'at', codec: 'datetime', key: false },
  { name: 'note', codec: 'plain', key: false },
];

const parse = (body: EncodedBody) => JSON.parse(Buffer.concat(body.chunks).toString('utf8')) as unknown[];

describe('Stream Load body encoding', () => {
  it('writes upserts with __op 0, deletes with only the key and __op 1, and skips unchanged TOAST columns', () => {
    const [body] = encodeBodies(
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
    const bodies = encodeBodies(columns, ops, 300_000);
    expect(bodies.length).toBeGreaterThan(1);
    const ids: number[] = [];
    for (const body of bodies) {
      expect(body.bytes).toBeLessThanOrEqual(300_000);
      expect(body.bytes).toBe(Buffer.concat(body.chunks).length);
      for (const chunk of body.chunks) expect(chunk.length).toBeLessThanOrEqual(256 * 1024 * 3 + 4096);
      ids.push(...parse(body).map((row) => (row as { id: number }).id));
    }
    expect(ids).toEqual(ops.map((op) => op.row.id));
    const single = encodeBodies(columns, ops, 1 << 30);
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

  it.each([
    ['datetime', '2024-01-01 00:00:00+00', '"2024-01-01 00:00:00"'],
    ['datetime', '2024-01-01 00:00:00.123456', '"2024-01-01 00:00:00.123456"'],
    ['datetime', 'infinity', '"9999-12-31 23:59:59.999999"'],
    ['datetime', '-infinity', '"0000-01-01 00:00:00"'],
    ['date', 'infinity', '"9999-12-31"'],
    ['date', '-infinity', '"0000-01-01"'],
    ['date', '2024-02-29', '"2024-02-29"'],
    ['json', '{"k": "v"}', '{"k": "v"}'],
    ['json', '"scalar"', '"scalar"'],
    ['json-array', ['{"a":1}', null, ['[1]', '2']], '[{"a":1},null,[[1],2]]'],
    ['text', 1.5, '"1.5"'],
    ['text', true, '"true"'],
    ['text', [1, 'a'], '"[1,\\"a\\"]"'],
    ['text', '{"j":1}', '"{\\"j\\":1}"'],
    ['plain', '-9223372036854775808', '"-9223372036854775808"'],
    ['plain', 'line\nbreak\u2028', '"line\\nbreak\u2028"'],
    [
      'datetime-array',
      ['2024-01-01 00:00:00+00', null, 'infinity'],
      '["2024-01-01 00:00:00",null,"9999-12-31 23:59:59.999999"]',
    ],
    ['date-array', ['-infinity', '2020-01-01'], '["0000-01-01","2020-01-01"]'],
  ] as const)('encodes %s %j as %s', (codec, value, json) => {
    expect(encodeValue(value as never, codec)).toBe(json);
  });

  it('encodes null as null for every codec', () => {
    for (const codec of [
      'plain',
      'json',
      'json-array',
      'text',
      'datetime',
      'date',
      'datetime-array',
      'date-array',
    ] as const) {
      expect(encodeValue(null, codec)).toBe('null');
    }
  });
});

describe('grouping a batch into loads', () => {
  const mapping: TableMapping = {
    source: { schema: 'public', name: 't' },
    database: 'd',
    table: 't',
    primaryKey: ['id'],
    columns: [
      { name: 'id', sql: 'INT', codec: 'plain', key: true },
      { name: 'a', sql: 'INT', codec: 'plain', key: false },
      { name: 'big', sql: 'VARCHAR(10)', codec: 'plain', key: false },
    ],
  };

  it('puts full rows in one load and TOAST-partial rows in loads by column set, never reordering a key', () => {
    const groups = groupByColumnSet(mapping, [
      { kind: 'upsert', row: { id: 1, a: 1, big: 'x' } },
      { kind: 'upsert', row: { id: 2, a: 1, big: UNCHANGED_TOAST } },
      { kind: 'upsert', row: { id: 3, a: 1, big: 'y' } },
      { kind: 'upsert', row: { id: 2, a: 2, big: 'z' } },
      { kind: 'upsert', row: { id: 4, a: 1, big: UNCHANGED_TOAST } },
      { kind: 'delete', key: { id: 4 } },
    ]);
    expect(
      groups.map((group) => [
        group.present && [...group.present],
        group.ops.map((op) => (op.kind === 'upsert' ? op.row.id : -(op.key.id as number))),
      ]),
    ).toEqual([
      [undefined, [1, 3]],
      [
        ['id', 'a'],
        [2, 4],
      ],
      [undefined, [2, -4]],
    ]);
  });

  it('keeps a batch without unchanged TOAST values in a single load', () => {
    const ops = [
      { kind: 'upsert' as const, row: { id: 1, a: 1, big: 'x' } },
      { kind: 'delete' as const, key: { id: 1 } },
    ];
    expect(groupByColumnSet(mapping, ops)).toEqual([{ present: undefined, signature: '', ops }]);
    expect(groupByColumnSet(mapping, [])).toEqual([]);
  });
});
