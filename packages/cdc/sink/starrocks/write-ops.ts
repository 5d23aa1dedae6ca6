// Change events as the writes a load carries: key-moving updates split into a delete and an upsert, one
// operation per key per load (last wins, TOAST-partial rows merged), grouped by the columns they carry, and
// the `columns` header that names them.
import { type ChangeEvent, type Row, UNCHANGED_TOAST } from '../../change-event.ts';
import { type EncodedColumn, loadField, type WriteOp } from './encoding.ts';
import type { TableMapping } from './schema.ts';
import { StarRocksError } from './starrocks-error.ts';

export interface OpGroup {
  /** Columns every row of a partial-update group carries; undefined for full rows. */
  present: Set<string> | undefined;
  signature: string;
  ops: WriteOp[];
}

/**
 * The `columns` header a load needs: only when a VARBINARY column travels as hex under a temporary field
 * (`b=hex_decode_binary(__sluice_hex_1)`; StarRocks stores a JSON string's bytes raw otherwise), or for a
 * partial update, which must list its columns.
 */
export function columnsHeader(columns: readonly EncodedColumn[], partial: boolean): string[] | undefined {
  const binary = columns.some((column) => column.rule.kind === 'binary');
  if (!binary && !partial) return undefined;
  const header: string[] = [];
  const derived: string[] = [];
  columns.forEach((column, index) => {
    const field = loadField(column, index);
    header.push(field);
    if (field !== column.name) derived.push(`${column.name}=hex_decode_binary(${field})`);
  });
  return [...header, ...derived];
}

/**
 * One operation per key, the last one winning with full-row semantics: a later full row or delete replaces
 * what came before, a TOAST-partial row is merged into the row before it. StarRocks then never sees a key
 * twice in one load — the order of a delete and a re-upsert of one key inside a load is not kept on
 * shared-data clusters (StarRocks issue #75014) — and loads get smaller.
 */
export function foldByKey(mapping: TableMapping, ops: readonly WriteOp[]): WriteOp[] {
  const folded = new Map<string, WriteOp>();
  for (const op of ops) {
    const row = op.kind === 'upsert' ? op.row : op.key;
    const key = keyOf(mapping, row);
    const previous = folded.get(key);
    if (op.kind === 'upsert' && op.refetch) {
      throw new StarRocksError(
        'fatal',
        `a moved row of ${mapping.source.schema}.${mapping.source.name} reached the sink without its unchanged TOAST values`,
      );
    }
    if (!previous || op.kind === 'delete' || !isPartial(op.row)) {
      folded.set(key, op);
      continue;
    }
    if (previous.kind === 'delete') {
      throw new StarRocksError(
        'fatal',
        `${mapping.source.schema}.${mapping.source.name}: an update without its TOAST values follows a delete of the same key`,
      );
    }
    const merged: Row = { ...previous.row };
    for (const name in op.row) {
      const value = op.row[name]!;
      if (value !== UNCHANGED_TOAST || !(name in merged)) merged[name] = value;
    }
    folded.set(key, { kind: 'upsert', row: merged });
  }
  return [...folded.values()];
}

function isPartial(row: Row): boolean {
  for (const name in row) if (row[name] === UNCHANGED_TOAST) return true;
  return false;
}

function keyOf(mapping: TableMapping, row: Row): string {
  return JSON.stringify(mapping.primaryKey.map((name) => row[name] ?? null));
}

/**
 * Splits a batch into loads: full rows and deletes in one, TOAST-partial rows grouped by the set of
 * columns they carry. The batch holds each key once (`foldByKey`), so no order between loads matters.
 */
export function groupByColumnSet(mapping: TableMapping, ops: readonly WriteOp[]): OpGroup[] {
  const groups = new Map<string, OpGroup>();
  for (const op of ops) {
    let signature = '';
    if (op.kind === 'upsert') {
      for (const column of mapping.columns) {
        if (op.row[column.name] === UNCHANGED_TOAST) signature += `${column.name}\0`;
      }
    }
    let group = groups.get(signature);
    if (!group) {
      const missing = signature ? new Set(signature.split('\0')) : undefined;
      const present = missing
        ? new Set(mapping.columns.filter((column) => !missing.has(column.name)).map((column) => column.name))
        : undefined;
      group = { present, signature, ops: [] };
      groups.set(signature, group);
    }
    group.ops.push(op);
  }
  return [...groups.values()];
}

/**
 * One table's row changes as sink operations, in order. An update that moved the key becomes a delete of
 * the old key and an upsert; unchanged TOAST values are filled from the old row when the source sent it
 * (REPLICA IDENTITY FULL). A moved row whose TOAST values the WAL doesn't hold (REPLICA IDENTITY DEFAULT)
 * is marked `refetch`: the pipeline reads those values from the source before the write.
 */
export function toWriteOps(events: readonly ChangeEvent[], primaryKey: readonly string[]): WriteOp[] {
  const ops: WriteOp[] = [];
  for (const event of events) {
    if (event.kind === 'insert') ops.push({ kind: 'upsert', row: event.row });
    else if (event.kind === 'delete') ops.push({ kind: 'delete', key: event.key });
    else if (event.kind === 'update') {
      let row: Row = event.row;
      const old = event.oldKey;
      if (old) {
        for (const name in row) {
          if (row[name] === UNCHANGED_TOAST && old[name] !== undefined && old[name] !== UNCHANGED_TOAST) {
            if (row === event.row) row = { ...event.row };
            row[name] = old[name]!;
          }
        }
        const moved = primaryKey.some((name) => JSON.stringify(old[name]) !== JSON.stringify(row[name]));
        if (moved) {
          ops.push({ kind: 'delete', key: old });
          if (isPartial(row)) {
            ops.push({ kind: 'upsert', row, refetch: true });
            continue;
          }
        }
      }
      ops.push({ kind: 'upsert', row });
    }
  }
  return ops;
}
