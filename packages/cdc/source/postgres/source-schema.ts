// Catalog queries: table schemas (columns with resolved types, key), type resolution for pgoutput
// Relation messages, and the schema diff that becomes a SchemaEvent. All SQL is parameterised; names are
// never spliced into queries here.
import type pg from 'pg';
import type { ColumnSchema, ColumnValue, PgColumnType, TableRef, TableSchema } from '../../change-event.ts';
import { qualifiedName } from '../../change-event.ts';
import { SourceError } from './source-error.ts';
import { decoderFor, parseArray } from './value-decoder.ts';

interface TypeRow {
  oid: number;
  name: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  type: string;
  element: number;
  baseType: number;
  baseModifier: number;
  isArray: boolean;
}

/** Below this OID, objects come with PostgreSQL itself (FirstNormalObjectId). */
const firstUserOid = 16384;

/** Resolves type OIDs (domains to their base, arrays to their element) with a per-connection cache. */
export class TypeCatalog {
  readonly #rows = new Map<number, TypeRow>();

  /** OIDs among `oids` not yet loaded. */
  missing(oids: Iterable<number>): number[] {
    const missing: number[] = [];
    for (const oid of oids) if (!this.#rows.has(oid)) missing.push(oid);
    return missing;
  }

  /** Loads `oids` and, transitively, their element and base types. */
  async load(client: pg.Client, oids: Iterable<number>): Promise<void> {
    let wanted = this.missing(new Set(oids));
    while (wanted.length > 0) {
      const { rows } = await client.query<{
        oid: number;
        typname: string;
        typtype: string;
        typelem: number;
        typbasetype: number;
        typtypmod: number;
        is_array: boolean;
      }>(
        `select t.oid::int4 as oid, t.typname, t.typtype, t.typelem::int4 as typelem,
                t.typbasetype::int4 as typbasetype, t.typtypmod,
                exists (select 1 from pg_type e where e.oid = t.typelem and e.typarray = t.oid) as is_array
           from pg_type t where t.oid = any($1::oid[])`,
        [wanted],
      );
      const next = new Set<number>();
      for (const row of rows) {
        this.#rows.set(row.oid, {
          oid: row.oid,
          name: row.typname,
          type: row.typtype,
          element: row.typelem,
          baseType: row.typbasetype,
          baseModifier: row.typtypmod,
          isArray: row.is_array,
        });
        if (row.is_array && row.typelem) next.add(row.typelem);
        if (row.typtype === 'd' && row.typbasetype) next.add(row.typbasetype);
      }
      for (const oid of wanted)
        if (!this.#rows.has(oid)) throw new SourceError('protocol', `type ${oid} is not in pg_type`);
      wanted = this.missing(next);
    }
  }

  /** The resolved type of a column declared with `oid` and `modifier` (loaded before). */
  resolve(oid: number, modifier: number): PgColumnType {
    const row = this.#rows.get(oid);
    if (!row) throw new SourceError('protocol', `type ${oid} was not loaded`);
    if (row.type === 'd') {
      const base = this.resolve(row.baseType, modifier >= 0 ? modifier : row.baseModifier);
      return { ...base, domain: row.name };
    }
    if (row.isArray) {
      return {
        oid,
        name: row.name,
        modifier,
        kind: 'array',
        element: this.resolve(row.element, modifier),
      };
    }
    return { oid, name: row.name, modifier, kind: kindOf(row) };
  }
}

function kindOf(row: TypeRow): PgColumnType['kind'] {
  switch (row.type) {
    case 'b':
      return row.oid < firstUserOid ? 'base' : 'other';
    case 'e':
      return 'enum';
    case 'c':
      return 'composite';
    case 'r':
      return 'range';
    case 'm':
      return 'multirange';
    default:
      return 'other';
  }
}

/** What the catalog says about a table that a pgoutput Relation message does not carry. */
export interface TableDetails {
  oid: number;
  table: TableRef;
  /** pg_class.relreplident: d default (primary key), n nothing, f full, i index. */
  replicaIdentity: string;
  columns: CatalogColumn[];
  /** The primary key, or the replica-identity index's columns, in key order; empty when neither. */
  key: string[];
}

/** One column as pg_attribute (and pg_attrdef) describe it. */
export interface CatalogColumn {
  name: string;
  typeOid: number;
  modifier: number;
  notNull: boolean;
  generated: boolean;
  /** `attmissingval::text` when `atthasmissing` (a one-element array: `{42}`), else null. */
  missing: string | null;
  /** A pg_attrdef row exists for the column. */
  hasDefault: boolean;
  /** An identity column (`attidentity` set): filled from a sequence, with no pg_attrdef row. */
  identity: boolean;
}

/** Looks a table up by name; undefined when it does not exist. */
export async function loadTableDetails(
  client: pg.Client,
  table: TableRef,
): Promise<TableDetails | undefined> {
  const { rows } = await client.query<{ oid: number }>(
    `select c.oid::int4 as oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
    [table.schema, table.name],
  );
  const oid = rows[0]?.oid;
  return oid === undefined ? undefined : loadTableDetailsByOid(client, oid);
}

export async function loadTableDetailsByOid(
  client: pg.Client,
  oid: number,
): Promise<TableDetails | undefined> {
  const relation = await client.query<{ schema: string; name: string; relreplident: string }>(
    `select n.nspname as schema, c.relname as name, c.relreplident
       from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = $1`,
    [oid],
  );
  const head = relation.rows[0];
  if (!head) return undefined;
  const columns = await client.query<{
    attname: string;
    atttypid: number;
    atttypmod: number;
    attnotnull: boolean;
    generated: boolean;
    missing: string | null;
    has_default: boolean;
    identity: boolean;
  }>(
    `select a.attname, a.atttypid::int4 as atttypid, a.atttypmod, a.attnotnull,
            a.attgenerated <> '' as generated,
            case when a.atthasmissing then a.attmissingval::text end as missing,
            exists (select 1 from pg_attrdef d where d.adrelid = a.attrelid and d.adnum = a.attnum) as has_default,
            a.attidentity <> '' as identity
       from pg_attribute a where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum`,
    [oid],
  );
  const keys = await client.query<{ attname: string; indisprimary: boolean; indisreplident: boolean }>(
    `select a.attname, i.indisprimary, i.indisreplident
       from pg_index i
       cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, position)
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = $1 and (i.indisprimary or i.indisreplident)
      order by i.indisprimary desc, k.position`,
    [oid],
  );
  const primary = keys.rows.filter((row) => row.indisprimary).map((row) => row.attname);
  const identity = keys.rows.filter((row) => row.indisreplident).map((row) => row.attname);
  const key = head.relreplident === 'i' && identity.length > 0 ? identity : primary;
  return {
    oid,
    table: { schema: head.schema, name: head.name },
    replicaIdentity: head.relreplident,
    columns: columns.rows.map((row) => ({
      name: row.attname,
      typeOid: row.atttypid,
      modifier: row.atttypmod,
      notNull: row.attnotnull,
      generated: row.generated,
      missing: row.missing,
      hasDefault: row.has_default,
      identity: row.identity,
    })),
    key,
  };
}

/**
 * The schema Sluice replicates for a table: its stored, non-generated columns (what pgoutput publishes and
 * the snapshot copies) and its key. A table without a usable key is an error naming it.
 */
export async function loadTableSchema(
  client: pg.Client,
  types: TypeCatalog,
  table: TableRef,
): Promise<{ schema: TableSchema; details: TableDetails }> {
  const details = await loadTableDetails(client, table);
  if (!details) throw new SourceError('table', `table ${qualifiedName(table)} does not exist`);
  if (details.key.length === 0 || details.replicaIdentity === 'n')
    throw new SourceError('table', `table ${qualifiedName(table)} has no primary key or replica identity`, {
      solution: `run: alter table ${qualifiedName(table)} add primary key (…), or alter table ${qualifiedName(table)} replica identity using index <unique index>`,
    });
  const published = details.columns.filter((column) => !column.generated);
  await types.load(
    client,
    published.map((column) => column.typeOid),
  );
  const columns: ColumnSchema[] = published.map((column) => {
    const type = types.resolve(column.typeOid, column.modifier);
    const backfill = backfillOf(column, type);
    return { name: column.name, type, nullable: !column.notNull, ...(backfill && { backfill }) };
  });
  return { schema: { table: details.table, columns, primaryKey: details.key }, details };
}

/**
 * What rows older than the column hold (see `ColumnSchema.backfill`): the missing value PostgreSQL keeps
 * for a column added with a non-volatile default (decoded like a streamed value of the column), `'unknown'`
 * when there is a default or identity but no missing value (the ADD COLUMN rewrote the table, the default
 * was set later, or a later rewrite cleared the missing value), undefined when those rows hold NULL.
 */
export function backfillOf(
  column: Pick<CatalogColumn, 'name' | 'missing' | 'hasDefault' | 'identity'>,
  type: PgColumnType,
): ColumnSchema['backfill'] {
  if (column.missing !== null) {
    // attmissingval is an array of the column's own type holding one element, so the element is decoded
    // as the column is, and the outer delimiter is the column type's (`;` for box, `,` for all else,
    // box[] included).
    const delimiter = type.kind !== 'array' && type.name === 'box' ? 0x3b : 0x2c;
    let values: ColumnValue[];
    try {
      values = parseArray(column.missing, decoderFor(type), delimiter);
    } catch (error) {
      throw new SourceError('protocol', `cannot read the missing value of column ${column.name}`, {
        cause: error,
      });
    }
    if (values.length !== 1)
      throw new SourceError('protocol', `the missing value of column ${column.name} is not one value`);
    return { value: values[0] as ColumnValue };
  }
  if (column.hasDefault || column.identity) return 'unknown';
  return undefined;
}

/** How `next` differs from `previous`, by column name. */
export function diffSchema(
  previous: TableSchema | undefined,
  next: TableSchema,
): { added: ColumnSchema[]; dropped: string[]; retyped: ColumnSchema[] } {
  if (!previous) return { added: [], dropped: [], retyped: [] };
  const before = new Map(previous.columns.map((column) => [column.name, column]));
  const after = new Set(next.columns.map((column) => column.name));
  const added: ColumnSchema[] = [];
  const retyped: ColumnSchema[] = [];
  for (const column of next.columns) {
    const old = before.get(column.name);
    if (!old) added.push(column);
    else if (old.type.oid !== column.type.oid || old.type.modifier !== column.type.modifier)
      retyped.push(column);
  }
  const dropped = previous.columns.filter((column) => !after.has(column.name)).map((column) => column.name);
  return { added, dropped, retyped };
}

/** Whether two schemas are the same for the sink (columns, types, nullability, key). */
export function sameSchema(a: TableSchema, b: TableSchema): boolean {
  if (a.columns.length !== b.columns.length || a.primaryKey.join('\0') !== b.primaryKey.join('\0'))
    return false;
  return a.columns.every((column, index) => {
    const other = b.columns[index]!;
    return (
      column.name === other.name &&
      column.nullable === other.nullable &&
      column.type.oid === other.type.oid &&
      column.type.modifier === other.type.modifier
    );
  });
}
