// PostgreSQL → StarRocks column types (the README's "Types" table is this file in prose), and the rule each
// mapped column's values follow: what StarRocks holds exactly, and how a value travels in a JSON Stream Load.
//
// Choices, and why:
// - varchar(n)/bpchar(n) → VARCHAR(min(4n, 1048576)): StarRocks counts bytes; 4 covers any UTF-8 character.
// - text and other unbounded text → VARCHAR(1048576) (the largest VARCHAR), not STRING (65533 bytes).
// - numeric without precision, or with p > 38 or a negative scale → VARCHAR: lossless, where DECIMAL(38, s)
//   would round. money → VARCHAR: PostgreSQL's money text carries a currency format.
// - bytea → VARBINARY, travelling as hex and decoded by StarRocks' `hex_decode_binary` in the load's
//   `columns` header: a JSON string loaded into VARBINARY is stored as its raw bytes (StarRocks
//   be/src/exprs/cast_expr.cpp, string→binary is a copy), so sending hex alone would store the hex text.
// - timestamptz → DATETIME in UTC (the source normalises it). Dates outside 0000-01-01…9999-12-31, BC
//   dates and ±infinity have no StarRocks form: they are unrepresentable (see representable.ts).
// - json/jsonb → JSON. Arrays → ARRAY<element> when the element maps to a scalar type (one dimension);
//   json[]/jsonb[] and arrays of text-only types StarRocks has no ARRAY form for → JSON holding the array.
// - Key columns must be BOOLEAN, integers, VARCHAR, DATE or DATETIME: any other key becomes VARCHAR(128)
//   holding PostgreSQL's text (floats, numerics, json, bytea as hex, arrays…): StarRocks caps an encoded
//   primary key at 128 bytes.
// - A column the job marks `text` is VARCHAR holding PostgreSQL's text of the value, whatever its type.
import type { PgColumnType } from '../../change-event.ts';
import type { ColumnTarget } from './column-choice.ts';

/** What a mapped column's values must be to arrive exactly, and how they are written in the load's JSON. */
export type ValueRule =
  | { kind: 'boolean' }
  | { kind: 'integer' }
  /** float4 (`bits: 32`) or float8: NaN and ±Infinity as StarRocks spells them, -0 kept. */
  | { kind: 'float'; bits: 32 | 64 }
  | { kind: 'decimal'; precision: number; scale: number }
  /** PostgreSQL's text of the value (numbers, booleans and arrays printed as PostgreSQL prints them). */
  | { kind: 'varchar'; bytes: number }
  /** bytea (lowercase hex from the source) → VARBINARY through `hex_decode_binary`. */
  | { kind: 'binary'; bytes: number }
  | { kind: 'date' }
  | { kind: 'datetime' }
  /**
   * JSON text spliced unparsed (checked for what StarRocks' JSON can't hold); `duplicateKeys` for `json`,
   * whose text may repeat a key (jsonb keeps one).
   */
  | { kind: 'json'; duplicateKeys: boolean }
  /** An array of JSON texts (json[]/jsonb[]) → one JSON array. */
  | { kind: 'json-array' }
  /** Any value as JSON (arrays of text-only element types). */
  | { kind: 'json-value' }
  /** One-dimensional ARRAY<element>. */
  | { kind: 'array'; element: ValueRule };

export interface MappedType {
  /** The StarRocks column type as written in DDL, e.g. `DECIMAL(10, 2)`, `ARRAY<INT>`. */
  sql: string;
  rule: ValueRule;
}

export const MAX_VARCHAR = 1_048_576;
const MAX_KEY_VARCHAR = 128;
const KEY_TYPES = /^(BOOLEAN|TINYINT|SMALLINT|INT|BIGINT|LARGEINT|DATE|DATETIME|VARCHAR\(\d+\))$/;

/**
 * Maps a column's PostgreSQL type; `key` for primary-key columns (StarRocks refuses some key types);
 * `target` is the job's choice for the column.
 */
export function mapColumnType(type: PgColumnType, key = false, target: ColumnTarget = 'default'): MappedType {
  if (target === 'text') return key ? varchar(MAX_KEY_VARCHAR) : TEXT;
  const mapped = mapType(type);
  if (!key) return mapped;
  if (mapped.rule.kind === 'varchar') return varchar(Math.min(mapped.rule.bytes, MAX_KEY_VARCHAR));
  if (KEY_TYPES.test(mapped.sql)) return mapped;
  return varchar(MAX_KEY_VARCHAR);
}

function varchar(bytes: number): MappedType {
  const length = Math.max(1, Math.min(bytes, MAX_VARCHAR));
  return { sql: `VARCHAR(${length})`, rule: { kind: 'varchar', bytes: length } };
}

const TEXT: MappedType = varchar(MAX_VARCHAR);

function mapType(type: PgColumnType): MappedType {
  if (type.kind === 'array') return mapArray(type.element);
  if (type.kind === 'enum') return varchar(64 * 4);
  if (type.kind !== 'base') return TEXT; // composite, range, multirange, other: PostgreSQL's text
  const modifier = type.modifier;
  switch (type.name) {
    case 'bool':
      return { sql: 'BOOLEAN', rule: { kind: 'boolean' } };
    case 'int2':
      return { sql: 'SMALLINT', rule: { kind: 'integer' } };
    case 'int4':
      return { sql: 'INT', rule: { kind: 'integer' } };
    case 'int8':
    case 'oid': // unsigned 32-bit: INT would overflow
      return { sql: 'BIGINT', rule: { kind: 'integer' } };
    case 'float4':
      return { sql: 'FLOAT', rule: { kind: 'float', bits: 32 } };
    case 'float8':
      return { sql: 'DOUBLE', rule: { kind: 'float', bits: 64 } };
    case 'numeric':
      return mapNumeric(modifier);
    case 'money':
      return varchar(64);
    case 'varchar':
    case 'bpchar':
      return modifier > 4 ? varchar((modifier - 4) * 4) : TEXT;
    case 'char':
      return varchar(4);
    case 'name':
      return varchar(64);
    case 'bytea':
      return { sql: `VARBINARY(${MAX_VARCHAR})`, rule: { kind: 'binary', bytes: MAX_VARCHAR } };
    case 'date':
      return { sql: 'DATE', rule: { kind: 'date' } };
    case 'timestamp':
    case 'timestamptz':
      return { sql: 'DATETIME', rule: { kind: 'datetime' } };
    case 'time':
    case 'timetz':
      return varchar(32);
    case 'interval':
      return varchar(128);
    case 'json':
      return { sql: 'JSON', rule: { kind: 'json', duplicateKeys: true } };
    case 'jsonb':
      return { sql: 'JSON', rule: { kind: 'json', duplicateKeys: false } };
    case 'uuid':
      return varchar(36);
    case 'inet':
    case 'cidr':
      return varchar(64);
    case 'macaddr':
      return varchar(17);
    case 'macaddr8':
      return varchar(23);
    case 'bit':
    case 'varbit':
      return modifier > 0 ? varchar(modifier) : TEXT;
    case 'point':
    case 'line':
    case 'lseg':
    case 'box':
    case 'circle':
      return varchar(512);
    case 'pg_lsn':
      return varchar(32);
    default:
      // text, xml, tsvector, paths, extension types and anything newer: PostgreSQL's text is a faithful copy.
      return TEXT;
  }
}

function mapNumeric(modifier: number): MappedType {
  if (modifier < 4) return TEXT; // unconstrained: any precision (131,072 digits), any scale
  const packed = modifier - 4;
  const precision = (packed >> 16) & 0xffff;
  const scale = ((packed & 0x7ff) ^ 1024) - 1024; // PostgreSQL 15+ allows negative scales
  if (precision > 38 || scale < 0 || scale > precision) return TEXT;
  return { sql: `DECIMAL(${precision}, ${scale})`, rule: { kind: 'decimal', precision, scale } };
}

const ARRAY_ELEMENTS = new Set<ValueRule['kind']>([
  'boolean',
  'integer',
  'float',
  'decimal',
  'varchar',
  'date',
  'datetime',
]);

function mapArray(element: PgColumnType | undefined): MappedType {
  if (!element) return { sql: 'JSON', rule: { kind: 'json-value' } };
  const inner = mapType(element);
  if (inner.rule.kind === 'json') return { sql: 'JSON', rule: { kind: 'json-array' } };
  // bytea elements travel as hex text: ARRAY<VARBINARY> can't be decoded from hex in a load.
  if (inner.rule.kind === 'binary')
    return { sql: `ARRAY<VARCHAR(${MAX_VARCHAR})>`, rule: { kind: 'array', element: TEXT.rule } };
  if (!ARRAY_ELEMENTS.has(inner.rule.kind)) return { sql: 'JSON', rule: { kind: 'json-value' } };
  return { sql: `ARRAY<${inner.sql}>`, rule: { kind: 'array', element: inner.rule } };
}
