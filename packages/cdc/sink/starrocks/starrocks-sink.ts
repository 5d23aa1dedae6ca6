// The StarRocks sink: what the pipeline calls. Contract: `write()` resolves only once StarRocks has
// committed every row (Stream Load `Success`, `Publish Timeout`, or `Label Already Exists` for a load an
// earlier attempt landed), so the pipeline may checkpoint and acknowledge the batch's LSNs afterwards.
// Delivery is at least once; labels derived from (job, table, epoch, LSN range, part) make a retried
// write of the same batch a no-op, and Primary Key upserts make a replay after a new epoch harmless.
// Errors are StarRocksErrors whose `kind` says whether to retry.
import type { SchemaEvent, TableRef, TableSchema } from '../../change-event.ts';
import type { ColumnChoice } from './column-choice.ts';
import {
  createStarRocksConnection,
  type StarRocksConnection,
  type StarRocksDatasource,
} from './connection.ts';
import { encodeBodies, type WriteOp } from './encoding.ts';
import { type LabelParts, streamLoadLabel } from './label.ts';
import {
  addColumnSql,
  backfillOf,
  createDatabaseSql,
  createTableSql,
  dropColumnSql,
  existingColumns,
  mapTable,
  type TableDdlOptions,
  type TableMapping,
  truncateTableSql,
} from './schema.ts';
import { StarRocksError } from './starrocks-error.ts';
import { createStreamLoadClient, type RetryOptions, type StreamLoadClient } from './stream-load-client.ts';
import { columnsHeader, foldByKey, groupByColumnSet } from './write-ops.ts';

export interface StarRocksSinkOptions {
  datasource: StarRocksDatasource;
  /** StarRocks table name for a source table. Default: the name for `public`, else `<schema>_<name>`. */
  targetTable?: (table: TableRef) => string;
  /** Properties for created tables. */
  ddl?: TableDdlOptions;
  /** The job's per-column choices: target type, and what to do with values StarRocks can't hold. */
  columnChoices?: readonly ColumnChoice[];
  /** Least time between two loads into one table, in ms (default 1,000: StarRocks caps versions). */
  minLoadIntervalMs?: number;
  /** Largest Stream Load body in bytes (default 64 MiB; StarRocks refuses JSON bodies over 100 MB). */
  maxLoadBytes?: number;
  retry?: RetryOptions;
  /** Per-HTTP-exchange inactivity limit in ms (default 300,000). */
  requestTimeoutMs?: number;
  /** How long to wait for a RUNNING label (default 120,000 ms). */
  labelWaitMs?: number;
  /** How long to wait for an ALTER TABLE to show in information_schema (default 300,000 ms). */
  schemaChangeWaitMs?: number;
}

export interface WriteResult {
  /** Stream Loads sent (one per column-set group and body-size split). */
  loads: number;
  /** Rows written (upserts and deletes). */
  rows: number;
  /** Loads StarRocks reported as already applied by an earlier attempt. */
  deduplicated: number;
  /** Values loaded as NULL / as the nearest value StarRocks holds, by the job's column choices. */
  nulled: number;
  clamped: number;
}

/** Called by `ensureTable`/`applySchema` before they add a column whose older rows only a re-copy can fill. */
export interface SchemaHooks {
  /** Must durably record that `table` needs copying again before resolving: the ALTER follows at once. */
  beforeResyncAlter?(table: TableRef): Promise<void>;
}

export interface StarRocksSink {
  /** Creates the database and the table when missing, adds missing columns; returns the mapping used. */
  ensureTable(schema: TableSchema, hooks?: SchemaHooks): Promise<TableMapping>;
  /** Applies added and dropped columns (checked in information_schema first). */
  applySchema(event: SchemaEvent, hooks?: SchemaHooks): Promise<TableMapping>;
  /** Writes one batch of one table; resolves when StarRocks has committed all of it. */
  write(table: TableRef, ops: readonly WriteOp[], labelParts: LabelParts): Promise<WriteResult>;
  /** Empties the target table (a TRUNCATE event). Flush earlier writes first. */
  truncate(table: TableRef): Promise<void>;
  /** StarRocks' version (`select current_version()`): checks the MySQL port and the credentials. */
  version(): Promise<string>;
  /** The mapping for a table `ensureTable` has seen. */
  mapping(table: TableRef): TableMapping | undefined;
  close(): Promise<void>;
}

export function defaultTargetTable(table: TableRef): string {
  return table.schema === 'public' ? table.name : `${table.schema}_${table.name}`;
}

export function createStarRocksSink(options: StarRocksSinkOptions): StarRocksSink {
  const { datasource } = options;
  const targetTable = options.targetTable ?? defaultTargetTable;
  const minLoadIntervalMs = options.minLoadIntervalMs ?? 1000;
  const maxLoadBytes = options.maxLoadBytes ?? 64 * 1024 * 1024;
  const schemaChangeWaitMs = options.schemaChangeWaitMs ?? 300_000;
  const connection: StarRocksConnection = createStarRocksConnection(datasource);
  const client: StreamLoadClient = createStreamLoadClient({
    datasource,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    ...(options.labelWaitMs === undefined ? {} : { labelWaitMs: options.labelWaitMs }),
  });
  const mappings = new Map<string, TableMapping>();
  const owners = new Map<string, string>(); // target table (lower case) → source key
  const lastLoadAt = new Map<string, number>();
  let databaseReady = false;

  function mapSchema(schema: TableSchema): TableMapping {
    const mapping = mapTable(schema, datasource.database, targetTable(schema.table), options.columnChoices);
    const source = sourceKey(schema.table);
    const owner = owners.get(mapping.table.toLowerCase());
    if (owner !== undefined && owner !== source) {
      throw new StarRocksError(
        'operator',
        `source tables ${owner} and ${source} both map to StarRocks table ${JSON.stringify(mapping.table)}`,
        { solution: 'give one of them another target name in the job' },
      );
    }
    return mapping;
  }

  function remember(mapping: TableMapping): TableMapping {
    mappings.set(sourceKey(mapping.source), mapping);
    owners.set(mapping.table.toLowerCase(), sourceKey(mapping.source));
    return mapping;
  }

  /** Runs an ALTER (again while another schema change holds the table) and waits until it shows. */
  async function alterAndWait(mapping: TableMapping, sql: string, done: (columns: Set<string>) => boolean) {
    const deadline = Date.now() + schemaChangeWaitMs;
    for (let round = 1; ; round++) {
      try {
        await connection.query(sql);
        break;
      } catch (error) {
        const busy =
          error instanceof StarRocksError &&
          /state is not normal|schema change|alter job/i.test(error.message);
        if (!busy || Date.now() >= deadline) throw error;
      }
      await sleep(Math.min(2000, 100 * round));
    }
    for (let round = 1; ; round++) {
      const columns = await existingColumns(connection, mapping.database, mapping.table);
      if (!columns) throw tableMissing(mapping);
      if (done(new Set(columns.keys()))) return;
      if (Date.now() >= deadline) {
        throw new StarRocksError(
          'transient',
          `schema change on ${mapping.database}.${mapping.table} not visible yet`,
        );
      }
      await sleep(Math.min(2000, 100 * round));
    }
  }

  async function reconcile(
    mapping: TableMapping,
    dropped: readonly string[],
    hooks?: SchemaHooks,
  ): Promise<void> {
    const existing = await existingColumns(connection, mapping.database, mapping.table);
    if (!existing) throw tableMissing(mapping);
    const adding = mapping.columns.filter((column) => !existing.has(column.name.toLowerCase()));
    if (adding.some((column) => !column.key && backfillOf(column) === 'resync')) {
      await hooks?.beforeResyncAlter?.(mapping.source);
    }
    for (const name of dropped) {
      const folded = name.toLowerCase();
      const column = existing.get(folded);
      if (!column) continue;
      if (column.key || mapping.primaryKey.some((key) => key.toLowerCase() === folded)) {
        throw keyChanged(mapping);
      }
      await alterAndWait(mapping, dropColumnSql(mapping, column.name), (names) => !names.has(folded));
    }
    for (const column of mapping.columns) {
      const folded = column.name.toLowerCase();
      if (existing.has(folded)) continue;
      if (column.key) throw keyChanged(mapping);
      await alterAndWait(mapping, addColumnSql(mapping, column), (names) => names.has(folded));
    }
    const keys = [...existing.values()]
      .filter((column) => column.key)
      .map((column) => column.name.toLowerCase());
    if (
      keys.length > 0 &&
      keys.sort().join(',') !==
        mapping.primaryKey
          .map((k) => k.toLowerCase())
          .sort()
          .join(',')
    ) {
      throw keyChanged(mapping);
    }
  }

  async function ensureTable(schema: TableSchema, hooks?: SchemaHooks): Promise<TableMapping> {
    const mapping = mapSchema(schema);
    if (!databaseReady) {
      await connection.query(createDatabaseSql(mapping.database));
      databaseReady = true;
    }
    const existing = await existingColumns(connection, mapping.database, mapping.table);
    if (!existing) await connection.query(createTableSql(mapping, options.ddl));
    else await reconcile(mapping, [], hooks);
    return remember(mapping);
  }

  async function applySchema(event: SchemaEvent, hooks?: SchemaHooks): Promise<TableMapping> {
    const previous = mappings.get(sourceKey(event.schema.table));
    if (!previous) return ensureTable(event.schema, hooks);
    const mapping = mapSchema(event.schema);
    if (mapping.primaryKey.join('\0') !== previous.primaryKey.join('\0')) throw keyChanged(mapping);
    const before = new Map(previous.columns.map((column) => [column.name, column.sql]));
    for (const column of event.retyped) {
      const now = mapping.columns.find((mapped) => mapped.name === column.name);
      const was = before.get(column.name);
      if (now && was !== undefined && now.sql !== was) {
        throw new StarRocksError(
          'operator',
          `${mapping.database}.${mapping.table}: column ${JSON.stringify(column.name)} changed type (StarRocks ${was} → ${now.sql}), which the sink does not apply`,
          { solution: `alter the StarRocks column to ${now.sql} by hand, then resume the job` },
        );
      }
    }
    await reconcile(mapping, event.dropped, hooks);
    return remember(mapping);
  }

  async function write(
    table: TableRef,
    ops: readonly WriteOp[],
    labelParts: LabelParts,
  ): Promise<WriteResult> {
    const mapping = mappings.get(sourceKey(table));
    if (!mapping) throw new StarRocksError('fatal', `write to ${sourceKey(table)} before ensureTable`);
    const result: WriteResult = { loads: 0, rows: 0, deduplicated: 0, nulled: 0, clamped: 0 };
    const context = { datasource: datasource.name, table: `${table.schema}.${table.name}` };
    let part = 0;
    for (const group of groupByColumnSet(mapping, foldByKey(mapping, ops))) {
      const columns = group.present
        ? mapping.columns.filter((column) => group.present!.has(column.name))
        : mapping.columns;
      const encoded = encodeBodies(columns, group.ops, maxLoadBytes, context);
      result.nulled += encoded.nulled;
      result.clamped += encoded.clamped;
      const header = columnsHeader(columns, group.present !== undefined);
      for (const body of encoded.bodies) {
        await throttle(mapping.table);
        const outcome = await client.load({
          table: mapping.table,
          label: streamLoadLabel(labelParts, mapping.table, part++),
          body,
          ...(header ? { columns: header } : {}),
          ...(group.present ? { partial: true } : {}),
        });
        lastLoadAt.set(mapping.table, Date.now());
        result.loads++;
        result.rows += body.rows;
        if (outcome.status === 'Label Already Exists') result.deduplicated++;
      }
    }
    return result;
  }

  async function throttle(table: string): Promise<void> {
    const wait = (lastLoadAt.get(table) ?? 0) + minLoadIntervalMs - Date.now();
    if (wait > 0) await sleep(wait);
  }

  async function truncate(table: TableRef): Promise<void> {
    const mapping = mappings.get(sourceKey(table));
    if (!mapping) throw new StarRocksError('fatal', `truncate of ${sourceKey(table)} before ensureTable`);
    await connection.query(truncateTableSql(mapping));
  }

  return {
    ensureTable,
    applySchema,
    write,
    truncate,
    async version() {
      const [row] = await connection.query('select current_version() as version');
      return String(row?.version ?? '');
    },
    mapping: (table) => mappings.get(sourceKey(table)),
    close: () => connection.close(),
  };
}

function sourceKey(table: TableRef): string {
  return `${JSON.stringify(table.schema)}.${JSON.stringify(table.name)}`;
}

function tableMissing(mapping: TableMapping): StarRocksError {
  return new StarRocksError('operator', `StarRocks table ${mapping.database}.${mapping.table} is missing`, {
    solution: 'restart the job so the sink creates the table again',
  });
}

function keyChanged(mapping: TableMapping): StarRocksError {
  return new StarRocksError(
    'operator',
    `the primary key of ${mapping.database}.${mapping.table} changed; a StarRocks key can't change after creation`,
    { solution: 'drop the StarRocks table and resync the job from a new snapshot' },
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
