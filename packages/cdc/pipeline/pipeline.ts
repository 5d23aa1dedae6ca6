// The run loop: source → transforms → batcher → sink → checkpoint → acknowledge.
//
// Ordering rule: an LSN is acknowledged to PostgreSQL only after the sink has made every change up to it
// durable and the checkpoint naming it is saved. A flush loads every table's buffer (a few tables at once),
// then the durable LSN becomes the end of the last commit whose changes were all in those buffers; a
// transaction bigger than the batch bounds may be loaded in pieces, but the durable LSN never passes the
// commit before it. A crash replays from the durable LSN: Primary Key upserts with full rows and deletes
// by key, applied in order, make the replay harmless.
//
// Backpressure: the loop awaits its loads, so while the sink is slow nothing is pulled from the stream,
// whose bounded queue then pauses the socket. In flight at most: the stream's queue (half the bound) plus
// the batcher (at most twice its byte bound, kept under a quarter of the bound each).
//
// Failures: transient errors (see error-kind.ts) restart the run from the saved checkpoint after a
// jittered backoff; operator and fatal errors end `run` with a PipelineError.
import { randomBytes } from 'node:crypto';
import type { ChangeEvent, Lsn, SchemaEvent, TableRef, TableSchema, TruncateEvent } from '../change-event.ts';
import type { SchemaHooks, StarRocksSink, WriteResult } from '../sink/starrocks/starrocks-sink.ts';
import { toWriteOps } from '../sink/starrocks/write-ops.ts';
import type { PostgresSource } from '../source/postgres/index.ts';
import type { ReplicationStream } from '../source/postgres/replication-stream.ts';
import type { SnapshotBatch, SnapshotProgress } from '../source/postgres/snapshot.ts';
import { SourceError } from '../source/postgres/source-error.ts';
import { Batcher, type BatcherLimits, type TableBatch } from './batcher.ts';
import { type Checkpoint, type CheckpointStore, CheckpointTracker, emptyCheckpoint } from './checkpoint.ts';
import { type ClassifiedError, classifyError, retryDelay } from './error-kind.ts';
import { fillMovedRows } from './moved-rows.ts';
import { type TransformOptions, Transforms, tableKey } from './transforms.ts';

export interface PipelineOptions {
  /** The job id (labels, slot and publication names). */
  job: string;
  /** The lease epoch (labels). */
  epoch: bigint;
  /** A new source per attempt (a source is not reusable after close); connects lazily. */
  createSource: () => PostgresSource | Promise<PostgresSource>;
  /** A new sink per attempt. */
  createSink: () => StarRocksSink | Promise<StarRocksSink>;
  checkpoints: CheckpointStore;
  /** The last saved checkpoint, if the job ran before. */
  checkpoint?: Checkpoint | undefined;
  /** Copy existing rows first (default true). */
  initialSnapshot?: boolean;
  transforms?: TransformOptions;
  batch?: Partial<BatcherLimits>;
  /** Bound on bytes read but not yet durable (default 256 MiB). */
  maxInFlightBytes?: number;
  /** Tables loaded at once in a flush (default 4). */
  maxConcurrentLoads?: number;
  snapshotParallelism?: number;
  snapshotRangePages?: number;
  /** Heartbeat period of the stream on an idle database (default 2,000 ms). */
  heartbeatIntervalMs?: number;
  /** Cap of the retry backoff (default 30,000 ms). */
  retryCapMs?: number;
  /** Called before each automatic retry. */
  onRetry?: (error: ClassifiedError, attempt: number, delayMs: number) => void;
  /** Called after each load: rows and estimated bytes of one table's batch. */
  onLoad?: (table: TableRef, rows: number, bytes: number) => void;
}

export type PipelinePhase = 'starting' | 'snapshot' | 'streaming' | 'stopped';
export type TablePhase = 'init' | 'copying' | 'copied' | 'streaming';

export interface TableStats {
  table: TableRef;
  state: TablePhase;
  snapshotRows: number;
  snapshotBytes: number;
  snapshotRowsEstimate: number;
  rangesDone: number;
  rangesTotal: number;
  inserts: number;
  updates: number;
  deletes: number;
  truncates: number;
  /** Values loaded as NULL / as the nearest value StarRocks holds, by the job's column choices. */
  valuesNulled: number;
  valuesClamped: number;
}

/** A failure that needs an operator or can't be retried; `classified` is safe to show. */
export class PipelineError extends Error {
  override name = 'PipelineError';
  readonly classified: ClassifiedError;

  constructor(classified: ClassifiedError, cause: unknown) {
    super(classified.message);
    this.classified = classified;
    Object.defineProperty(this, 'cause', { value: cause, enumerable: false, writable: true });
  }
}

/** Thrown into the snapshot to end it at a batch boundary when the run is asked to stop. */
class StopRequested extends Error {}

export class Pipeline {
  readonly #options: PipelineOptions;
  readonly #transforms: Transforms;
  readonly #tracker: CheckpointTracker;
  readonly #limits: BatcherLimits;
  readonly #maxInFlight: number;
  readonly #stats = new Map<string, TableStats>();
  #phase: PipelinePhase = 'starting';
  #stopping: { drain: boolean } | undefined;
  #wakeStop: () => void = () => undefined;
  readonly #stopped: Promise<void>;
  #source: PostgresSource | undefined;
  #stream: ReplicationStream | undefined;
  #retries = 0;
  /** Bumped on every durable load and checkpoint: a retry after progress starts its backoff afresh. */
  #progress = 0;
  #rows = 0;
  #bytes = 0;
  #lastError: ClassifiedError | undefined;
  /** Commit time of the oldest commit received but not yet durable. */
  #pendingSince: Date | undefined;

  constructor(options: PipelineOptions) {
    this.#options = options;
    this.#transforms = new Transforms(options.transforms);
    this.#tracker = new CheckpointTracker(options.checkpoints, options.checkpoint ?? emptyCheckpoint());
    this.#maxInFlight = options.maxInFlightBytes ?? 256 * 1024 * 1024;
    const limits: Partial<BatcherLimits> = { ...options.batch };
    limits.maxBytes = Math.min(limits.maxBytes ?? 64 * 1024 * 1024, Math.floor(this.#maxInFlight / 4));
    this.#limits = new Batcher(limits).limits;
    this.#stopped = new Promise((resolve) => {
      this.#wakeStop = resolve;
    });
  }

  get phase(): PipelinePhase {
    return this.#phase;
  }

  get checkpoint(): Readonly<Checkpoint> {
    return this.#tracker.current;
  }

  get tables(): TableStats[] {
    return [...this.#stats.values()].map((stats) => ({ ...stats }));
  }

  /** Rows and estimated bytes made durable so far (snapshot and stream), and automatic retries. */
  get totals(): { rows: number; bytes: number; retries: number } {
    return { rows: this.#rows, bytes: this.#bytes, retries: this.#retries };
  }

  /** Whether reading from the slot is paused because the bound on in-flight bytes is reached. */
  get readPaused(): boolean {
    return this.#stream?.paused ?? false;
  }

  /** The last error retried automatically, if any. */
  get lastError(): ClassifiedError | undefined {
    return this.#lastError;
  }

  /** WAL bytes received but not durable, and seconds since the oldest commit not yet durable. */
  lag(now = Date.now()): { bytes: number; seconds: number } {
    const stream = this.#stream;
    const durable = this.#tracker.current.durableLsn;
    const bytes = stream && stream.receivedLsn > durable ? Number(stream.receivedLsn - durable) : 0;
    const seconds = this.#pendingSince ? Math.max(0, now - this.#pendingSince.getTime()) / 1000 : 0;
    return { bytes, seconds };
  }

  /**
   * Ends the run. With `drain`, the current batch is loaded and the checkpoint saved first; without,
   * connections are closed at once (what was not saved is replayed by the next holder).
   */
  stop(options: { drain: boolean }): void {
    if (this.#stopping) {
      if (!options.drain) this.#stopping.drain = false;
    } else this.#stopping = { drain: options.drain };
    this.#wakeStop();
    if (!options.drain) void this.#source?.close().catch(() => undefined);
  }

  /** Runs until stopped (resolves) or until an error that needs an operator or is fatal (rejects). */
  async run(): Promise<void> {
    let attempt = 0;
    try {
      while (!this.#stopping) {
        const before = this.#progress;
        try {
          await this.#attempt();
          return;
        } catch (error) {
          if (this.#stopping) return;
          const classified = classifyError(error);
          if (classified.kind !== 'transient') throw new PipelineError(classified, error);
          attempt = this.#progress !== before ? 1 : attempt + 1;
          const delay = retryDelay(attempt, this.#options.retryCapMs);
          this.#retries++;
          this.#lastError = classified;
          this.#options.onRetry?.(classified, attempt, delay);
          await Promise.race([this.#stopped, sleep(delay)]);
        }
      }
    } finally {
      this.#phase = 'stopped';
    }
  }

  async #attempt(): Promise<void> {
    const source = await this.#options.createSource();
    this.#source = source;
    let sink: StarRocksSink | undefined;
    try {
      if (this.#stopping) return;
      const setup = await source.setup();
      sink = await this.#options.createSink();
      const schemas = new Map<string, TableSchema>();
      for (const schema of setup.schemas) {
        const target = this.#transforms.schema(schema);
        schemas.set(tableKey(schema.table), target);
        await sink.ensureTable(target, this.#schemaHooks);
        this.#statsFor(schema.table);
      }

      const saved = this.#tracker.current;
      if (setup.slotCreated && saved.consistentPoint !== 0n) {
        // The checkpoint names a slot that no longer exists: changes made while it was missing are gone,
        // so carrying on from a new slot would leave deleted rows behind in the sink.
        throw new SourceError('slot', `replication slot ${setup.name} disappeared (was it dropped?)`, {
          solution: 'delete the job with its replication slot and create it again to copy a fresh snapshot',
        });
      }
      if (saved.consistentPoint === 0n) {
        // A new slot: anything saved belongs to an older one. Nothing was acknowledged on this slot yet.
        await this.#tracker.reset({
          consistentPoint: setup.consistentPoint,
          durableLsn: setup.consistentPoint > saved.durableLsn ? setup.consistentPoint : saved.durableLsn,
          planned: [],
          completed: [],
          snapshotComplete: this.#options.initialSnapshot === false,
          // A new slot copies every table anyway: a copy the ALTERs above asked for is part of it.
          resync: this.#options.initialSnapshot === false ? [...(saved.resync ?? [])] : [],
        });
      }

      if (!this.#tracker.current.snapshotComplete) {
        this.#phase = 'snapshot';
        await this.#snapshot(source, sink, schemas);
        await this.#tracker.snapshotComplete();
      }
      // Ranges copied before a column was added hold NULL for it: copies still owed run after the snapshot.
      await this.#resyncPending(source, sink, schemas);
      for (const stats of this.#stats.values()) stats.state = 'streaming';
      if (this.#stopping) return;
      this.#phase = 'streaming';
      await this.#streamLoop(source, sink, schemas);
    } finally {
      this.#stream = undefined;
      this.#source = undefined;
      await source.close().catch(() => undefined);
      await sink?.close().catch(() => undefined);
    }
  }

  async #snapshot(source: PostgresSource, sink: StarRocksSink, schemas: Map<string, TableSchema>) {
    // Snapshot rows carry no LSN: a nonce per attempt keeps a re-copied range (under a newer snapshot,
    // with other rows) from being taken for a duplicate of an earlier attempt's load.
    const labelJob = `${this.#options.job}_s${randomBytes(4).toString('hex')}`;
    let sequence = 0n;
    for (const stats of this.#stats.values()) stats.state = 'copying';
    await source.snapshot({
      store: this.#tracker.snapshotStore(),
      ...(this.#options.snapshotParallelism && { parallelism: this.#options.snapshotParallelism }),
      ...(this.#options.snapshotRangePages && { rangePages: this.#options.snapshotRangePages }),
      batchRows: this.#limits.maxRows,
      batchBytes: Math.max(1024 * 1024, Math.floor(this.#limits.maxBytes / 2)),
      onBatch: (batch: SnapshotBatch) => this.#copyBatch(sink, schemas, batch, labelJob, sequence++),
      onProgress: (progress: SnapshotProgress) => {
        const stats = this.#statsFor(progress.table);
        stats.snapshotRows = progress.rowsDone;
        stats.snapshotBytes = progress.bytesDone;
        stats.snapshotRowsEstimate = progress.rowsEstimate;
        stats.rangesDone = progress.rangesDone;
        stats.rangesTotal = progress.rangesTotal;
        stats.state = progress.rangesDone >= progress.rangesTotal ? 'copied' : 'copying';
      },
    });
  }

  /** Loads one batch of copied rows (snapshot or re-copy) as upserts. */
  async #copyBatch(
    sink: StarRocksSink,
    schemas: Map<string, TableSchema>,
    batch: SnapshotBatch,
    labelJob: string,
    index: bigint,
  ): Promise<void> {
    if (this.#stopping) throw new StopRequested('stopping');
    if (batch.rows.length === 0) return;
    const schema = schemas.get(tableKey(batch.table));
    if (!schema) throw new SourceError('config', 'copied rows of a table the job does not replicate');
    const ops = new Array(batch.rows.length);
    for (let row = 0; row < batch.rows.length; row++) {
      ops[row] = { kind: 'upsert', row: this.#transforms.row(batch.table, batch.rows[row]!) };
    }
    const result = await sink.write(batch.table, ops, {
      job: labelJob,
      epoch: this.#options.epoch,
      startLsn: BigInt(batch.range.index),
      endLsn: index,
    });
    this.#counted(batch.table, result);
    this.#rows += batch.rows.length;
    this.#bytes += batch.bytes;
    this.#progress++;
    this.#options.onLoad?.(batch.table, batch.rows.length, batch.bytes);
  }

  /** Column-choice adjustments of one write, into the table's counters. */
  #counted(table: TableRef, result: WriteResult): void {
    if (result.nulled === 0 && result.clamped === 0) return;
    const stats = this.#statsFor(table);
    stats.valuesNulled += result.nulled;
    stats.valuesClamped += result.clamped;
  }

  /** Before an ALTER whose older rows only a re-copy can fill, the owed copy is saved in the checkpoint. */
  readonly #schemaHooks: SchemaHooks = {
    beforeResyncAlter: (table) => this.#tracker.requireResync(table),
  };

  /**
   * Copies again every table the checkpoint owes a copy (a column PostgreSQL filled without WAL that StarRocks
   * can't default, or a rewrite), as upserts of the current rows. The copy may be newer than the stream
   * position; the changes streamed after it overwrite it, so the table converges, and the owed copy is
   * cleared only once it is durable.
   */
  async #resyncPending(source: PostgresSource, sink: StarRocksSink, schemas: Map<string, TableSchema>) {
    for (const table of [...(this.#tracker.current.resync ?? [])]) {
      if (schemas.has(tableKey(table))) {
        const stats = this.#statsFor(table);
        const state = stats.state;
        stats.state = 'copying';
        const labelJob = `${this.#options.job}_r${randomBytes(4).toString('hex')}`;
        let sequence = 0n;
        await source.resync(table, {
          batchRows: this.#limits.maxRows,
          batchBytes: Math.max(1024 * 1024, Math.floor(this.#limits.maxBytes / 2)),
          onBatch: (batch: SnapshotBatch) => this.#copyBatch(sink, schemas, batch, labelJob, sequence++),
        });
        stats.state = state;
      }
      await this.#tracker.resyncDone(table);
    }
  }

  async #streamLoop(source: PostgresSource, sink: StarRocksSink, schemas: Map<string, TableSchema>) {
    const half = Math.floor(this.#maxInFlight / 2);
    const stream = await source.stream({
      startLsn: this.#tracker.current.durableLsn,
      maxBufferedBytes: half,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs ?? 2_000,
    });
    this.#stream = stream;
    const batcher = new Batcher(this.#limits);
    const interval = this.#limits.flushIntervalMs;
    let lastCommitEnd: Lsn = this.#tracker.current.durableLsn;
    let lastFlushAt = Date.now();

    const flush = async () => {
      const batches = batcher.take();
      await this.#load(source, sink, schemas, batches);
      lastFlushAt = Date.now();
      if (lastCommitEnd > this.#tracker.current.durableLsn) {
        await this.#tracker.advance(lastCommitEnd);
        stream.acknowledge(lastCommitEnd);
        this.#progress++;
      }
      if (batcher.rows === 0) this.#pendingSince = undefined;
    };

    const special = async (event: TruncateEvent | SchemaEvent) => {
      await flush();
      if (event.kind === 'truncate') {
        for (const table of event.tables) {
          const stats = this.#stats.get(tableKey(table));
          if (!stats) continue;
          await sink.truncate(table);
          stats.truncates++;
        }
        return;
      }
      const key = tableKey(event.schema.table);
      if (!schemas.has(key)) return;
      const target = this.#transforms.schema(event.schema);
      const excluded = new Set(event.schema.columns.map((column) => column.name));
      for (const column of target.columns) excluded.delete(column.name);
      await sink.applySchema(
        {
          ...event,
          schema: target,
          added: this.#transforms.columns(event.schema.table, event.added),
          retyped: this.#transforms.columns(event.schema.table, event.retyped),
          dropped: event.dropped.filter((name) => !excluded.has(name)),
        },
        this.#schemaHooks,
      );
      schemas.set(key, target);
      // Streaming waits while the copy runs: the changes after this point must land on top of it.
      await this.#resyncPending(source, sink, schemas);
    };

    const iterator = stream[Symbol.asyncIterator]();
    let next: Promise<IteratorResult<ChangeEvent[]>> | undefined;
    for (;;) {
      if (this.#stopping) {
        if (this.#stopping.drain) await flush();
        return;
      }
      if (!next) {
        next = iterator.next();
        next.catch(() => undefined);
      }
      const pending = batcher.rows > 0 || lastCommitEnd > this.#tracker.current.durableLsn;
      const wait = pending ? Math.max(0, lastFlushAt + interval - Date.now()) : interval;
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        next,
        this.#stopped.then(() => undefined),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), wait);
        }),
      ]);
      clearTimeout(timer);
      if (result) {
        next = undefined;
        if (result.done) throw new SourceError('connection', 'the replication stream ended');
        for (const event of result.value) {
          switch (event.kind) {
            case 'insert':
            case 'update':
            case 'delete':
              if (!schemas.has(tableKey(event.table))) break;
              this.#transforms.event(event);
              batcher.add(event);
              if (batcher.overfull) await flush();
              break;
            case 'commit':
              lastCommitEnd = event.endLsn;
              this.#pendingSince ??= event.commitTime;
              if (batcher.full) await flush();
              break;
            case 'truncate':
            case 'schema':
              await special(event);
              break;
            default:
              break;
          }
        }
      }
      const due =
        (batcher.rows > 0 || lastCommitEnd > this.#tracker.current.durableLsn) &&
        Date.now() - lastFlushAt >= interval;
      if (due) await flush();
    }
  }

  /** Loads each table's batch, a few tables at once; resolves when all are durable. */
  async #load(
    source: PostgresSource,
    sink: StarRocksSink,
    schemas: Map<string, TableSchema>,
    batches: TableBatch[],
  ): Promise<void> {
    if (batches.length === 0) return;
    let next = 0;
    const worker = async () => {
      for (;;) {
        const batch = batches[next++];
        if (!batch) return;
        const schema = schemas.get(tableKey(batch.table));
        if (!schema) continue;
        const ops = await fillMovedRows(
          source,
          this.#transforms,
          batch.table,
          schema.primaryKey,
          toWriteOps(batch.events, schema.primaryKey),
        );
        const result = await sink.write(batch.table, ops, {
          job: this.#options.job,
          epoch: this.#options.epoch,
          startLsn: batch.firstLsn,
          endLsn: batch.lastLsn,
        });
        this.#counted(batch.table, result);
        const stats = this.#statsFor(batch.table);
        stats.inserts += batch.inserts;
        stats.updates += batch.updates;
        stats.deletes += batch.deletes;
        this.#rows += batch.events.length;
        this.#bytes += batch.bytes;
        this.#options.onLoad?.(batch.table, batch.events.length, batch.bytes);
      }
    };
    const count = Math.min(batches.length, this.#options.maxConcurrentLoads ?? 4);
    const workers: Promise<void>[] = [];
    for (let index = 0; index < count; index++) workers.push(worker());
    const results = await Promise.allSettled(workers);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  #statsFor(table: TableRef): TableStats {
    const key = tableKey(table);
    let stats = this.#stats.get(key);
    if (!stats) {
      stats = {
        table,
        state: 'init',
        snapshotRows: 0,
        snapshotBytes: 0,
        snapshotRowsEstimate: 0,
        rangesDone: 0,
        rangesTotal: 0,
        inserts: 0,
        updates: 0,
        deletes: 0,
        truncates: 0,
        valuesNulled: 0,
        valuesClamped: 0,
      };
      this.#stats.set(key, stats);
    }
    return stats;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
