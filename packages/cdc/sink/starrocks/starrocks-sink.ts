// The StarRocks sink: what the pipeline calls. Contract: `write()` resolves only once StarRocks has
// committed every row (Stream Load `Success`, `Publish Timeout`, or `Label Already Exists` for a load an
// earlier attempt landed), so the pipeline may checkpoint and acknowledge the batch's LSNs afterwards.
// Delivery is at least once; labels derived from (job, table, epoch, LSN range, part) make a retried
// write of the same batch a no-op, and Primary Key upserts make a replay after a new epoch harmless.
// Errors are StarRocksErrors whose `kind` says whether to retry.
import {
  type ChangeEvent,
  type Row,
  type SchemaEvent,
  type TableRef,
  type TableSchema,
  UNCHANGED_TOAST,
} from '../../change-event.ts';
import {
  createStarRocksConnection,
  type StarRocksConnection,
  type StarRocksDatasource,
} from './connection.ts';
import { encodeBodies, type WriteOp } from './encoding.ts';
import { type LabelParts, streamLoadLabel } from './label.ts';
import {
  addColumnSql,
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

export interface StarRocksSinkOptions {
  datasource: StarRocksDatasource;
  /** StarRocks table name for a source table. Default: the name for `public`, else `<schema>_<name>`. */
  targetTable?: (table: TableRef) => string;
  /** Properties for created tables. */
  ddl?: TableDdlOptions;
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
}

export interface StarRocksSink {
  /** Creates the database and the table when missing, adds missing columns; returns the mapping used. */
  ensureTable(schema: TableSchema): Promise<TableMapping>;
  /** Applies added and dropped columns (checked in information_schema first). */
  applySchema(event: SchemaEvent): Promise<TableMapping>;
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
    const mapping = mapTable(schema, datasource.database, targetTable(schema.table));
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

  async function reconcile(mapping: TableMapping, dropped: readonly string[]): Promise<void> {
    const existing = await existingColumns(connection, mapping.database, mapping.table);
    if (!existing) throw tableMissing(mapping);
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

  async function ensureTable(schema: TableSchema): Promise<TableMapping> {
    const mapping = mapSchema(schema);
    if (!databaseReady) {
      await connection.query(createDatabaseSql(mapping.database));
      databaseReady = true;
    }
    const existing = await existingColumns(connection, mapping.database, mapping.table);
    if (!existing) await connection.query(createTableSql(mapping, options.ddl));
    else await reconcile(mapping, []);
    return remember(mapping);
  }

  async function applySchema(event: SchemaEvent): Promise<TableMapping> {
    const previous = mappings.get(sourceKey(event.schema.table));
    if (!previous) return ensureTable(event.schema);
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
    await reconcile(mapping, event.dropped);
    return remember(mapping);
  }

  async function write(
    table: TableRef,
    ops: readonly WriteOp[],
    labelParts: LabelParts,
  ): Promise<WriteResult> {
    const mapping = mappings.get(sourceKey(table));
    if (!mapping) throw new StarRocksError('fatal', `write to ${sourceKey(table)} before ensureTable`);
    const result: WriteResult = { loads: 0, rows: 0, deduplicated: 0 };
    let part = 0;
    for (const group of groupByColumnSet(mapping, ops)) {
      const columns = group.present
        ? mapping.columns.filter((column) => group.present!.has(column.name))
        : mapping.columns;
      for (const body of encodeBodies(columns, group.ops, maxLoadBytes)) {
        await throttle(mapping.table);
        const outcome = await client.load({
          table: mapping.table,
          label: streamLoadLabel(labelParts, mapping.table, part++),
          body,
          ...(group.present ? { partialColumns: columns.map((column) => column.name) } : {}),
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

interface OpGroup {
  /** Columns every row of a partial-update group carries; undefined for full rows. */
  present: Set<string> | undefined;
  signature: string;
  ops: WriteOp[];
}

/**
 * Splits a batch into loads: full rows in one, TOAST-partial rows grouped by the set of columns they carry.
 * A change may move to an earlier group than the one it would start, but never before an earlier change to
 * the same key, so per-key order — the only order a Primary Key table observes — is kept.
 */
export function groupByColumnSet(mapping: TableMapping, ops: readonly WriteOp[]): OpGroup[] {
  // Deletes carry only the key and travel with full rows: partial-update loads hold upserts only.
  const signatureOf = (op: WriteOp): string => {
    if (op.kind === 'delete') return '';
    let signature: string | null = null;
    for (const column of mapping.columns) {
      if (op.row[column.name] === UNCHANGED_TOAST) signature = `${signature ?? ''}${column.name}\0`;
    }
    return signature === null ? '' : signature;
  };
  if (!ops.some((op) => signatureOf(op) !== '')) {
    return ops.length === 0 ? [] : [{ present: undefined, signature: '', ops: [...ops] }];
  }
  const groups: OpGroup[] = [];
  const lastGroupOfKey = new Map<string, number>();
  for (const op of ops) {
    const signature = signatureOf(op);
    const row = op.kind === 'upsert' ? op.row : op.key;
    const key = JSON.stringify(mapping.primaryKey.map((name) => row[name] ?? null));
    let index = -1;
    for (let i = lastGroupOfKey.get(key) ?? 0; i < groups.length; i++) {
      if (groups[i]!.signature === signature) {
        index = i;
        break;
      }
    }
    if (index < 0) {
      const missing = signature ? new Set(signature.split('\0')) : undefined;
      const present = missing
        ? new Set(mapping.columns.filter((column) => !missing.has(column.name)).map((column) => column.name))
        : undefined;
      groups.push({ present, signature, ops: [] });
      index = groups.length - 1;
    }
    groups[index]!.ops.push(op);
    lastGroupOfKey.set(key, index);
  }
  return groups;
}

/**
 * One table's row changes as sink operations, in order. An update that moved the key becomes a delete of
 * the old key and an upsert; unchanged TOAST values are filled from the old row when the source sent it
 * (REPLICA IDENTITY FULL). A moved row whose TOAST values are unknown can't be written faithfully.
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
          if (Object.values(row).includes(UNCHANGED_TOAST)) {
            throw new StarRocksError(
              'operator',
              `an update moved a row's primary key in ${event.table.schema}.${event.table.name} but left TOAST columns unsent`,
              { solution: 'set REPLICA IDENTITY FULL on the PostgreSQL table so the old values are sent' },
            );
          }
          ops.push({ kind: 'delete', key: old });
        }
      }
      ops.push({ kind: 'upsert', row });
    }
  }
  return ops;
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
