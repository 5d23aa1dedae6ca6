// PostgreSQL → StarRocks column types, after Flink CDC's mapping (see shared/reference/starrocks.md), and
// the codec that turns the source's decoded value into the JSON the mapped column loads from.
//
// Choices where the reference allows variations, and why:
// - varchar(n)/bpchar(n) → VARCHAR(min(4n, 1048576)): StarRocks counts bytes; 4 covers any UTF-8 character.
// - text and other unbounded text → VARCHAR(1048576) (the largest VARCHAR), not STRING (65533 bytes).
// - numeric without precision, or with p > 38 or a negative scale → VARCHAR: lossless, where DECIMAL(38, s)
//   would round. money → VARCHAR: PostgreSQL's money text carries a currency format.
// - timestamptz → DATETIME in UTC (the source already normalises it; the codec drops the `+00`).
//   ±infinity → the DATETIME/DATE range ends, since StarRocks has no infinity.
// - json/jsonb → JSON, the text spliced unparsed. Arrays → ARRAY<element> when the element maps to a
//   scalar StarRocks type (one dimension; StarRocks filters a multi-dimensional value, so it fails loudly);
//   json[]/jsonb[] → JSON holding the array.
// - Key columns must be BOOLEAN, integers, VARCHAR, DATE or DATETIME: any other mapped key type becomes
//   VARCHAR carrying PostgreSQL's text (floats, numerics, json, bytea as hex, arrays as JSON text…), at most
//   128 bytes because StarRocks caps an encoded primary key at 128 bytes.
import type { PgColumnType } from '../../change-event.ts';

/** How a decoded value becomes JSON for its StarRocks column. */
export type ValueCodec =
  /** `JSON.stringify` the value as is. */
  | 'plain'
  /** The value is JSON text (json/jsonb): splice it unparsed. */
  | 'json'
  /** An array of JSON texts (json[]/jsonb[]): splice each element. */
  | 'json-array'
  /** Anything → its text, as a JSON string (numbers and booleans printed, arrays as JSON text). */
  | 'text'
  /** A timestamp/timestamptz string → StarRocks DATETIME text. */
  | 'datetime'
  /** A date string → StarRocks DATE text (infinities clamped). */
  | 'date'
  /** Arrays of timestamps / dates: element-wise. */
  | 'datetime-array'
  | 'date-array';

export interface MappedType {
  /** The StarRocks column type as written in DDL, e.g. `DECIMAL(10, 2)`, `ARRAY<INT>`. */
  sql: string;
  codec: ValueCodec;
}

const MAX_VARCHAR = 1_048_576;
const MAX_KEY_VARCHAR = 128;
const KEY_TYPES = /^(BOOLEAN|TINYINT|SMALLINT|INT|BIGINT|LARGEINT|DATE|DATETIME|VARCHAR\(\d+\))$/;

/** Maps a column's PostgreSQL type; `key` for primary-key columns (StarRocks refuses some key types). */
export function mapColumnType(type: PgColumnType, key = false): MappedType {
  const mapped = mapType(type);
  if (!key || KEY_TYPES.test(mapped.sql)) {
    if (key && mapped.sql.startsWith('VARCHAR(')) return { sql: keyVarchar(mapped.sql), codec: mapped.codec };
    return mapped;
  }
  // bytea's codec already yields hex text; everything else prints as PostgreSQL's text (or JSON text).
  return { sql: `VARCHAR(${MAX_KEY_VARCHAR})`, codec: 'text' };
}

function keyVarchar(sql: string): string {
  const length = Number(/\d+/.exec(sql)?.[0] ?? MAX_KEY_VARCHAR);
  return `VARCHAR(${Math.min(length, MAX_KEY_VARCHAR)})`;
}

function varchar(bytes: number): MappedType {
  return { sql: `VARCHAR(${Math.max(1, Math.min(bytes, MAX_VARCHAR))})`, codec: 'plain' };
}

const TEXT: MappedType = varchar(MAX_VARCHAR);

function mapType(type: PgColumnType): MappedType {
  if (type.kind === 'array') return mapArray(type.element);
  if (type.kind === 'enum') return varchar(64 * 4);
  if (type.kind !== 'base') return { ...TEXT, codec: 'text' }; // composite, range, multirange, other
  const modifier = type.modifier;
  switch (type.name) {
    case 'bool':
      return { sql: 'BOOLEAN', codec: 'plain' };
    case 'int2':
      return { sql: 'SMALLINT', codec: 'plain' };
    case 'int4':
      return { sql: 'INT', codec: 'plain' };
    case 'int8':
    case 'oid': // unsigned 32-bit: INT would overflow
      return { sql: 'BIGINT', codec: 'plain' };
    case 'float4':
      return { sql: 'FLOAT', codec: 'plain' };
    case 'float8':
      return { sql: 'DOUBLE', codec: 'plain' };
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
    case 'text':
    case 'xml':
    case 'tsvector':
    case 'tsquery':
    case 'path':
    case 'polygon':
    case 'citext':
      return TEXT;
    case 'bytea':
      return { sql: 'VARBINARY', codec: 'plain' };
    case 'date':
      return { sql: 'DATE', codec: 'date' };
    case 'timestamp':
    case 'timestamptz':
      return { sql: 'DATETIME', codec: 'datetime' };
    case 'time':
    case 'timetz':
      return varchar(32);
    case 'interval':
      return varchar(128);
    case 'json':
    case 'jsonb':
      return { sql: 'JSON', codec: 'json' };
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
      // Ranges, extension types and anything newer: PostgreSQL's text is always a faithful copy.
      return { ...TEXT, codec: 'text' };
  }
}

function mapNumeric(modifier: number): MappedType {
  if (modifier < 4) return varchar(1024); // unconstrained: any precision, any scale
  const packed = modifier - 4;
  const precision = (packed >> 16) & 0xffff;
  const scale = ((packed & 0x7ff) ^ 1024) - 1024; // PostgreSQL 15+ allows negative scales
  if (precision > 38 || scale < 0 || scale > precision) return varchar(1024);
  return { sql: `DECIMAL(${precision}, ${scale})`, codec: 'plain' };
}

const ARRAY_ELEMENT_CODECS: Partial<Record<ValueCodec, ValueCodec>> = {
  plain: 'plain',
  datetime: 'datetime-array',
  date: 'date-array',
};

function mapArray(element: PgColumnType | undefined): MappedType {
  if (!element) return { sql: 'JSON', codec: 'plain' };
  const inner = mapType(element);
  if (inner.codec === 'json') return { sql: 'JSON', codec: 'json-array' };
  const codec = ARRAY_ELEMENT_CODECS[inner.codec];
  if (codec === undefined || inner.sql.startsWith('ARRAY<')) return { sql: 'JSON', codec: 'plain' };
  // VARBINARY elements travel as hex text like bytea itself; ARRAY<VARBINARY> is not loadable from JSON.
  const sql = inner.sql === 'VARBINARY' ? `VARCHAR(${MAX_VARCHAR})` : inner.sql;
  return { sql: `ARRAY<${sql}>`, codec };
}
