// Per-table buffers of row changes between two flushes, bounded by rows, bytes and time. The batcher only
// counts; the pipeline decides when to cut (at a commit when a bound is reached, anywhere past twice the
// bound, on the timer) and loads every buffer it takes.
import type { DeleteEvent, InsertEvent, Lsn, Row, TableRef, UpdateEvent } from '../change-event.ts';
import { tableKey } from './transforms.ts';

export type RowEvent = InsertEvent | UpdateEvent | DeleteEvent;

export interface BatcherLimits {
  /** Rows of one table that make a flush due (default 50,000). */
  maxRows: number;
  /** Estimated bytes over all tables that make a flush due (default 64 MiB). */
  maxBytes: number;
  /** A non-empty batch is flushed after this long (default 1,000 ms: about one load a table a second). */
  flushIntervalMs: number;
}

export const defaultBatcherLimits: BatcherLimits = {
  maxRows: 50_000,
  maxBytes: 64 * 1024 * 1024,
  flushIntervalMs: 1_000,
};

export interface TableBatch {
  table: TableRef;
  events: RowEvent[];
  bytes: number;
  /** LSNs of the batch's first and last change: with job, table and epoch they make the load's label. */
  firstLsn: Lsn;
  lastLsn: Lsn;
  inserts: number;
  updates: number;
  deletes: number;
}

export class Batcher {
  readonly limits: BatcherLimits;
  #tables = new Map<string, TableBatch>();
  #rows = 0;
  #bytes = 0;
  #largest = 0;

  constructor(limits: Partial<BatcherLimits> = {}) {
    this.limits = { ...defaultBatcherLimits, ...limits };
  }

  get rows(): number {
    return this.#rows;
  }

  get bytes(): number {
    return this.#bytes;
  }

  add(event: RowEvent): void {
    const key = tableKey(event.table);
    let batch = this.#tables.get(key);
    if (!batch) {
      batch = {
        table: event.table,
        events: [],
        bytes: 0,
        firstLsn: event.lsn,
        lastLsn: event.lsn,
        inserts: 0,
        updates: 0,
        deletes: 0,
      };
      this.#tables.set(key, batch);
    }
    const bytes = estimateRowBytes(event.kind === 'delete' ? event.key : event.row);
    batch.events.push(event);
    batch.bytes += bytes;
    batch.lastLsn = event.lsn;
    if (event.kind === 'insert') batch.inserts++;
    else if (event.kind === 'update') batch.updates++;
    else batch.deletes++;
    this.#rows++;
    this.#bytes += bytes;
    if (batch.events.length > this.#largest) this.#largest = batch.events.length;
  }

  /** A bound is reached: flush at the next transaction boundary. */
  get full(): boolean {
    return this.#largest >= this.limits.maxRows || this.#bytes >= this.limits.maxBytes;
  }

  /** Twice a bound: flush now, even inside a transaction. */
  get overfull(): boolean {
    return this.#largest >= 2 * this.limits.maxRows || this.#bytes >= 2 * this.limits.maxBytes;
  }

  /** Hands over every table's buffer and starts empty. */
  take(): TableBatch[] {
    const batches = [...this.#tables.values()];
    this.#tables = new Map();
    this.#rows = 0;
    this.#bytes = 0;
    this.#largest = 0;
    return batches;
  }
}

/** A cheap estimate of a row's size in a JSON load body. */
export function estimateRowBytes(row: Row): number {
  let bytes = 2;
  for (const name in row) {
    const value = row[name];
    bytes += name.length + 4;
    if (typeof value === 'string') bytes += value.length + 2;
    else if (Array.isArray(value)) bytes += 8 * value.length + 2;
    else bytes += 6;
  }
  return bytes;
}
