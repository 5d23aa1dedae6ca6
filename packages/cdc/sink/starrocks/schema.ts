// Source schema → StarRocks Primary Key table, and the DDL that creates and evolves it over the MySQL
// port. Key columns come first and NOT NULL (StarRocks requires both); other columns are always NULL so a
// delete row or a partial update may omit them. Column existence is checked in information_schema before
// every ADD/DROP (`ADD COLUMN IF NOT EXISTS` is not reliably accepted), and schema changes are awaited
// until information_schema shows them, since StarRocks may run them asynchronously.
import type { ColumnSchema, TableRef, TableSchema } from '../../change-event.ts';
import type { ColumnChoice } from './column-choice.ts';
import type { StarRocksConnection } from './connection.ts';
import { type EncodedColumn, encodeValue } from './encoding.ts';
import { checkIdentifier, qualifiedTable, quoteIdentifier } from './identifier.ts';
import { unrepresentable } from './representable.ts';
import { StarRocksError } from './starrocks-error.ts';
import { mapColumnType } from './type-map.ts';

export interface MappedColumn extends EncodedColumn {
  /** StarRocks type as written in DDL. */
  sql: string;
  /** What rows that predate the column hold in PostgreSQL (see ColumnSchema.backfill). */
  backfill?: ColumnSchema['backfill'];
}

export interface TableMapping {
  source: TableRef;
  database: string;
  table: string;
  /** Key columns first (in key order), then the rest in PostgreSQL's order. */
  columns: MappedColumn[];
  primaryKey: string[];
}

export interface TableDdlOptions {
  /** `replication_num`; omitted (StarRocks' default, 3) when unset. */
  replicationNum?: number;
  /** `BUCKETS n`; StarRocks chooses when unset. */
  buckets?: number;
  /** `fast_schema_evolution` (StarRocks 3.2+; instant ADD/DROP COLUMN). Default true; false omits it. */
  fastSchemaEvolution?: boolean;
}

/**
 * Maps a source schema with the job's choices for its columns; refuses names StarRocks can't hold, column
 * names equal but for case, and a NULL choice for a key column.
 */
export function mapTable(
  schema: TableSchema,
  database: string,
  table: string,
  choices: readonly ColumnChoice[] = [],
): TableMapping {
  const context = `table ${schema.table.schema}.${schema.table.name}`;
  checkIdentifier('database', database);
  checkIdentifier('table', table, context);
  if (schema.primaryKey.length === 0) {
    throw new StarRocksError('operator', `${context} has no primary key or replica identity`, {
      solution: 'add a primary key to the PostgreSQL table, or exclude it from the job',
    });
  }
  const seen = new Map<string, string>();
  for (const column of schema.columns) {
    checkIdentifier('column', column.name, context);
    const folded = column.name.toLowerCase();
    const clash = seen.get(folded);
    if (clash !== undefined) {
      throw new StarRocksError(
        'operator',
        `${context}: columns ${JSON.stringify(clash)} and ${JSON.stringify(column.name)} differ only in case, which StarRocks can't tell apart`,
        { solution: 'rename one of the columns in PostgreSQL or exclude one from the job' },
      );
    }
    seen.set(folded, column.name);
  }
  const byName = new Map(schema.columns.map((column) => [column.name, column]));
  const chosen = new Map<string, ColumnChoice>();
  for (const choice of choices) {
    if (choice.table.schema !== schema.table.schema || choice.table.name !== schema.table.name) continue;
    chosen.set(choice.column, choice);
  }
  const keys = schema.primaryKey.map((name) => {
    const column = byName.get(name);
    if (!column)
      throw new StarRocksError('fatal', `${context}: key column ${JSON.stringify(name)} is not a column`);
    const policy = chosen.get(name)?.onUnrepresentable;
    if (policy === 'null' || policy === 'clamp') {
      const ref = `${schema.table.schema}.${schema.table.name}.${name}`;
      throw new StarRocksError(
        'operator',
        `${context}: key column ${JSON.stringify(name)} can't take --on-unrepresentable ${policy}: a key value must arrive exactly`,
        {
          solution: `drop --on-unrepresentable ${ref}; use --column-as ${ref}=text for a key StarRocks can't type`,
        },
      );
    }
    return mapColumn(column, true, chosen.get(name));
  });
  const keySet = new Set(schema.primaryKey);
  const rest = schema.columns
    .filter((column) => !keySet.has(column.name))
    .map((column) => mapColumn(column, false, chosen.get(column.name)));
  return {
    source: schema.table,
    database,
    table,
    columns: [...keys, ...rest],
    primaryKey: [...schema.primaryKey],
  };
}

export function mapColumn(column: ColumnSchema, key: boolean, choice?: ColumnChoice): MappedColumn {
  const mapped = mapColumnType(column.type, key, choice?.target);
  return {
    name: column.name,
    sql: mapped.sql,
    rule: mapped.rule,
    key,
    ...(choice?.onUnrepresentable ? { policy: choice.onUnrepresentable } : {}),
    ...(column.backfill === undefined ? {} : { backfill: column.backfill }),
  };
}

function columnDefinition(column: MappedColumn, defaultLiteral?: string): string {
  const nullability = column.key ? 'not null' : 'null';
  const byDefault = defaultLiteral === undefined ? '' : ` default ${defaultLiteral}`;
  return `${quoteIdentifier(column.name)} ${column.sql} ${nullability}${byDefault}`;
}

/** Rule kinds whose values StarRocks takes as a column DEFAULT literal, exactly. */
const DEFAULTABLE = new Set(['integer', 'decimal', 'varchar', 'date', 'datetime']);

/**
 * How rows that predate an added column get PostgreSQL's value for it: `null` when they hold NULL,
 * `{ literal }` when StarRocks' `ADD COLUMN … DEFAULT` can give it exactly, `resync` when only copying the
 * table again can (a volatile default, a value StarRocks takes no DEFAULT for or can't hold exactly).
 */
export function backfillOf(column: MappedColumn): 'null' | { literal: string } | 'resync' {
  const backfill = column.backfill;
  if (backfill === undefined) return 'null';
  if (backfill === 'unknown') return 'resync';
  const value = backfill.value;
  if (value === null) return 'null';
  if (
    typeof value === 'symbol' ||
    !DEFAULTABLE.has(column.rule.kind) ||
    unrepresentable(value, column.rule)
  ) {
    return 'resync';
  }
  // The value as it would travel in a load (JSON), unquoted, as a SQL string literal.
  const encoded = JSON.parse(encodeValue(value, column.rule)) as unknown;
  return { literal: stringLiteral(String(encoded)) };
}

export function createDatabaseSql(database: string): string {
  return `create database if not exists ${quoteIdentifier(database)}`;
}

export function createTableSql(mapping: TableMapping, options: TableDdlOptions = {}): string {
  const keys = mapping.primaryKey.map(quoteIdentifier).join(', ');
  const properties = [
    ...(options.replicationNum === undefined ? [] : [`"replication_num" = "${options.replicationNum}"`]),
    ...(options.fastSchemaEvolution === false ? [] : ['"fast_schema_evolution" = "true"']),
  ];
  const buckets = options.buckets === undefined ? '' : ` buckets ${options.buckets}`;
  const withProperties = properties.length > 0 ? `\nproperties (${properties.join(', ')})` : '';
  return (
    `create table if not exists ${qualifiedTable(mapping.database, mapping.table)} (\n  ` +
    mapping.columns.map((column) => columnDefinition(column)).join(',\n  ') +
    `\n) primary key (${keys})\ndistributed by hash(${keys})${buckets}${withProperties}`
  );
}

/** `ADD COLUMN`, with a DEFAULT giving rows that predate the column PostgreSQL's value where one exists. */
export function addColumnSql(mapping: TableMapping, column: MappedColumn): string {
  const backfill = backfillOf(column);
  const literal = typeof backfill === 'object' ? backfill.literal : undefined;
  return `alter table ${qualifiedTable(mapping.database, mapping.table)} add column ${columnDefinition(column, literal)}`;
}

export function dropColumnSql(mapping: TableMapping, column: string): string {
  return `alter table ${qualifiedTable(mapping.database, mapping.table)} drop column ${quoteIdentifier(column)}`;
}

export function truncateTableSql(mapping: TableMapping): string {
  return `truncate table ${qualifiedTable(mapping.database, mapping.table)}`;
}

/** A SQL string literal; names reaching here were checked already, this is the second line of defence. */
export function stringLiteral(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

export interface ExistingColumn {
  name: string;
  type: string;
  key: boolean;
}

/** The table's columns per information_schema, lower-cased name → column; undefined when there's no table. */
export async function existingColumns(
  connection: StarRocksConnection,
  database: string,
  table: string,
): Promise<Map<string, ExistingColumn> | undefined> {
  const rows = await connection.query(
    `select column_name as name, column_type as type, column_key as col_key from information_schema.columns ` +
      `where table_schema = ${stringLiteral(database)} and table_name = ${stringLiteral(table)} order by ordinal_position`,
  );
  if (rows.length === 0) {
    const tables = await connection.query(
      `select table_name as name from information_schema.tables ` +
        `where table_schema = ${stringLiteral(database)} and table_name = ${stringLiteral(table)}`,
    );
    if (tables.length === 0) return undefined;
  }
  const columns = new Map<string, ExistingColumn>();
  for (const row of rows) {
    const name = String(row.name ?? row.NAME ?? row.COLUMN_NAME);
    const type = String(row.type ?? row.TYPE ?? row.COLUMN_TYPE ?? '');
    const key = String(row.col_key ?? row.COL_KEY ?? row.COLUMN_KEY ?? '') === 'PRI';
    columns.set(name.toLowerCase(), { name, type, key });
  }
  return columns;
}
