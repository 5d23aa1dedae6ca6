// Re-reading current rows by key. An UPDATE that moves a row's key while a TOASTed column stays unchanged
// (REPLICA IDENTITY DEFAULT) carries neither the old values nor the unchanged new one: the pipeline fetches
// the row as the source holds it now. Keys arrive decoded (change-event.ts ColumnValue) and go back to
// PostgreSQL as text, cast to each key column's type; rows come back in text format and are decoded by the
// same decoders as the stream and the snapshot (the connection has the same session settings).
import type pg from 'pg';
import type { ColumnValue, PgColumnType, Row, TableRef } from '../../change-event.ts';
import { qualifiedName, quoteIdent, UNCHANGED_TOAST } from '../../change-event.ts';
import { SourceError } from './source-error.ts';
import { loadTableSchema, type TypeCatalog } from './source-schema.ts';
import { decoderFor } from './value-decoder.ts';

export interface ReadRowsOptions {
  /** Keys per query. Default 500 (each row may carry MBs of TOASTed data). */
  batchKeys?: number;
}

/** Returns every value as the text PostgreSQL sent (no pg type parsing: the source's decoders do that). */
const rawText = { getTypeParser: () => (value: string) => value };

/**
 * The current rows of `table` whose key columns equal one of `keys`: each holds the key columns (the names
 * the keys carry, in the same order, identical in every key) and `columns`, decoded as the stream decodes
 * them. Keys that match no row are left out; duplicate keys yield the row once. Order is unspecified.
 */
export async function readRows(
  client: pg.Client,
  types: TypeCatalog,
  table: TableRef,
  keys: readonly Row[],
  columns: readonly string[],
  options: ReadRowsOptions = {},
): Promise<Row[]> {
  if (keys.length === 0) return [];
  const keyNames = Object.keys(keys[0]!);
  if (keyNames.length === 0) throw new SourceError('config', 'readRows needs keys with at least one column');
  for (const key of keys) {
    const names = Object.keys(key);
    if (names.length !== keyNames.length || keyNames.some((name) => !(name in key)))
      throw new SourceError('config', `readRows keys must all name the columns ${keyNames.join(', ')}`);
  }

  const { schema, details } = await loadTableSchema(client, types, table);
  const typeOf = new Map(schema.columns.map((column) => [column.name, column.type]));
  const wanted = [...keyNames, ...columns.filter((name) => !keyNames.includes(name))];
  for (const name of wanted)
    if (!typeOf.has(name))
      throw new SourceError('table', `table ${qualifiedName(table)} has no column ${quoteIdent(name)}`);
  const decoders = wanted.map((name) => decoderFor(typeOf.get(name)!));

  // The key columns' declared types (with modifier: char(n) and bit(n) need it) as the server spells them.
  const declared = await client.query<{ name: string; type: string }>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
       from pg_attribute a where a.attrelid = $1 and a.attname = any($2::text[])`,
    [details.oid, keyNames],
  );
  const castTo = new Map(declared.rows.map((row) => [row.name, row.type]));

  const sql =
    `select ${wanted.map(quoteIdent).join(', ')} from ${qualifiedName(table)}` +
    ` where (${keyNames.map(quoteIdent).join(', ')}) in` +
    ` (select ${keyNames.map((name, index) => `k.c${index}::${castTo.get(name)}`).join(', ')}` +
    ` from unnest(${keyNames.map((_, index) => `$${index + 1}::text[]`).join(', ')})` +
    ` as k(${keyNames.map((_, index) => `c${index}`).join(', ')}))`;

  const batchKeys = Math.max(1, options.batchKeys ?? 500);
  const out: Row[] = [];
  for (let start = 0; start < keys.length; start += batchKeys) {
    const batch = keys.slice(start, start + batchKeys);
    const values = keyNames.map((name) => {
      const type = typeOf.get(name)!;
      return batch.map((key) => keyText(key[name] as ColumnValue, type, name));
    });
    const result = await client.query<unknown[]>({ text: sql, values, rowMode: 'array', types: rawText });
    for (const fields of result.rows) {
      const row: Row = {};
      for (let index = 0; index < wanted.length; index++) {
        const text = fields[index] as string | null;
        row[wanted[index]!] = text === null ? null : decoders[index]!(text);
      }
      out.push(row);
    }
  }
  return out;
}

/**
 * A decoded value back in PostgreSQL's text input form for `type` (the inverse of value-decoder.ts): what
 * the decoder left as text is text already; bytea regains its `\x`, booleans and numbers are spelled out,
 * arrays become array literals.
 */
export function keyText(value: ColumnValue, type: PgColumnType, column: string): string | null {
  if (value === null) return null;
  if (value === UNCHANGED_TOAST)
    throw new SourceError('config', `key column ${column} holds an unchanged TOAST marker, not a value`);
  if (Array.isArray(value)) {
    if (type.kind !== 'array' || !type.element)
      throw new SourceError('config', `key column ${column} is not an array, but its value is`);
    const element = type.element;
    const delimiter = element.name === 'box' ? ';' : ',';
    const literal = (items: ColumnValue[]): string =>
      `{${items
        .map((item) => {
          if (Array.isArray(item)) return literal(item);
          const text = keyText(item, element, column);
          return text === null ? 'NULL' : `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
        })
        .join(delimiter)}}`;
    return literal(value);
  }
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number') return String(value);
  if (type.kind === 'base' && type.name === 'bytea') return `\\x${value}`;
  return value;
}
