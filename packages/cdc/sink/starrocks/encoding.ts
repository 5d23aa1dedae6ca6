// Stream Load bodies: a JSON array of row objects (sent with `strip_outer_array: true`), each carrying
// `__op` (0 upsert, 1 delete). The hot path appends to one string and turns it into a Buffer every
// CHUNK_CHARS characters, so a body is a short list of large Buffers, never one object per row; a body
// is closed at `maxBytes` and the next rows start a new one.
import { type ColumnValue, type Row, UNCHANGED_TOAST } from '../../change-event.ts';
import { StarRocksError } from './starrocks-error.ts';
import type { ValueCodec } from './type-map.ts';

/** One change for the sink: an upsert of a full (or TOAST-partial) row, or a delete by key. */
export type WriteOp = { kind: 'upsert'; row: Row } | { kind: 'delete'; key: Row };

export interface EncodedColumn {
  name: string;
  codec: ValueCodec;
  key: boolean;
}

export interface EncodedBody {
  chunks: Buffer[];
  bytes: number;
  rows: number;
}

const CHUNK_CHARS = 256 * 1024;
const MAX_DATETIME = '9999-12-31 23:59:59.999999';
const MIN_DATETIME = '0000-01-01 00:00:00';

/**
 * Encodes `ops` against `columns` (the table's mapped columns). Upserts write every column the row holds
 * except `UNCHANGED_TOAST` ones; deletes write the key columns. A row holding a column the mapping doesn't
 * know is refused: writing it without that column would lose data silently.
 */
export function encodeBodies(
  columns: readonly EncodedColumn[],
  ops: readonly WriteOp[],
  maxBytes: number,
): EncodedBody[] {
  const prefixes = columns.map((column) => `${JSON.stringify(column.name)}:`);
  const bodies: EncodedBody[] = [];
  let chunks: Buffer[] = [];
  let pending = '';
  let bytes = 0;
  let rows = 0;

  const closeBody = (): void => {
    chunks.push(Buffer.from(`${pending}]`));
    bodies.push({ chunks, bytes: bytes + 1, rows });
    chunks = [];
    pending = '';
    bytes = 0;
    rows = 0;
  };

  for (const op of ops) {
    const row = op.kind === 'upsert' ? op.row : op.key;
    let text = '{';
    let written = 0;
    for (let i = 0; i < columns.length; i++) {
      const column = columns[i]!;
      if (op.kind === 'delete' && !column.key) continue;
      const value = row[column.name];
      if (value === undefined) {
        if (column.key) throw missingKey(column.name);
        continue;
      }
      if (value === UNCHANGED_TOAST) continue;
      written++;
      text += `${prefixes[i]}${encodeValue(value, column.codec)},`;
    }
    if (op.kind === 'upsert' && written !== countKeys(row)) throw unknownColumns(columns, row);
    text += op.kind === 'upsert' ? '"__op":0}' : '"__op":1}';
    const rowBytes = Buffer.byteLength(text) + 1; // + the leading `[` or `,`
    if (rows > 0 && bytes + rowBytes + 1 > maxBytes) closeBody();
    pending += rows === 0 ? '[' : ',';
    pending += text;
    bytes += rowBytes;
    rows++;
    if (pending.length >= CHUNK_CHARS) {
      chunks.push(Buffer.from(pending));
      pending = '';
    }
  }
  if (rows > 0) closeBody();
  return bodies;
}

/** The JSON text of one value for a column with `codec`. */
export function encodeValue(value: Exclude<ColumnValue, typeof UNCHANGED_TOAST>, codec: ValueCodec): string {
  if (value === null) return 'null';
  switch (codec) {
    case 'plain':
      return JSON.stringify(value);
    case 'json':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'json-array':
      return spliceJsonArray(value);
    case 'text':
      return JSON.stringify(typeof value === 'object' ? JSON.stringify(value) : String(value));
    case 'datetime':
      return JSON.stringify(toDatetime(value));
    case 'date':
      return JSON.stringify(toDate(value));
    case 'datetime-array':
      return JSON.stringify(mapArray(value, toDatetime));
    case 'date-array':
      return JSON.stringify(mapArray(value, toDate));
  }
}

function spliceJsonArray(value: ColumnValue): string {
  if (value === null) return 'null';
  if (!Array.isArray(value)) return typeof value === 'string' ? value : JSON.stringify(value);
  let text = '[';
  for (let i = 0; i < value.length; i++) {
    if (i > 0) text += ',';
    text += spliceJsonArray(value[i]!);
  }
  return `${text}]`;
}

function mapArray(value: ColumnValue, map: (element: ColumnValue) => ColumnValue): ColumnValue {
  return Array.isArray(value) ? value.map((element) => mapArray(element, map)) : map(value);
}

/** PostgreSQL timestamp text (timestamptz in UTC with `+00`) → StarRocks DATETIME text. */
function toDatetime(value: ColumnValue): ColumnValue {
  if (typeof value !== 'string') return value;
  if (value === 'infinity') return MAX_DATETIME;
  if (value === '-infinity') return MIN_DATETIME;
  return value.endsWith('+00') ? value.slice(0, -3) : value.endsWith('+00:00') ? value.slice(0, -6) : value;
}

function toDate(value: ColumnValue): ColumnValue {
  if (value === 'infinity') return MAX_DATETIME.slice(0, 10);
  if (value === '-infinity') return MIN_DATETIME.slice(0, 10);
  return value;
}

/** Columns the row carries a value for (unchanged TOAST columns carry none). */
function countKeys(row: Row): number {
  let count = 0;
  for (const name in row) if (row[name] !== UNCHANGED_TOAST) count++;
  return count;
}

function missingKey(column: string): StarRocksError {
  return new StarRocksError('fatal', `a change is missing primary-key column ${JSON.stringify(column)}`);
}

function unknownColumns(columns: readonly EncodedColumn[], row: Row): StarRocksError {
  const known = new Set(columns.map((column) => column.name));
  const unknown = Object.keys(row).filter((name) => !known.has(name) && row[name] !== UNCHANGED_TOAST);
  return new StarRocksError(
    'fatal',
    `a change holds column(s) ${unknown.map((name) => JSON.stringify(name)).join(', ')} the sink has not mapped: apply the schema change first`,
  );
}
