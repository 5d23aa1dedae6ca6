// The PostgreSQL source: connection (sslmode) → setup (checks, publication, slot) → snapshot (parallel
// ctid-range COPY) → replication stream (pgoutput) → change events.
//
//   const source = new PostgresSource({ connection, job, tables });
//   const { slotCreated, consistentPoint, schemas } = await source.setup();
//   if (!checkpoint.snapshotComplete) await source.snapshot({ store, onBatch });
//   const stream = await source.stream({ startLsn: checkpoint.durableLsn });
//   for await (const events of stream) { …; stream.acknowledge(commit.endLsn) once durable }
//   await source.readRows(table, keys, columns);   // a moved row's unchanged TOAST values, as they are now
//   await source.resync(table, { onBatch });       // one table copied again, now
//   await source.close();
import type pg from 'pg';
import type { Lsn, Row, TableRef, TableSchema } from '../../change-event.ts';
import { qualifiedName } from '../../change-event.ts';
import { type ConnectionOptions, type Connector, createConnector } from './connection.ts';
import { readRows } from './read-rows.ts';
import { ReplicationStream, type ReplicationStreamOptions } from './replication-stream.ts';
import {
  checkSource,
  dropReplication,
  ensurePublication,
  ensureSlot,
  replicationName,
  type SlotHandle,
} from './setup.ts';
import {
  copySnapshot,
  type ResyncOptions,
  type ResyncResult,
  resyncTable,
  type SnapshotOptions,
  type SnapshotResult,
} from './snapshot.ts';
import { SourceError, toSourceError } from './source-error.ts';
import { TypeCatalog } from './source-schema.ts';

export {
  type ConnectionOptions,
  type ConnectOptions,
  type Connector,
  createConnector,
  parseConnectionString,
  type SslMode,
} from './connection.ts';
export { PgoutputDecoder, type PgoutputDecoderOptions, type RawRelation } from './pgoutput-decoder.ts';
export { keyText, type ReadRowsOptions, readRows } from './read-rows.ts';
export {
  HEARTBEAT_PREFIX,
  protocolVersionFor,
  ReplicationStream,
  type ReplicationStreamOptions,
} from './replication-stream.ts';
export { replicationName, type SlotHandle } from './setup.ts';
export {
  CopyTextParser,
  copySnapshot,
  type ResyncOptions,
  type ResyncResult,
  resyncTable,
  type SnapshotBatch,
  type SnapshotCheckpointStore,
  type SnapshotOptions,
  type SnapshotProgress,
  type SnapshotRange,
  type SnapshotResult,
  type SnapshotState,
} from './snapshot.ts';
export { SourceError, type SourceErrorCode } from './source-error.ts';
export { backfillOf, diffSchema, sameSchema, TypeCatalog } from './source-schema.ts';
export { checkReplicableTables } from './table-check.ts';
export { decoderFor, parseArray, type ValueDecoder } from './value-decoder.ts';

export interface PostgresSourceOptions {
  connection: ConnectionOptions;
  /** The job id: slot and publication are `sluice_<job>`. */
  job: string;
  tables: readonly TableRef[];
}

export interface SetupResult {
  /** `sluice_<job>`: the slot's and the publication's name. */
  name: string;
  /**
   * True when this call created the slot: a snapshot from scratch is due, and any saved snapshot state or
   * checkpoint belongs to an older slot (`snapshot` ignores the store's saved state then).
   */
  slotCreated: boolean;
  /** Where streaming starts after the snapshot (a reused slot: its confirmed_flush_lsn). */
  consistentPoint: Lsn;
  schemas: TableSchema[];
  serverVersion: number;
}

/** One job's view of a PostgreSQL source. Not reusable after `close`. */
export class PostgresSource {
  readonly #connector: Connector;
  readonly #tables: readonly TableRef[];
  readonly #name: string;
  #setup: (SetupResult & { slot: SlotHandle }) | undefined;
  #stream: ReplicationStream | undefined;
  /** The connection `readRows` uses, opened on first use and kept until `close` (or an error). */
  #reader: Promise<{ client: pg.Client; types: TypeCatalog }> | undefined;

  constructor(options: PostgresSourceOptions) {
    this.#connector = createConnector(options.connection);
    this.#tables = options.tables;
    this.#name = replicationName(options.job);
  }

  /**
   * Checks the server, role and tables (errors tell the operator what to run), creates or updates the
   * publication, and finds or creates the slot. A new slot holds an exported snapshot until `snapshot`
   * finishes or `stream` starts.
   */
  async setup(): Promise<SetupResult> {
    const client = await this.#connector.connect();
    try {
      const checked = await checkSource(client, new TypeCatalog(), this.#tables);
      await ensurePublication(client, this.#name, this.#tables);
      const slot = await ensureSlot(this.#connector, client, this.#name, checked.serverVersion);
      await this.#setup?.slot.release();
      return this.#remember(checked, slot);
    } catch (error) {
      throw toSourceError(error, 'preparing the source failed', this.#connector.secrets());
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  #remember(checked: { schemas: TableSchema[]; serverVersion: number }, slot: SlotHandle): SetupResult {
    const result: SetupResult = {
      name: this.#name,
      slotCreated: slot.created,
      consistentPoint: slot.consistentPoint,
      schemas: checked.schemas,
      serverVersion: checked.serverVersion,
    };
    this.#setup = { ...result, slot };
    return result;
  }

  /**
   * Copies the tables' unfinished ranges (all of them the first time) under the slot's exported snapshot,
   * or, when the slot already existed (a restart), under a fresh snapshot (see snapshot.ts for why that is
   * exact). Releases the exported snapshot when done.
   */
  async snapshot(
    options: Omit<SnapshotOptions, 'connector' | 'schemas' | 'snapshotName' | 'discardSavedState'> & {
      schemas?: TableSchema[];
    },
  ): Promise<SnapshotResult> {
    const setup = this.#requireSetup();
    try {
      return await copySnapshot({
        ...options,
        connector: this.#connector,
        schemas: options.schemas ?? setup.schemas,
        snapshotName: setup.slot.snapshotName,
        discardSavedState: setup.slotCreated && setup.slot.snapshotName !== undefined,
      });
    } finally {
      await setup.slot.release();
      setup.slot.snapshotName = undefined;
    }
  }

  /** Starts streaming from the slot (at `startLsn` when it is past the slot's confirmed position). */
  async stream(
    options: Omit<ReplicationStreamOptions, 'connector' | 'slot' | 'publication'> = {},
  ): Promise<ReplicationStream> {
    const setup = this.#requireSetup();
    await setup.slot.release();
    setup.slot.snapshotName = undefined;
    await this.#stream?.close();
    this.#stream = await ReplicationStream.start({
      ...options,
      connector: this.#connector,
      slot: this.#name,
      publication: this.#name,
    }).catch((error: unknown) => {
      throw toSourceError(error, 'starting replication failed', this.#connector.secrets());
    });
    return this.#stream;
  }

  /**
   * The current rows of `table` whose key equals one of `keys` (decoded key values, as the stream produced
   * them; every key names the same columns), each holding those key columns and `columns`, decoded as the
   * stream decodes them. Keys no longer in the table are left out; duplicates yield one row; the order is
   * unspecified; no keys → [] without a query. Reads with one plain connection, opened on first use and
   * closed by `close`; a column or table that does not exist is a `table` error. Needs no `setup`.
   */
  async readRows(table: TableRef, keys: readonly Row[], columns: readonly string[]): Promise<Row[]> {
    if (keys.length === 0) return [];
    this.#reader ??= (async () => ({ client: await this.#connector.connect(), types: new TypeCatalog() }))();
    const reader = this.#reader;
    try {
      const { client, types } = await reader;
      return await readRows(client, types, table, keys, columns);
    } catch (error) {
      if (!(error instanceof SourceError) || error.transient) {
        // The connection may be broken: the next call opens a new one.
        if (this.#reader === reader) this.#reader = undefined;
        reader.then(({ client }) => client.end()).catch(() => undefined);
      }
      throw toSourceError(
        error,
        `re-reading rows of ${qualifiedName(table)} failed`,
        this.#connector.secrets(),
      );
    }
  }

  /**
   * Copies `table`'s current rows again, now, under a fresh repeatable-read snapshot (its own, not the
   * slot's; nothing is recorded, so an interrupted copy is redone whole), with the snapshot's range copier
   * and decoders; batches come to `onBatch` like the snapshot's. Upserting them while streaming is paused
   * and then streaming on converges: later changes overwrite what the copy saw. Needs no `setup`.
   */
  async resync(table: TableRef, options: ResyncOptions): Promise<ResyncResult> {
    return resyncTable({ ...options, connector: this.#connector, table });
  }

  /** Drops the job's slot and publication (when the job is deleted). */
  async drop(): Promise<void> {
    await this.close();
    const client = await this.#connector.connect();
    try {
      await dropReplication(client, this.#name);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Closes the stream and any connection still open. */
  async close(): Promise<void> {
    await this.#stream?.close();
    this.#stream = undefined;
    await this.#setup?.slot.release();
    const reader = this.#reader;
    this.#reader = undefined;
    await reader?.then(({ client }) => client.end()).catch(() => undefined);
  }

  /** A plain connection with Sluice's session settings (for callers that need a catalog query). */
  connect(): Promise<pg.Client> {
    return this.#connector.connect();
  }

  #requireSetup(): SetupResult & { slot: SlotHandle } {
    if (!this.#setup) throw new Error('call setup() first');
    return this.#setup;
  }
}
