// The change-event model: what the PostgreSQL source produces and the StarRocks sink consumes. It is the
// only contract between the two, so it is deliberately small and plain (no classes): values are already
// JSON-ready, schemas carry enough type information for the sink's DDL, and LSNs are bigints.

/** A WAL position. PostgreSQL prints it as `X/Y`; see `formatLsn` / `parseLsn`. */
export type Lsn = bigint;

/** A schema-qualified table, spelled exactly as PostgreSQL spells it (no quoting). */
export interface TableRef {
  schema: string;
  name: string;
}

/**
 * A column's PostgreSQL type, resolved by the source: domains are replaced by their base type (with
 * `domain` naming the domain), arrays carry their element type.
 */
export interface PgColumnType {
  /** OID of the (base) type. */
  oid: number;
  /** `pg_type.typname` of the (base) type: `int4`, `numeric`, `timestamptz`, `_text`, `my_enum`… */
  name: string;
  /** `atttypmod`, or -1 when none (numeric precision/scale, varchar length, timestamp precision). */
  modifier: number;
  /** `base` for built-in scalar types, otherwise what kind of user-defined or container type it is. */
  kind: 'base' | 'enum' | 'array' | 'composite' | 'range' | 'multirange' | 'other';
  /** For arrays: the element type. */
  element?: PgColumnType;
  /** When the column was declared with a domain: the domain's name. */
  domain?: string;
}

export interface ColumnSchema {
  name: string;
  type: PgColumnType;
  nullable: boolean;
  /**
   * What rows that existed before the column was added hold, where PostgreSQL filled them without writing
   * WAL (so no change event will ever carry it):
   * - `{ value }`: a constant default (`pg_attribute.atthasmissing`/`attmissingval`), decoded like any value;
   * - `'unknown'`: the column has a default but no missing value (a volatile default rewrote the table, or
   *   the default was set after the column was added): only a copy of the table tells;
   * - absent: those rows hold NULL.
   * Only meaningful when the sink adds the column to a table that already has rows.
   */
  backfill?: { value: ColumnValue } | 'unknown';
}

export interface TableSchema {
  table: TableRef;
  /** Columns in table order (dropped columns excluded). */
  columns: ColumnSchema[];
  /** Names of the replica-identity / primary-key columns, in key order. Never empty for a replicated table. */
  primaryKey: string[];
}

/**
 * A decoded column value, ready for `JSON.stringify`. The source's decoding per type:
 * - bool → boolean; int2, int4, oid, float4, float8 → number (NaN, Infinity, -Infinity → those strings);
 * - int8, numeric, money → string (exact; numeric NaN/Infinity as PostgreSQL spells them);
 * - date → `YYYY-MM-DD`; timestamp → `YYYY-MM-DD HH:MM:SS[.ffffff]`; timestamptz → the same in UTC with
 *   `+00` appended; `infinity` / `-infinity` as those strings; BC dates keep PostgreSQL's ` BC` suffix;
 * - bytea → lowercase hex without the `\x` prefix;
 * - json, jsonb → the JSON text as a string (the sink splices it unparsed);
 * - arrays → JS arrays of their element's decoding (NULL elements → null);
 * - everything else (text, varchar, uuid, enums, inet, interval, time, ranges, xml, …) → PostgreSQL's text.
 * `UNCHANGED_TOAST` marks an unchanged TOASTed column in an update: it must never be written as NULL.
 */
export type ColumnValue = string | number | boolean | null | ColumnValue[] | typeof UNCHANGED_TOAST;

/** Marks a TOASTed column an UPDATE did not change: the sink updates the other columns only. */
export const UNCHANGED_TOAST: unique symbol = Symbol.for('sluice.unchanged-toast');

/** Column name → value. Columns follow the table's schema order. */
export type Row = Record<string, ColumnValue>;

interface EventBase {
  /** LSN of the change (for DML: the transaction's commit LSN is in the surrounding `commit` event). */
  lsn: Lsn;
}

export interface BeginEvent extends EventBase {
  kind: 'begin';
  xid: number;
  /** The transaction's commit LSN (final LSN), known at BEGIN for non-streamed transactions. */
  commitLsn: Lsn;
  commitTime: Date;
}

export interface CommitEvent extends EventBase {
  kind: 'commit';
  xid: number;
  /** Everything up to and including this LSN belongs to finished transactions: the unit of acknowledgement. */
  commitLsn: Lsn;
  /** The LSN just past the commit record (what PostgreSQL reports as `end_lsn`). */
  endLsn: Lsn;
  commitTime: Date;
}

export interface InsertEvent extends EventBase {
  kind: 'insert';
  table: TableRef;
  row: Row;
}

export interface UpdateEvent extends EventBase {
  kind: 'update';
  table: TableRef;
  /** The new row; may hold `UNCHANGED_TOAST` values. */
  row: Row;
  /** The old key when the update changed the primary key (or the full old row under REPLICA IDENTITY FULL). */
  oldKey?: Row;
}

export interface DeleteEvent extends EventBase {
  kind: 'delete';
  table: TableRef;
  /** The key columns of the deleted row (all columns under REPLICA IDENTITY FULL). */
  key: Row;
}

export interface TruncateEvent extends EventBase {
  kind: 'truncate';
  tables: TableRef[];
  cascade: boolean;
  restartIdentity: boolean;
}

/** A table's schema as of this point in the stream: emitted on first sight and on every change. */
export interface SchemaEvent extends EventBase {
  kind: 'schema';
  schema: TableSchema;
  /** Difference from the previous schema of this table (empty on first sight). */
  added: ColumnSchema[];
  dropped: string[];
  retyped: ColumnSchema[];
}

/** A logical decoding message (`pg_logical_emit_message`), e.g. Sluice's own heartbeats and watermarks. */
export interface MessageEvent extends EventBase {
  kind: 'message';
  transactional: boolean;
  prefix: string;
  content: Buffer;
}

export type ChangeEvent =
  | BeginEvent
  | CommitEvent
  | InsertEvent
  | UpdateEvent
  | DeleteEvent
  | TruncateEvent
  | SchemaEvent
  | MessageEvent;

/** Formats an LSN as PostgreSQL does: `16/B374D848`. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Parses PostgreSQL's `X/Y` LSN notation; throws on anything else. */
export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) throw new RangeError(`not an LSN: ${JSON.stringify(text.slice(0, 40))}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** `schema.name` with both parts quoted as PostgreSQL would need them, for messages and SQL. */
export function qualifiedName(table: TableRef): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}

/** Quotes a PostgreSQL identifier (always, so case and Unicode survive). */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new RangeError('identifier contains a NUL byte');
  return `"${name.replaceAll('"', '""')}"`;
}
