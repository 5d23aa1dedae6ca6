// Stream Load bodies: a JSON array of row objects (sent with `strip_outer_array: true`), each carrying
// `__op` (0 upsert, 1 delete). Every value is checked against its column's rule first (representable.ts):
// one StarRocks can't hold exactly stops the write naming table, column, key and value, unless the job
// chose NULL or the nearest value for that column, which is then counted. The hot path appends to one
// string and turns it into a Buffer every CHUNK_CHARS characters, so a body is a short list of large
// Buffers, never one object per row; a body is closed at `maxBytes` and the next rows start a new one.
import { type ColumnValue, type Row, UNCHANGED_TOAST } from '../../change-event.ts';
import type { UnrepresentablePolicy } from './column-choice.ts';
import {
  jsonForStarRocks,
  postgresText,
  shortText,
  type Unrepresentable,
  unrepresentable,
} from './representable.ts';
import { StarRocksError } from './starrocks-error.ts';
import type { ValueRule } from './type-map.ts';

/**
 * One change for the sink: an upsert of a full (or TOAST-partial) row, or a delete by key. `refetch` marks
 * a row whose key moved while TOAST columns were unchanged: its missing values must be read from the source
 * before it reaches the sink.
 */
export type WriteOp = { kind: 'upsert'; row: Row; refetch?: boolean } | { kind: 'delete'; key: Row };

export interface EncodedColumn {
  name: string;
  rule: ValueRule;
  key: boolean;
  /** What the job chose for values the rule refuses (default `fail`). */
  policy?: UnrepresentablePolicy;
  /** StarRocks type in DDL, for messages. */
  sql?: string;
}

export interface EncodedBody {
  chunks: Buffer[];
  bytes: number;
  rows: number;
}

/** Where the rows go, for messages: `datasource` and the source table (`schema.table`). */
export interface EncodeContext {
  datasource: string;
  table: string;
}

export interface EncodedLoad {
  bodies: EncodedBody[];
  /** Values loaded as NULL / as the nearest value, by the job's choice. */
  nulled: number;
  clamped: number;
}

const CHUNK_CHARS = 256 * 1024;
/** StarRocks' cap on an encoded primary key (be/src/storage/primary_key_encoder.cpp). */
export const MAX_KEY_BYTES = 128;

/** The JSON field a column travels under: VARBINARY columns go as hex under a name `hex_decode_binary` reads. */
export function loadField(column: EncodedColumn, index: number): string {
  return column.rule.kind === 'binary' ? `__sluice_hex_${index}` : column.name;
}

/**
 * Encodes `ops` against `columns` (the table's mapped columns). Upserts write every column the row holds
 * except `UNCHANGED_TOAST` ones; deletes write the key columns. A row holding a column the mapping doesn't
 * know is refused: writing it without that column would lose data silently.
 */
export function encodeBodies(
  columns: readonly EncodedColumn[],
  ops: readonly WriteOp[],
  maxBytes: number,
  context: EncodeContext = { datasource: 'StarRocks', table: 'table' },
): EncodedLoad {
  const prefixes = columns.map((column, index) => `${JSON.stringify(loadField(column, index))}:`);
  const keyColumns = columns.filter((column) => column.key);
  // Fixed-width keys (at most 16 bytes a column) can't reach the limit: only VARCHAR keys are measured.
  const measureKeys = keyColumns.some(
    (column) => column.sql === undefined || FIXED_WIDTHS[column.sql] === undefined,
  );
  const result: EncodedLoad = { bodies: [], nulled: 0, clamped: 0 };
  let chunks: Buffer[] = [];
  let pending = '';
  let bytes = 0;
  let rows = 0;

  const closeBody = (): void => {
    chunks.push(Buffer.from(`${pending}]`));
    result.bodies.push({ chunks, bytes: bytes + 1, rows });
    chunks = [];
    pending = '';
    bytes = 0;
    rows = 0;
  };

  for (const op of ops) {
    const row = op.kind === 'upsert' ? op.row : op.key;
    if (measureKeys) checkKey(keyColumns, row, context);
    let text = '{';
    let written = 0;
    for (let i = 0; i < columns.length; i++) {
      const column = columns[i]!;
      if (op.kind === 'delete' && !column.key) continue;
      let value = row[column.name];
      if (value === undefined) {
        if (column.key) throw missingKey(column.name);
        continue;
      }
      if (value === UNCHANGED_TOAST) continue;
      written++;
      const problem = unrepresentable(value, column.rule);
      if (problem) {
        const policy = column.key ? 'fail' : (column.policy ?? 'fail');
        if (policy === 'null') {
          value = null;
          result.nulled++;
        } else if (policy === 'clamp' && problem.clamped !== undefined) {
          value = problem.clamped as Exclude<ColumnValue, symbol>;
          result.clamped++;
        } else throw unrepresentableError(context, column, keyColumns, row, value, problem);
      }
      text += `${prefixes[i]}${encodeValue(value, column.rule)},`;
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
  return result;
}

/** The JSON text of one value (already checked) for a column with `rule`. */
export function encodeValue(value: Exclude<ColumnValue, typeof UNCHANGED_TOAST>, rule: ValueRule): string {
  if (value === null) return 'null';
  switch (rule.kind) {
    case 'boolean':
    case 'integer':
    case 'decimal':
    case 'binary':
    case 'json-value':
      return JSON.stringify(value);
    case 'float': {
      if (typeof value !== 'number') return JSON.stringify(value);
      // JSON.stringify(-0) is "0": StarRocks would store positive zero.
      if (Object.is(value, -0)) return '-0.0';
      // float4's shortest text (3.4028235e+38) read as a double lies beyond the largest float, and
      // StarRocks' double→float cast refuses it: send the float's exact value.
      return JSON.stringify(rule.bits === 32 ? Math.fround(value) : value);
    }
    case 'varchar':
      return JSON.stringify(postgresText(value));
    case 'date':
    case 'datetime':
      return JSON.stringify(calendarText(value));
    case 'json':
      return typeof value === 'string' ? jsonForStarRocks(value) : JSON.stringify(value);
    case 'json-array':
      return spliceJsonArray(value);
    case 'array': {
      if (!Array.isArray(value)) return JSON.stringify(value);
      let text = '[';
      for (let i = 0; i < value.length; i++) {
        if (i > 0) text += ',';
        text += encodeValue(value[i] as Exclude<ColumnValue, symbol>, rule.element);
      }
      return `${text}]`;
    }
  }
}

function spliceJsonArray(value: ColumnValue): string {
  if (value === null) return 'null';
  if (!Array.isArray(value))
    return typeof value === 'string' ? jsonForStarRocks(value) : JSON.stringify(value);
  let text = '[';
  for (let i = 0; i < value.length; i++) {
    if (i > 0) text += ',';
    text += spliceJsonArray(value[i]!);
  }
  return `${text}]`;
}

/** PostgreSQL date/timestamp text (timestamptz in UTC with `+00`) → StarRocks DATE/DATETIME text. */
function calendarText(value: ColumnValue): ColumnValue {
  if (typeof value !== 'string') return value;
  return value.endsWith('+00') ? value.slice(0, -3) : value.endsWith('+00:00') ? value.slice(0, -6) : value;
}

/**
 * StarRocks' encoded primary key is at most 128 bytes: fixed-width types take their width, a VARCHAR its
 * bytes, and every VARCHAR but the last of a composite key two more (its terminator).
 */
function checkKey(keyColumns: readonly EncodedColumn[], row: Row, context: EncodeContext): void {
  let bytes = 0;
  for (let i = 0; i < keyColumns.length; i++) {
    const column = keyColumns[i]!;
    const value = row[column.name];
    if (value === undefined || value === null || value === UNCHANGED_TOAST) continue;
    bytes += keyWidth(column, value, i === keyColumns.length - 1);
  }
  if (bytes <= MAX_KEY_BYTES) return;
  throw new StarRocksError(
    'operator',
    `${context.datasource}: ${context.table}, key ${keyText(keyColumns, row)}: the primary key is ${bytes} bytes encoded; StarRocks holds at most ${MAX_KEY_BYTES}`,
    { solution: `shorten the key values in PostgreSQL, or leave ${context.table} out of the job` },
  );
}

const FIXED_WIDTHS: Record<string, number> = {
  BOOLEAN: 1,
  TINYINT: 1,
  SMALLINT: 2,
  INT: 4,
  BIGINT: 8,
  LARGEINT: 16,
  DATE: 4,
  DATETIME: 8,
};

function keyWidth(column: EncodedColumn, value: Exclude<ColumnValue, symbol>, last: boolean): number {
  const fixed = column.sql === undefined ? undefined : FIXED_WIDTHS[column.sql];
  if (fixed !== undefined) return fixed;
  if (column.rule.kind !== 'varchar') return 8;
  return Buffer.byteLength(postgresText(value)) + (last ? 0 : 2);
}

function keyText(keyColumns: readonly EncodedColumn[], row: Row): string {
  const key: Record<string, ColumnValue> = {};
  for (const column of keyColumns) key[column.name] = row[column.name] ?? null;
  const text = JSON.stringify(key);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function unrepresentableError(
  context: EncodeContext,
  column: EncodedColumn,
  keyColumns: readonly EncodedColumn[],
  row: Row,
  value: ColumnValue,
  problem: Unrepresentable,
): StarRocksError {
  const ref = `${context.table}.${column.name}`;
  const type = column.sql ? `StarRocks ${column.sql}` : 'StarRocks';
  const message = `${context.datasource}: ${context.table} column ${JSON.stringify(column.name)} (${type}), key ${keyText(keyColumns, row)}: the value ${shortText(value)} ${problem.reason}`;
  const choices = column.key
    ? `load the key as PostgreSQL's text with --column-as ${ref}=text (a new job: a key's type can't change)`
    : `keep it exactly as PostgreSQL's text with --column-as ${ref}=text, or choose --on-unrepresentable ${ref}=null${problem.clamped === undefined ? '' : ' or =clamp'} (counted in job status), or leave the column out with --exclude-column ${ref}`;
  return new StarRocksError('operator', message, { solution: choices });
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
