// Rows whose primary key moved while a TOASTed column was unchanged: under REPLICA IDENTITY DEFAULT the WAL
// holds neither the old values nor the unchanged new one, so the value is read from the source's current row.
import type { Row, TableRef } from '../change-event.ts';
import { UNCHANGED_TOAST } from '../change-event.ts';
import type { WriteOp } from '../sink/starrocks/encoding.ts';
import type { PostgresSource } from '../source/postgres/index.ts';
import type { Transforms } from './transforms.ts';

/**
 * `ops` with every `refetch` upsert completed from the source's current row (its values transformed like
 * any other: hashed, excluded). A row the source no longer has is deleted later in the stream, so its upsert
 * is dropped; a value newer than the stream position is overwritten by the changes that follow, so the
 * table converges — also when a crash replays the batch.
 */
export async function fillMovedRows(
  source: PostgresSource,
  transforms: Transforms,
  table: TableRef,
  primaryKey: readonly string[],
  ops: WriteOp[],
): Promise<WriteOp[]> {
  const wanted = ops.filter((op) => op.kind === 'upsert' && op.refetch) as Extract<
    WriteOp,
    { kind: 'upsert' }
  >[];
  if (wanted.length === 0) return ops;
  const columns = new Set<string>();
  for (const op of wanted) for (const name in op.row) if (op.row[name] === UNCHANGED_TOAST) columns.add(name);
  const keyOf = (row: Row) => JSON.stringify(primaryKey.map((name) => row[name] ?? null));
  const keys = wanted.map((op) => {
    const key: Row = {};
    for (const name of primaryKey) key[name] = op.row[name] ?? null;
    return key;
  });
  const current = new Map<string, Row>();
  for (const row of await source.readRows(table, keys, [...columns])) current.set(keyOf(row), row);
  const filled: WriteOp[] = [];
  for (const op of ops) {
    if (op.kind !== 'upsert' || !op.refetch) {
      filled.push(op);
      continue;
    }
    const found = current.get(keyOf(op.row));
    if (!found) continue;
    const missing: Row = {};
    for (const name in op.row) if (op.row[name] === UNCHANGED_TOAST) missing[name] = found[name] ?? null;
    filled.push({ kind: 'upsert', row: { ...op.row, ...transforms.row(table, missing) } });
  }
  return filled;
}
