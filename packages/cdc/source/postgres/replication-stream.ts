// The replication stream: START_REPLICATION on a walsender connection, copy-both handling, standby
// status updates, heartbeats and backpressure. Change events come out in batches through async iteration.
//
// Acknowledgement contract: the flushed (and applied) position reported to PostgreSQL is only ever what
// the consumer passed to `acknowledge` — never a keep-alive's WAL end, never what was merely received. On
// an idle database a periodic `pg_logical_emit_message` gives the consumer a commit to acknowledge, so the
// slot keeps moving and does not hold WAL.
//
// Backpressure: decoded batches wait in a queue bounded by `maxBufferedBytes` of pgoutput data; past the
// bound the socket is paused until the consumer has taken half of it back.
import type pg from 'pg';
import type { ChangeEvent, Lsn, TableSchema } from '../../change-event.ts';
import { formatLsn, parseLsn, quoteIdent } from '../../change-event.ts';
import type { Connector } from './connection.ts';
import { PgoutputDecoder, type RawRelation } from './pgoutput-decoder.ts';
import { SourceError, serverMessage } from './source-error.ts';
import { backfillOf, loadTableDetailsByOid, type TableDetails, TypeCatalog } from './source-schema.ts';

/** The prefix of Sluice's heartbeat messages (transactional, empty content). */
export const HEARTBEAT_PREFIX = 'sluice.heartbeat';

export interface ReplicationStreamOptions {
  connector: Connector;
  /** Slot and publication (both `sluice_<job>` when set up by Sluice). */
  slot: string;
  publication: string;
  /** Resume here (the durable LSN of the checkpoint, or the slot's consistent point); default the slot's. */
  startLsn?: Lsn;
  /** Emit a heartbeat when no WAL data arrived for this long. Default 10,000 ms; 0 disables. */
  heartbeatIntervalMs?: number;
  /** Send a standby status update at least this often. Default 10,000 ms (below wal_sender_timeout). */
  statusIntervalMs?: number;
  /** Bound on decoded data waiting for the consumer. Default 64 MiB. */
  maxBufferedBytes?: number;
  /** Bound on one streamed in-progress transaction held until its commit. Default 256 MiB. */
  maxStreamedTransactionBytes?: number;
  /** Ask for streaming of in-progress transactions (protocol 2+). Default true. */
  streaming?: boolean;
  /** Session settings of the walsender, e.g. `{ logical_decoding_work_mem: '64MB' }`. */
  settings?: Record<string, string>;
  /**
   * How long to wait for the slot to be released by a previous walsender (one that is still exiting, or
   * a worker whose lease expired). Default 10,000 ms.
   */
  slotWaitMs?: number;
  /** Highest pgoutput protocol version to ask for (default: the highest the server supports). */
  maxProtocolVersion?: number;
}

/** pgoutput protocol versions by server: 14 → 2 (streaming), 15 → 3 (two-phase), 16+ → 4 (parallel). */
export function protocolVersionFor(serverVersion: number): number {
  if (serverVersion >= 160000) return 4;
  if (serverVersion >= 150000) return 3;
  if (serverVersion >= 140000) return 2;
  return 1;
}

interface ConnectionInternals {
  stream: { pause(): void; resume(): void };
  sendCopyFromChunk(chunk: Buffer): void;
  on(event: 'copyData', listener: (message: { chunk: Buffer }) => void): void;
}

const postgresEpochMs = 946_684_800_000n;

export class ReplicationStream implements AsyncIterable<ChangeEvent[]> {
  readonly #replication: pg.Client;
  readonly #side: pg.Client;
  readonly #connection: ConnectionInternals;
  readonly #decoder: PgoutputDecoder;
  readonly #types = new TypeCatalog();
  readonly #details = new Map<number, TableDetails>();
  readonly #maxBuffered: number;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #secrets: Iterable<string>;

  #queue: { events: ChangeEvent[]; bytes: number }[] = [];
  #queuedBytes = 0;
  #current: ChangeEvent[] = [];
  #currentBytes = 0;
  #flushScheduled = false;
  /** Raw messages waiting behind a catalog lookup, in order (copies: pg reuses its buffer). */
  #pending: Buffer[] = [];
  #draining = false;
  #paused = false;
  #wake: (() => void) | undefined;
  #error: unknown;
  #closed = false;

  #durable: Lsn;
  #received: Lsn;
  /** Highest commit end seen: the consumer cannot have made more durable than this. */
  #acknowledgeable: Lsn;
  #dataSinceHeartbeat = true;
  #heartbeatInFlight = false;
  #statusScheduled = false;

  /** The protocol version in use. */
  readonly protocolVersion: number;

  private constructor(
    replication: pg.Client,
    side: pg.Client,
    options: ReplicationStreamOptions,
    start: Lsn,
    protocolVersion: number,
  ) {
    this.#replication = replication;
    this.#side = side;
    this.#connection = (replication as unknown as { connection: ConnectionInternals }).connection;
    this.#maxBuffered = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.#secrets = options.connector.secrets();
    this.#durable = start;
    this.#received = start;
    this.#acknowledgeable = start;
    this.protocolVersion = protocolVersion;
    this.#decoder = new PgoutputDecoder({
      protocolVersion,
      describe: (relation) => this.#describe(relation),
      ...(options.maxStreamedTransactionBytes && {
        maxStreamedTransactionBytes: options.maxStreamedTransactionBytes,
      }),
    });
  }

  /** Connects and starts streaming from the slot. */
  static async start(options: ReplicationStreamOptions): Promise<ReplicationStream> {
    const side = await options.connector.connect();
    let replication: pg.Client | undefined;
    try {
      const slot = await waitForSlot(side, options.slot, options.slotWaitMs ?? 10_000);
      const confirmed = parseLsn(slot.confirmed ?? '0/0');
      const start =
        options.startLsn !== undefined && options.startLsn > confirmed ? options.startLsn : confirmed;
      const protocolVersion = Math.min(protocolVersionFor(slot.version), options.maxProtocolVersion ?? 4);
      replication = await options.connector.connect({
        replication: true,
        ...(options.settings && { settings: options.settings }),
      });
      const stream = new ReplicationStream(replication, side, options, start, protocolVersion);
      stream.#begin(options, start);
      return stream;
    } catch (error) {
      await replication?.end().catch(() => undefined);
      await side.end().catch(() => undefined);
      throw error;
    }
  }

  /** What the consumer declared durable; the flushed position PostgreSQL has been told. */
  get durableLsn(): Lsn {
    return this.#durable;
  }

  /** The WAL position of the last data received. */
  get receivedLsn(): Lsn {
    return this.#received;
  }

  /** Whether reading from the server is paused because the consumer is behind. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes of decoded data waiting for the consumer. */
  get bufferedBytes(): number {
    return this.#queuedBytes + this.#currentBytes;
  }

  /** Decoder counters (streamed commits and aborts, messages). */
  get stats(): Readonly<PgoutputDecoder['stats']> {
    return this.#decoder.stats;
  }

  /**
   * Declares everything up to `lsn` durable downstream: pass a commit event's `endLsn` once that
   * transaction (and all before it) is durable in the sink and checkpointed. Never goes backwards.
   */
  acknowledge(lsn: Lsn): void {
    if (lsn > this.#acknowledgeable)
      throw new RangeError(`cannot acknowledge ${formatLsn(lsn)}: beyond the last commit received`);
    if (lsn <= this.#durable) return;
    this.#durable = lsn;
    if (this.#statusScheduled) return;
    this.#statusScheduled = true;
    setImmediate(() => {
      this.#statusScheduled = false;
      this.#sendStatus(false);
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ChangeEvent[]> {
    for (;;) {
      const batch = this.#queue.shift();
      if (batch) {
        this.#queuedBytes -= batch.bytes;
        if (this.#paused && this.#queuedBytes <= this.#maxBuffered / 2 && !this.#draining) this.#resume();
        yield batch.events;
        continue;
      }
      if (this.#current.length > 0) {
        this.#flush();
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Stops streaming (after a last status update) and closes both connections. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#sendStatus(false);
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#wakeUp();
    await this.#replication.end().catch(() => undefined);
    await this.#side.end().catch(() => undefined);
  }

  #begin(options: ReplicationStreamOptions, start: Lsn): void {
    this.#connection.on('copyData', (message) => this.#onCopyData(message.chunk));
    this.#replication.on('end', () => {
      if (!this.#closed) this.#fail(new SourceError('connection', 'the replication connection closed'));
    });
    this.#replication.on('error', (error) => this.#fail(error));
    const pluginOptions = [
      `proto_version '${this.protocolVersion}'`,
      `publication_names '${quoteIdent(options.publication).replaceAll("'", "''")}'`,
      `messages 'true'`,
    ];
    if ((options.streaming ?? true) && this.protocolVersion >= 2) pluginOptions.push(`streaming 'on'`);
    const command = `START_REPLICATION SLOT ${quoteIdent(options.slot)} LOGICAL ${formatLsn(start)} (${pluginOptions.join(', ')})`;
    this.#replication.query(command).then(
      () => this.#fail(new SourceError('connection', 'the server ended replication')),
      (error: unknown) => this.#fail(error),
    );

    const status = setInterval(() => this.#sendStatus(false), options.statusIntervalMs ?? 10_000);
    status.unref();
    this.#timers.push(status);
    const heartbeatMs = options.heartbeatIntervalMs ?? 10_000;
    if (heartbeatMs > 0) {
      const heartbeat = setInterval(() => this.#heartbeat(), heartbeatMs);
      heartbeat.unref();
      this.#timers.push(heartbeat);
    }
  }

  #onCopyData(chunk: Buffer): void {
    if (this.#closed || this.#error !== undefined) return;
    try {
      const type = chunk[0];
      if (type === 0x77 /* w: XLogData */) {
        this.#dataSinceHeartbeat = true;
        if (this.#pending.length > 0) {
          this.#pending.push(Buffer.from(chunk));
          return;
        }
        const relation = this.#decoder.peekRelation(chunk, 25);
        if (relation) {
          this.#pending.push(Buffer.from(chunk));
          this.#drainPending();
          return;
        }
        this.#decode(chunk);
      } else if (type === 0x6b /* k: keep-alive */) {
        const walEnd = chunk.readBigUInt64BE(1);
        if (walEnd > this.#received && this.#pending.length === 0 && this.#current.length === 0) {
          // Nothing is in flight; the server's position is only reported as written, never as flushed.
          this.#received = walEnd;
        }
        if (chunk[17] === 1) this.#sendStatus(false);
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  #decode(chunk: Buffer): void {
    const lsn = chunk.readBigUInt64BE(1);
    if (lsn > this.#received) this.#received = lsn;
    const before = this.#current.length;
    this.#decoder.decode(chunk, 25, lsn, this.#current);
    this.#currentBytes += chunk.length;
    for (let index = before; index < this.#current.length; index++) {
      const event = this.#current[index]!;
      if (event.kind === 'commit' && event.endLsn > this.#acknowledgeable)
        this.#acknowledgeable = event.endLsn;
    }
    if (this.#current.length >= 2048) this.#flush();
    else if (!this.#flushScheduled && this.#current.length > 0) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    }
  }

  #flush(): void {
    if (this.#current.length === 0) return;
    this.#queue.push({ events: this.#current, bytes: this.#currentBytes });
    this.#queuedBytes += this.#currentBytes;
    this.#current = [];
    this.#currentBytes = 0;
    if (this.#queuedBytes > this.#maxBuffered) this.#pause();
    this.#wakeUp();
  }

  /** Relation messages need the catalog (types, nullability, key): everything behind waits, in order. */
  #drainPending(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#pause();
    (async () => {
      while (this.#pending.length > 0 && !this.#closed) {
        const chunk = this.#pending[0]!;
        const relation = this.#decoder.peekRelation(chunk, 25);
        if (relation) await this.#prepare(relation);
        this.#pending.shift();
        this.#decode(chunk);
      }
    })().then(
      () => {
        this.#draining = false;
        if (this.#queuedBytes <= this.#maxBuffered) this.#resume();
      },
      (error: unknown) => {
        this.#draining = false;
        this.#fail(error);
      },
    );
  }

  async #prepare(relation: RawRelation): Promise<void> {
    await this.#types.load(
      this.#side,
      relation.columns.map((column) => column.typeOid),
    );
    const details = await loadTableDetailsByOid(this.#side, relation.oid);
    if (details) this.#details.set(relation.oid, details);
    else this.#details.delete(relation.oid);
  }

  #describe(relation: RawRelation): TableSchema {
    const details = this.#details.get(relation.oid);
    // The catalog as read when the Relation message arrived (it may be newer than the WAL position).
    const catalog = new Map(details?.columns.map((column) => [column.name, column]));
    const names = new Set(relation.columns.map((column) => column.name));
    const key =
      details && details.key.length > 0 && details.key.every((name) => names.has(name))
        ? details.key
        : relation.columns.filter((column) => column.flags & 1).map((column) => column.name);
    return {
      table: { schema: relation.schema, name: relation.name },
      columns: relation.columns.map((column) => {
        const type = this.#types.resolve(column.typeOid, column.modifier);
        const known = catalog.get(column.name);
        // A catalog column of another type is a later incarnation: only a copy can tell what old rows hold.
        const backfill =
          known && (known.typeOid === column.typeOid ? backfillOf(known, type) : ('unknown' as const));
        return { name: column.name, type, nullable: !known?.notNull, ...(backfill && { backfill }) };
      }),
      primaryKey: key,
    };
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#connection.stream.pause();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#connection.stream.resume();
  }

  /** Standby status update: written = received, flushed = applied = durable. */
  #sendStatus(replyRequested: boolean): void {
    if (this.#closed || this.#error !== undefined) return;
    const message = Buffer.allocUnsafe(34);
    message[0] = 0x72; // r
    message.writeBigUInt64BE(this.#received > this.#durable ? this.#received : this.#durable, 1);
    message.writeBigUInt64BE(this.#durable, 9);
    message.writeBigUInt64BE(this.#durable, 17);
    message.writeBigInt64BE((BigInt(Date.now()) - postgresEpochMs) * 1000n, 25);
    message[33] = replyRequested ? 1 : 0;
    try {
      this.#connection.sendCopyFromChunk(message);
    } catch (error) {
      this.#fail(error);
    }
  }

  #heartbeat(): void {
    if (this.#closed || this.#heartbeatInFlight) return;
    if (this.#dataSinceHeartbeat) {
      this.#dataSinceHeartbeat = false;
      return;
    }
    this.#heartbeatInFlight = true;
    this.#side
      .query(`select pg_logical_emit_message(true, '${HEARTBEAT_PREFIX}', '')`)
      .catch((error: unknown) => {
        if (!this.#closed)
          this.#fail(
            new SourceError('connection', `heartbeat failed: ${serverMessage(error, this.#secrets)}`, {
              cause: error,
            }),
          );
      })
      .finally(() => {
        this.#heartbeatInFlight = false;
      });
  }

  #fail(error: unknown): void {
    if (this.#closed || this.#error !== undefined) return;
    this.#error = asSourceError(error, this.#secrets);
    for (const timer of this.#timers) clearInterval(timer);
    this.#wakeUp();
    this.#replication.end().catch(() => undefined);
    this.#side.end().catch(() => undefined);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The slot's confirmed position, once no other process holds it. */
async function waitForSlot(
  client: pg.Client,
  name: string,
  waitMs: number,
): Promise<{ confirmed: string | null; version: number }> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await client.query<{
      confirmed: string | null;
      version: number;
      active_pid: number | null;
    }>(
      `select s.confirmed_flush_lsn::text as confirmed, s.active_pid,
              current_setting('server_version_num')::int as version
         from pg_replication_slots s where s.slot_name = $1`,
      [name],
    );
    const slot = rows[0];
    if (!slot)
      throw new SourceError('slot', `replication slot ${name} does not exist`, {
        solution: 'the slot was dropped: changes since are lost; run the job again with a new snapshot',
      });
    if (slot.active_pid === null) return slot;
    if (Date.now() >= deadline)
      throw new SourceError('slot', `replication slot ${name} is in use by process ${slot.active_pid}`, {
        solution: 'another worker still streams this job; stop it, or wait for its lease to expire',
      });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function asSourceError(error: unknown, secrets: Iterable<string>): SourceError {
  if (error instanceof SourceError) return error;
  const state = (error as { code?: unknown } | null)?.code;
  if (state === '55006' || state === '42704')
    return new SourceError('slot', `replication failed: ${serverMessage(error, secrets)}`, {
      cause: error,
      sqlState: state,
    });
  return new SourceError('connection', `replication failed: ${serverMessage(error, secrets)}`, {
    cause: error,
    ...(typeof state === 'string' && { sqlState: state }),
  });
}
