// The initial snapshot: every table split into heap-page (ctid) ranges, copied with `COPY … TO STDOUT` by
// several connections that import the same snapshot, each range's completion recorded so a restart copies
// only what is left.
//
// Consistency across a restart: the slot was created with an exported snapshot at its consistent point C,
// and nothing is acknowledged before the snapshot is complete, so the slot's confirmed_flush stays at C.
// The exported snapshot dies with the process; a restart copies the unfinished ranges under a fresh
// snapshot S > C and then streams from C. Replaying C..S over rows copied at S is harmless: inserts and
// updates carry the full new row (upsert by key), deletes carry the key, so the end state is exact. The
// last range of each table is open-ended, so rows in pages added after the plan are copied too.
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { ColumnValue, Row, TableRef, TableSchema } from '../../change-event.ts';
import { qualifiedName, quoteIdent } from '../../change-event.ts';
import type { Connector } from './connection.ts';
import { SourceError, serverMessage, sqlStateOf, toSourceError } from './source-error.ts';
import { loadTableSchema, TypeCatalog } from './source-schema.ts';
import { decoderFor, type ValueDecoder } from './value-decoder.ts';

/** Heap pages [startPage, endPage) of one table; `endPage` 0 means to the end of the table. */
export interface SnapshotRange {
  table: TableRef;
  /** Position in the table's plan, from 0. */
  index: number;
  startPage: number;
  endPage: number;
}

/** What an earlier run recorded. */
export interface SnapshotState {
  planned: SnapshotRange[];
  completed: SnapshotRange[];
}

/**
 * Where the snapshot's progress is kept (the job checkpoint: `planned_ranges`, `completed_ranges`).
 * `completeRange` is called only after every batch of the range was accepted by `onBatch`.
 */
export interface SnapshotCheckpointStore {
  load(): Promise<SnapshotState | undefined>;
  savePlan(planned: SnapshotRange[]): Promise<void>;
  completeRange(range: SnapshotRange): Promise<void>;
}

/** Rows of one range, in order; `last` marks the range's final batch. */
export interface SnapshotBatch {
  table: TableRef;
  range: SnapshotRange;
  rows: Row[];
  /** COPY text bytes these rows came from. */
  bytes: number;
  last: boolean;
}

export interface SnapshotProgress {
  table: TableRef;
  rowsDone: number;
  bytesDone: number;
  /** From pg_class.reltuples at planning time (0 when the table was never analysed). */
  rowsEstimate: number;
  rangesDone: number;
  rangesTotal: number;
}

export interface SnapshotOptions {
  connector: Connector;
  /** The tables and their columns (as loaded by setup). */
  schemas: readonly TableSchema[];
  /** An exported snapshot to import (the slot's); when absent, a fresh one is exported for the copy. */
  snapshotName?: string | undefined;
  store: SnapshotCheckpointStore;
  /**
   * Receives rows. Resolve only when the rows are durable (or ordered before the checkpoint save): a
   * range is recorded complete after all its batches resolved. Awaited, so a slow sink slows the copy.
   */
  onBatch: (batch: SnapshotBatch) => Promise<void>;
  onProgress?: (progress: SnapshotProgress) => void;
  /** Connections copying at once. Default 4. */
  parallelism?: number;
  /** Heap pages per range. Default 16,384 (128 MiB of 8 KiB pages). */
  rangePages?: number;
  /**
   * Ignore what the store holds and plan afresh: set when the slot was just created, since any saved state
   * then belongs to an earlier slot whose snapshot is unrelated.
   */
  discardSavedState?: boolean;
  /** Rows per batch. Default 10,000. */
  batchRows?: number;
  /** COPY bytes per batch. Default 8 MiB. */
  batchBytes?: number;
}

export interface SnapshotResult {
  /** Ranges copied by this run (a restart copies only the unfinished ones). */
  copied: SnapshotRange[];
  rows: number;
  bytes: number;
}

/** Copies every unfinished range; resolves when all are recorded complete. */
export async function copySnapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const { store } = options;
  return copyRanges({
    ...options,
    async plan(first) {
      const stats = await tableStats(first, options.schemas).catch((error: unknown) => {
        throw toSourceError(error, 'planning the snapshot failed', options.connector.secrets());
      });
      let state = options.discardSavedState ? undefined : await store.load();
      if (!state) {
        const planned = planRanges(options.schemas, stats, rangePagesOf(options));
        await store.savePlan(planned);
        state = { planned, completed: [] };
      }
      return { schemas: options.schemas, stats, ...state };
    },
    completeRange: (range) => store.completeRange(range),
  });
}

/** How `resync` copies a table: like `SnapshotOptions`, minus what a one-off copy has no use for. */
export interface ResyncOptions {
  /** Receives rows; awaited, so a slow sink slows the copy. */
  onBatch: (batch: SnapshotBatch) => Promise<void>;
  onProgress?: (progress: SnapshotProgress) => void;
  /** Connections copying at once. Default 4. */
  parallelism?: number;
  /** Heap pages per range. Default 16,384. */
  rangePages?: number;
  /** Rows per batch. Default 10,000. */
  batchRows?: number;
  /** COPY bytes per batch. Default 8 MiB. */
  batchBytes?: number;
  /**
   * Copy only these columns (the key columns always come along), e.g. the ones the sink knows; default
   * every published column of the table as its catalog stands in the copy's snapshot. A named column the
   * table no longer has is a `table` error.
   */
  columns?: readonly string[];
}

export interface ResyncResult {
  rows: number;
  bytes: number;
}

/**
 * Copies one table's current rows again under a fresh repeatable-read snapshot, taken after an ACCESS
 * SHARE lock on the table (so no rewrite can commit between the snapshot and the copy, which would make
 * the table look empty to it). Nothing is persisted: a copy interrupted by a restart is done again whole.
 * The schema is read inside the same snapshot.
 */
export async function resyncTable(
  options: ResyncOptions & { connector: Connector; table: TableRef },
): Promise<ResyncResult> {
  const result = await copyRanges({
    ...options,
    lockTables: [options.table],
    async plan(first) {
      try {
        const { schema } = await loadTableSchema(first, new TypeCatalog(), options.table);
        const chosen = options.columns ? pickColumns(schema, options.columns) : schema;
        const stats = await tableStats(first, [chosen]);
        return {
          schemas: [chosen],
          stats,
          planned: planRanges([chosen], stats, rangePagesOf(options)),
          completed: [],
        };
      } catch (error) {
        throw toSourceError(
          error,
          `planning the copy of ${qualifiedName(options.table)} failed`,
          options.connector.secrets(),
        );
      }
    },
    completeRange: async () => undefined,
  });
  return { rows: result.rows, bytes: result.bytes };
}

function pickColumns(schema: TableSchema, names: readonly string[]): TableSchema {
  const wanted = new Set([...schema.primaryKey, ...names]);
  for (const name of names)
    if (!schema.columns.some((column) => column.name === name))
      throw new SourceError(
        'table',
        `table ${qualifiedName(schema.table)} has no column ${quoteIdent(name)}`,
      );
  return { ...schema, columns: schema.columns.filter((column) => wanted.has(column.name)) };
}

function rangePagesOf(options: { rangePages?: number | undefined }): number {
  return Math.max(1, options.rangePages ?? 16_384);
}

interface RangeCopyOptions {
  connector: Connector;
  /** Import this exported snapshot; when absent, one is exported (after locking `lockTables`). */
  snapshotName?: string | undefined;
  lockTables?: readonly TableRef[];
  /** Reads what to copy with the first connection, inside the snapshot. */
  plan(first: pg.Client): Promise<{
    schemas: readonly TableSchema[];
    stats: Map<string, { pages: number; reltuples: number }>;
    planned: SnapshotRange[];
    completed: SnapshotRange[];
  }>;
  /** Called once every batch of `range` was accepted by `onBatch`. */
  completeRange(range: SnapshotRange): Promise<void>;
  onBatch: (batch: SnapshotBatch) => Promise<void>;
  onProgress?: ((progress: SnapshotProgress) => void) | undefined;
  parallelism?: number | undefined;
  batchRows?: number | undefined;
  batchBytes?: number | undefined;
}

/**
 * The range copier both the snapshot and resync use: several connections importing one snapshot copy the
 * planned ranges not yet completed, batch by batch; the first error ends every connection and is the one
 * reported.
 */
async function copyRanges(options: RangeCopyOptions): Promise<SnapshotResult> {
  const parallelism = Math.max(1, options.parallelism ?? 4);
  const batchRows = options.batchRows ?? 10_000;
  const batchBytes = options.batchBytes ?? 8 * 1024 * 1024;
  const clients: pg.Client[] = [];
  let exporter: pg.Client | undefined;
  let failure: unknown;
  const fail = (error: unknown) => {
    if (failure !== undefined) return;
    failure = error;
    // Ending the connections stops COPYs in flight; the first error is the one reported.
    for (const client of clients) client.end().catch(() => undefined);
  };

  try {
    let snapshotName = options.snapshotName;
    if (!snapshotName) {
      exporter = await options.connector.connect();
      snapshotName = await exportSnapshot(exporter, options.lockTables ?? [], options.connector);
    }
    if (!/^[0-9A-Fa-f-]+$/.test(snapshotName)) throw new SourceError('config', 'snapshot name is malformed');

    const first = await openSnapshotConnection(options.connector, snapshotName);
    clients.push(first);
    const plan = await options.plan(first);
    const { schemas, stats } = plan;
    const done = new Set(plan.completed.map(rangeId));
    const pending = plan.planned.filter((range) => !done.has(rangeId(range)));
    const schemaByTable = new Map(schemas.map((schema) => [tableId(schema.table), schema]));

    const progress = new Map<string, SnapshotProgress>();
    for (const schema of schemas) {
      const id = tableId(schema.table);
      const ranges = plan.planned.filter((range) => tableId(range.table) === id);
      progress.set(id, {
        table: schema.table,
        rowsDone: 0,
        bytesDone: 0,
        rowsEstimate: stats.get(id)?.reltuples ?? 0,
        rangesDone: ranges.filter((range) => done.has(rangeId(range))).length,
        rangesTotal: ranges.length,
      });
    }

    const result: SnapshotResult = { copied: [], rows: 0, bytes: 0 };
    let next = 0;
    const worker = async (client: pg.Client) => {
      while (failure === undefined) {
        const range = pending[next++];
        if (!range) return;
        const schema = schemaByTable.get(tableId(range.table));
        if (!schema)
          throw new SourceError('config', `planned range names unknown table ${qualifiedName(range.table)}`);
        const tally = progress.get(tableId(range.table))!;
        await copyRange(client, schema, range, batchRows, batchBytes, async (batch) => {
          if (failure !== undefined) throw failure;
          await options.onBatch(batch);
          tally.rowsDone += batch.rows.length;
          tally.bytesDone += batch.bytes;
          result.rows += batch.rows.length;
          result.bytes += batch.bytes;
          if (!batch.last) options.onProgress?.({ ...tally });
        });
        if (failure !== undefined) return;
        await options.completeRange(range);
        result.copied.push(range);
        tally.rangesDone++;
        options.onProgress?.({ ...tally });
      }
    };

    const workers: Promise<void>[] = [];
    const count = Math.min(parallelism, Math.max(1, pending.length));
    for (let index = 0; index < count; index++) {
      workers.push(
        (async () => {
          const client =
            index === 0 ? first : await openSnapshotConnection(options.connector, snapshotName as string);
          if (index > 0) clients.push(client);
          await worker(client);
        })().catch(fail),
      );
    }
    await Promise.all(workers);
    if (failure !== undefined) throw failure;
    return result;
  } catch (error) {
    fail(error);
    throw failure;
  } finally {
    for (const client of clients) await client.end().catch(() => undefined);
    await exporter?.end().catch(() => undefined);
  }
}

/**
 * Opens a repeatable-read transaction on `exporter` and exports its snapshot; `lockTables` are locked
 * (ACCESS SHARE) first — LOCK takes no snapshot, so the snapshot is taken after the locks are held.
 */
async function exportSnapshot(
  exporter: pg.Client,
  lockTables: readonly TableRef[],
  connector: Connector,
): Promise<string> {
  try {
    await exporter.query('begin isolation level repeatable read read only');
    for (const table of lockTables)
      await exporter.query(`lock table ${qualifiedName(table)} in access share mode`);
    const exported = await exporter.query<{ name: string }>('select pg_export_snapshot() as name');
    const name = exported.rows[0]?.name;
    if (!name) throw new SourceError('protocol', 'pg_export_snapshot returned nothing');
    return name;
  } catch (error) {
    if (sqlStateOf(error) === '42P01')
      throw new SourceError('table', serverMessage(error, connector.secrets()), {
        cause: error,
        sqlState: '42P01',
      });
    throw toSourceError(error, 'exporting a snapshot failed', connector.secrets());
  }
}

async function openSnapshotConnection(connector: Connector, snapshotName: string): Promise<pg.Client> {
  const client = await connector.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    await client.query(`set transaction snapshot '${snapshotName}'`);
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new SourceError(
      'slot',
      `cannot import the snapshot: ${serverMessage(error, connector.secrets())}`,
      {
        cause: error,
      },
    );
  }
}

async function tableStats(
  client: pg.Client,
  schemas: readonly TableSchema[],
): Promise<Map<string, { pages: number; reltuples: number }>> {
  const stats = new Map<string, { pages: number; reltuples: number }>();
  for (const schema of schemas) {
    const { rows } = await client.query<{ pages: string; reltuples: number }>(
      `select (pg_relation_size(c.oid) / current_setting('block_size')::int8)::text as pages,
              greatest(c.reltuples, 0)::float8 as reltuples
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relname = $2`,
      [schema.table.schema, schema.table.name],
    );
    const row = rows[0];
    if (!row) throw new SourceError('table', `table ${qualifiedName(schema.table)} does not exist`);
    stats.set(tableId(schema.table), { pages: Number(row.pages), reltuples: row.reltuples });
  }
  return stats;
}

/** Fixed ranges of `rangePages` pages; each table's last range is open-ended. */
export function planRanges(
  schemas: readonly TableSchema[],
  stats: Map<string, { pages: number }>,
  rangePages: number,
): SnapshotRange[] {
  const planned: SnapshotRange[] = [];
  for (const schema of schemas) {
    const pages = stats.get(tableId(schema.table))?.pages ?? 0;
    const count = Math.max(1, Math.ceil(pages / rangePages));
    for (let index = 0; index < count; index++) {
      planned.push({
        table: schema.table,
        index,
        startPage: index * rangePages,
        endPage: index === count - 1 ? 0 : (index + 1) * rangePages,
      });
    }
  }
  return planned;
}

function copyStatement(schema: TableSchema, range: SnapshotRange): string {
  const columns = schema.columns.map((column) => quoteIdent(column.name)).join(', ');
  const conditions: string[] = [];
  if (range.startPage > 0) conditions.push(`ctid >= '(${range.startPage},0)'::tid`);
  if (range.endPage > 0) conditions.push(`ctid < '(${range.endPage},0)'::tid`);
  const where = conditions.length ? ` where ${conditions.join(' and ')}` : '';
  return `copy (select ${columns} from ${qualifiedName(schema.table)}${where}) to stdout`;
}

async function copyRange(
  client: pg.Client,
  schema: TableSchema,
  range: SnapshotRange,
  batchRows: number,
  batchBytes: number,
  emit: (batch: SnapshotBatch) => Promise<void>,
): Promise<void> {
  const parser = new CopyTextParser(
    schema.columns.map((column) => column.name),
    schema.columns.map((column) => decoderFor(column.type)),
  );
  let rows: Row[] = [];
  let bytes = 0;
  const stream = client.query(copyTo(copyStatement(schema, range)));
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      parser.push(chunk, rows);
      bytes += chunk.length;
      if (rows.length >= batchRows || bytes >= batchBytes) {
        await emit({ table: schema.table, range, rows, bytes, last: false });
        rows = [];
        bytes = 0;
      }
    }
  } catch (error) {
    if (error instanceof SourceError) throw error;
    throw new SourceError(
      'connection',
      `copying ${qualifiedName(schema.table)} failed: ${serverMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  parser.end();
  await emit({ table: schema.table, range, rows, bytes, last: true });
}

/** COPY text format (tab-separated, `\N` null, backslash escapes) → rows, straight from the Buffers. */
export class CopyTextParser {
  readonly #names: string[];
  readonly #decoders: ValueDecoder[];
  #carry: Buffer | undefined;

  constructor(names: string[], decoders: ValueDecoder[]) {
    this.#names = names;
    this.#decoders = decoders;
  }

  push(chunk: Buffer, out: Row[]): void {
    const data = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = undefined;
    const names = this.#names;
    const decoders = this.#decoders;
    const columns = names.length;
    let position = 0;
    while (position < data.length) {
      const end = data.indexOf(10, position);
      if (end < 0) {
        this.#carry = Buffer.from(data.subarray(position));
        return;
      }
      const row: Row = {};
      let start = position;
      for (let index = 0; index < columns; index++) {
        let stop = index === columns - 1 ? end : data.indexOf(9, start);
        if (stop < 0 || stop > end) stop = end;
        let value: ColumnValue;
        if (stop - start === 2 && data[start] === 0x5c && data[start + 1] === 0x4e) value = null;
        else {
          const slash = data.indexOf(0x5c, start);
          const text =
            slash >= 0 && slash < stop ? unescapeCopy(data, start, stop) : data.toString('utf8', start, stop);
          value = decoders[index]!(text);
        }
        row[names[index]!] = value;
        start = stop + 1;
      }
      out.push(row);
      position = end + 1;
    }
  }

  end(): void {
    if (this.#carry?.length) throw new SourceError('protocol', 'COPY data ended inside a row');
  }
}

const copyEscapes: Record<number, number> = {
  98: 0x08, // b
  102: 0x0c, // f
  110: 0x0a, // n
  114: 0x0d, // r
  116: 0x09, // t
  118: 0x0b, // v
};

function unescapeCopy(data: Buffer, start: number, stop: number): string {
  const out = Buffer.allocUnsafe(stop - start);
  let length = 0;
  for (let position = start; position < stop; position++) {
    const byte = data[position]!;
    if (byte !== 0x5c || position + 1 >= stop) {
      out[length++] = byte;
      continue;
    }
    const next = data[++position]!;
    const mapped = copyEscapes[next];
    if (mapped !== undefined) out[length++] = mapped;
    else if (next >= 0x30 && next <= 0x37) {
      let value = next - 0x30;
      for (let digits = 1; digits < 3 && position + 1 < stop; digits++) {
        const digit = data[position + 1]!;
        if (digit < 0x30 || digit > 0x37) break;
        value = value * 8 + digit - 0x30;
        position++;
      }
      out[length++] = value & 0xff;
    } else if (next === 0x78 /* x */ && position + 1 < stop && isHex(data[position + 1]!)) {
      let value = 0;
      for (let digits = 0; digits < 2 && position + 1 < stop && isHex(data[position + 1]!); digits++) {
        value = value * 16 + Number.parseInt(String.fromCharCode(data[position + 1]!), 16);
        position++;
      }
      out[length++] = value;
    } else out[length++] = next;
  }
  return out.toString('utf8', 0, length);
}

function isHex(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

function tableId(table: TableRef): string {
  return `${table.schema}\0${table.name}`;
}

function rangeId(range: SnapshotRange): string {
  return `${tableId(range.table)}\0${range.index}`;
}
