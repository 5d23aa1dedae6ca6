import { describe, expect, it } from 'vitest';
import { UNCHANGED_TOAST } from '../../change-event.ts';
import type { TableMapping } from './schema.ts';
import { columnsHeader, foldByKey, groupByColumnSet, toWriteOps } from './write-ops.ts';

describe('grouping a batch into loads', () => {
  const mapping: TableMapping = {
    source: { schema: 'public', name: 't' },
    database: 'd',
    table: 't',
    primaryKey: ['id'],
    columns: [
      { name: 'id', sql: 'INT', rule: { kind: 'integer' }, key: true },
      { name: 'a', sql: 'INT', rule: { kind: 'integer' }, key: false },
      { name: 'big', sql: 'VARCHAR(10)', rule: { kind: 'varchar', bytes: 10 }, key: false },
      { name: 'b', sql: 'VARBINARY(10)', rule: { kind: 'binary', bytes: 10 }, key: false },
    ],
  };

  it('keeps one operation per key, the last winning, with TOAST-partial rows merged into the row before', () => {
    const folded = foldByKey(mapping, [
      { kind: 'upsert', row: { id: 1, a: 1, big: 'x', b: null } },
      { kind: 'upsert', row: { id: 2, a: 1, big: UNCHANGED_TOAST, b: '00' } },
      { kind: 'delete', key: { id: 3 } },
      { kind: 'upsert', row: { id: 3, a: 3, big: 'y', b: null } },
      { kind: 'upsert', row: { id: 1, a: 2, big: UNCHANGED_TOAST, b: UNCHANGED_TOAST } },
      { kind: 'upsert', row: { id: 2, a: 2, big: UNCHANGED_TOAST, b: UNCHANGED_TOAST } },
      { kind: 'upsert', row: { id: 4, a: 1, big: 'z', b: null } },
      { kind: 'delete', key: { id: 4 } },
    ]);
    const id = (op: (typeof folded)[number]) => Number(op.kind === 'upsert' ? op.row.id : op.key.id);
    expect(folded.sort((a, b) => id(a) - id(b))).toEqual([
      { kind: 'upsert', row: { id: 1, a: 2, big: 'x', b: null } },
      { kind: 'upsert', row: { id: 2, a: 2, big: UNCHANGED_TOAST, b: '00' } },
      { kind: 'upsert', row: { id: 3, a: 3, big: 'y', b: null } },
      { kind: 'delete', key: { id: 4 } },
    ]);
  });

  it('puts full rows and deletes in one load and TOAST-partial rows in loads by column set', () => {
    const groups = groupByColumnSet(mapping, [
      { kind: 'upsert', row: { id: 1, a: 1, big: 'x', b: null } },
      { kind: 'upsert', row: { id: 2, a: 1, big: UNCHANGED_TOAST, b: null } },
      { kind: 'delete', key: { id: 3 } },
      { kind: 'upsert', row: { id: 4, a: 1, big: UNCHANGED_TOAST, b: null } },
    ]);
    expect(groups.map((group) => [group.present && [...group.present], group.ops.length])).toEqual([
      [undefined, 2],
      [['id', 'a', 'b'], 2],
    ]);
  });

  it('sends VARBINARY as hex under a field hex_decode_binary reads, in the columns header', () => {
    expect(columnsHeader(mapping.columns, false)).toEqual([
      'id',
      'a',
      'big',
      '__sluice_hex_3',
      'b=hex_decode_binary(__sluice_hex_3)',
    ]);
    expect(columnsHeader(mapping.columns.slice(0, 3), false)).toBeUndefined();
    expect(columnsHeader(mapping.columns.slice(0, 2), true)).toEqual(['id', 'a']);
  });

  it('marks a row whose key moved with unchanged TOAST values for re-reading, instead of failing', () => {
    const table = { schema: 'public', name: 't' };
    const ops = toWriteOps(
      [{ kind: 'update', lsn: 1n, table, row: { id: 2, a: 1, big: UNCHANGED_TOAST }, oldKey: { id: 1 } }],
      ['id'],
    );
    expect(ops).toEqual([
      { kind: 'delete', key: { id: 1 } },
      { kind: 'upsert', row: { id: 2, a: 1, big: UNCHANGED_TOAST }, refetch: true },
    ]);
    expect(() => foldByKey(mapping, ops)).toThrow(/without its unchanged TOAST values/);
  });
});

describe('change events as sink operations', () => {
  it('turns a key-moving update into a delete of the old key and an upsert, keeping order', () => {
    const table = { schema: 'public', name: 't' };
    const ops = toWriteOps(
      [
        { kind: 'insert', lsn: 1n, table, row: { id: 1, v: 'a' } },
        { kind: 'update', lsn: 2n, table, row: { id: 2, v: 'a' }, oldKey: { id: 1 } },
        { kind: 'update', lsn: 3n, table, row: { id: 2, v: UNCHANGED_TOAST } },
        { kind: 'delete', lsn: 4n, table, key: { id: 2 } },
      ],
      ['id'],
    );
    expect(ops).toEqual([
      { kind: 'upsert', row: { id: 1, v: 'a' } },
      { kind: 'delete', key: { id: 1 } },
      { kind: 'upsert', row: { id: 2, v: 'a' } },
      { kind: 'upsert', row: { id: 2, v: UNCHANGED_TOAST } },
      { kind: 'delete', key: { id: 2 } },
    ]);
  });

  it('fills unchanged TOAST values from a full old row, and marks a moved row whose values are unknown for re-reading', () => {
    const table = { schema: 'public', name: 't' };
    expect(
      toWriteOps(
        [{ kind: 'update', lsn: 1n, table, row: { id: 1, v: UNCHANGED_TOAST }, oldKey: { id: 1, v: 'old' } }],
        ['id'],
      ),
    ).toEqual([{ kind: 'upsert', row: { id: 1, v: 'old' } }]);
    expect(
      toWriteOps(
        [{ kind: 'update', lsn: 1n, table, row: { id: 2, v: UNCHANGED_TOAST }, oldKey: { id: 1 } }],
        ['id'],
      ),
    ).toEqual([
      { kind: 'delete', key: { id: 1 } },
      { kind: 'upsert', row: { id: 2, v: UNCHANGED_TOAST }, refetch: true },
    ]);
  });
});
