// The pgoutput decoder: logical replication messages (protocol versions 1–4) read straight from the
// Buffers of XLogData, into change events. Streamed in-progress transactions (protocol 2+) are held per
// transaction until their Stream Commit and dropped at Stream Abort (a subtransaction abort drops that
// subtransaction's changes and everything after them, which belongs to it or its children).
//
// Memory bound: a streamed transaction lives in memory until it commits. Its size (bytes of pgoutput data)
// is limited by `maxStreamedTransactionBytes` (default 256 MiB); beyond that the decoder fails with an
// `overflow` error rather than growing without limit. Nothing is spilled to disk: a job that must carry
// larger transactions raises the bound (memory) — PostgreSQL itself spills on its side only when streaming
// is off.
import type {
  ChangeEvent,
  ColumnValue,
  Lsn,
  Row,
  SchemaEvent,
  TableRef,
  TableSchema,
} from '../../change-event.ts';
import { UNCHANGED_TOAST } from '../../change-event.ts';
import { SourceError } from './source-error.ts';
import { diffSchema, sameSchema } from './source-schema.ts';
import { decoderFor, type ValueDecoder } from './value-decoder.ts';

/** A Relation message as sent, before the catalog is consulted. */
export interface RawRelation {
  oid: number;
  schema: string;
  name: string;
  replicaIdentity: number;
  columns: { flags: number; name: string; typeOid: number; modifier: number }[];
}

export interface PgoutputDecoderOptions {
  /** The proto_version requested in START_REPLICATION (1–4). */
  protocolVersion: number;
  /** Turns a Relation message into the table's schema; the caller loads the catalog first. */
  describe: (relation: RawRelation) => TableSchema;
  /** Bound on one streamed transaction's buffered pgoutput bytes. Default 256 MiB. */
  maxStreamedTransactionBytes?: number;
}

interface Relation {
  table: TableRef;
  schema: TableSchema;
  names: string[];
  decoders: ValueDecoder[];
  key: string[];
}

interface StreamedTransaction {
  events: ChangeEvent[];
  bytes: number;
  /** Index in `events` where each subtransaction's first change sits. */
  firstChange: Map<number, number>;
}

/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
const postgresEpochMs = 946_684_800_000;

export class PgoutputDecoder {
  readonly #describe: (relation: RawRelation) => TableSchema;
  readonly #maxStreamed: number;
  readonly #relations = new Map<number, Relation>();
  /** The schema last emitted per table (`schema.name`), for diffs. */
  readonly #emitted = new Map<string, TableSchema>();
  readonly #streamed = new Map<number, StreamedTransaction>();
  #inStream = false;
  #streamXid = 0;
  #xid = 0;
  #buffer: Buffer = Buffer.alloc(0);
  #position = 0;

  /** Counters, for tests and metrics. */
  readonly stats = { streamedCommits: 0, streamAborts: 0, streamStarts: 0, messages: 0 };

  constructor(options: PgoutputDecoderOptions) {
    this.#describe = options.describe;
    this.#maxStreamed = options.maxStreamedTransactionBytes ?? 256 * 1024 * 1024;
  }

  /** Bytes held in streamed transactions not yet committed. */
  get bufferedStreamBytes(): number {
    let total = 0;
    for (const transaction of this.#streamed.values()) total += transaction.bytes;
    return total;
  }

  /** When `data[offset…]` is a Relation message: what it says, so the catalog can be loaded first. */
  peekRelation(data: Buffer, offset: number): RawRelation | undefined {
    if (data[offset] !== 0x52 /* R */) return undefined;
    this.#buffer = data;
    this.#position = offset + 1;
    return this.#readRelation();
  }

  /** Decodes one pgoutput message at `data[offset…]` (the XLogData at `lsn`), appending events to `out`. */
  decode(data: Buffer, offset: number, lsn: Lsn, out: ChangeEvent[]): void {
    this.#buffer = data;
    this.#position = offset + 1;
    this.stats.messages++;
    const type = data[offset];
    switch (type) {
      case 0x42 /* B */:
        {
          const commitLsn = this.#int64();
          const commitTime = this.#timestamp();
          const xid = this.#uint32();
          this.#xid = xid;
          out.push({ kind: 'begin', lsn, xid, commitLsn, commitTime });
          return;
        }
      case 0x43 /* C */:
        {
          this.#position++; // flags
          const commitLsn = this.#int64();
          const endLsn = this.#int64();
          const commitTime = this.#timestamp();
          out.push({ kind: 'commit', lsn, xid: this.#xid, commitLsn, endLsn, commitTime });
          return;
        }
      case 0x52 /* R */:
        {
          const sub = this.#inStream ? this.#buffer.readUInt32BE(this.#position) : 0;
          const raw = this.#readRelation();
          const schema = this.#describe(raw);
          this.#relations.set(raw.oid, {
            table: schema.table,
            schema,
            names: schema.columns.map((column) => column.name),
            decoders: schema.columns.map((column) => decoderFor(column.type)),
            key: schema.primaryKey,
          });
          const event: SchemaEvent = { kind: 'schema', lsn, schema, added: [], dropped: [], retyped: [] };
          if (this.#inStream) this.#hold(sub, event, data.length - offset);
          else this.#emitSchema(event, out);
          return;
        }
      case 0x49 /* I */:
        {
          const sub = this.#streamPrefix();
          const relation = this.#relation(this.#uint32());
          this.#position++; // 'N'
          const event: ChangeEvent = {
            kind: 'insert',
            lsn,
            table: relation.table,
            row: this.#tuple(relation),
          };
          this.#route(sub, event, data.length - offset, out);
          return;
        }
      case 0x55 /* U */:
        {
          const sub = this.#streamPrefix();
          const relation = this.#relation(this.#uint32());
          let marker = data[this.#position++];
          let oldKey: Row | undefined;
          if (marker === 0x4b /* K */ || marker === 0x4f /* O */) {
            const old = this.#tuple(relation);
            oldKey = marker === 0x4b ? pick(old, relation.key) : old;
            marker = data[this.#position++];
          }
          if (marker !== 0x4e /* N */)
            throw new SourceError('protocol', 'pgoutput update without a new tuple');
          const row = this.#tuple(relation);
          const event: ChangeEvent = oldKey
            ? { kind: 'update', lsn, table: relation.table, row, oldKey }
            : { kind: 'update', lsn, table: relation.table, row };
          this.#route(sub, event, data.length - offset, out);
          return;
        }
      case 0x44 /* D */:
        {
          const sub = this.#streamPrefix();
          const relation = this.#relation(this.#uint32());
          const marker = data[this.#position++];
          const old = this.#tuple(relation);
          const key = marker === 0x4b ? pick(old, relation.key) : old;
          this.#route(sub, { kind: 'delete', lsn, table: relation.table, key }, data.length - offset, out);
          return;
        }
      case 0x54 /* T */:
        {
          const sub = this.#streamPrefix();
          const count = this.#uint32();
          const options = data[this.#position++]!;
          const tables: TableRef[] = [];
          for (let index = 0; index < count; index++) tables.push(this.#relation(this.#uint32()).table);
          const event: ChangeEvent = {
            kind: 'truncate',
            lsn,
            tables,
            cascade: (options & 1) !== 0,
            restartIdentity: (options & 2) !== 0,
          };
          this.#route(sub, event, data.length - offset, out);
          return;
        }
      case 0x4d /* M */:
        {
          const sub = this.#inStream ? this.#uint32() : 0;
          const flags = data[this.#position++]!;
          const messageLsn = this.#int64();
          const prefix = this.#cstring();
          const length = this.#uint32();
          const content = Buffer.from(data.subarray(this.#position, this.#position + length));
          this.#position += length;
          const event: ChangeEvent = {
            kind: 'message',
            lsn: messageLsn || lsn,
            transactional: (flags & 1) !== 0,
            prefix,
            content,
          };
          if (this.#inStream && event.transactional) this.#hold(sub, event, data.length - offset);
          else out.push(event);
          return;
        }
      case 0x53 /* S: Stream Start */:
        {
          this.#streamXid = this.#uint32();
          this.#inStream = true;
          this.stats.streamStarts++;
          if (!this.#streamed.has(this.#streamXid))
            this.#streamed.set(this.#streamXid, { events: [], bytes: 0, firstChange: new Map() });
          return;
        }
      case 0x45 /* E: Stream Stop */:
        this.#inStream = false;
        return;
      case 0x63 /* c: Stream Commit */:
        {
          const xid = this.#uint32();
          this.#position++; // flags
          const commitLsn = this.#int64();
          const endLsn = this.#int64();
          const commitTime = this.#timestamp();
          const transaction = this.#streamed.get(xid);
          this.#streamed.delete(xid);
          this.stats.streamedCommits++;
          out.push({ kind: 'begin', lsn: commitLsn, xid, commitLsn, commitTime });
          for (const event of transaction?.events ?? []) {
            if (event.kind === 'schema') this.#emitSchema(event, out);
            else out.push(event);
          }
          out.push({ kind: 'commit', lsn: commitLsn, xid, commitLsn, endLsn, commitTime });
          return;
        }
      case 0x41 /* A: Stream Abort */:
        {
          const xid = this.#uint32();
          const subxid = this.#uint32();
          this.stats.streamAborts++;
          const transaction = this.#streamed.get(xid);
          if (!transaction) return;
          if (subxid === xid) {
            this.#streamed.delete(xid);
            return;
          }
          const first = transaction.firstChange.get(subxid);
          if (first === undefined) return;
          transaction.events.length = first;
          for (const [other, index] of transaction.firstChange)
            if (index >= first) transaction.firstChange.delete(other);
          return;
        }
      case 0x4f /* O: Origin */:
      case 0x59 /* Y: Type (types are resolved from the catalog) */:
      case 0x62 /* b: Begin Prepare */:
      case 0x50 /* P: Prepare */:
      case 0x4b /* K: Commit Prepared */:
      case 0x72 /* r: Rollback Prepared */:
      case 0x70 /* p: Stream Prepare */:
        // Two-phase messages only come with the two_phase option, which Sluice does not request.
        return;
      default:
        throw new SourceError('protocol', `unknown pgoutput message type 0x${(type ?? 0).toString(16)}`);
    }
  }

  /** In a stream block, DML carries the (sub)transaction's xid. */
  #streamPrefix(): number {
    return this.#inStream ? this.#uint32() : 0;
  }

  #route(sub: number, event: ChangeEvent, bytes: number, out: ChangeEvent[]): void {
    if (this.#inStream) this.#hold(sub, event, bytes);
    else out.push(event);
  }

  #hold(sub: number, event: ChangeEvent, bytes: number): void {
    const transaction = this.#streamed.get(this.#streamXid);
    if (!transaction)
      throw new SourceError('protocol', 'pgoutput change outside a known streamed transaction');
    if (!transaction.firstChange.has(sub)) transaction.firstChange.set(sub, transaction.events.length);
    transaction.events.push(event);
    transaction.bytes += bytes;
    if (transaction.bytes > this.#maxStreamed)
      throw new SourceError('overflow', `streamed transaction ${this.#streamXid} exceeds the buffer bound`, {
        solution: 'raise maxStreamedTransactionBytes or split the transaction',
      });
  }

  #emitSchema(event: SchemaEvent, out: ChangeEvent[]): void {
    const id = `${event.schema.table.schema}\0${event.schema.table.name}`;
    const previous = this.#emitted.get(id);
    if (previous && sameSchema(previous, event.schema)) return;
    this.#emitted.set(id, event.schema);
    out.push({ ...event, ...diffSchema(previous, event.schema) });
  }

  #relation(oid: number): Relation {
    const relation = this.#relations.get(oid);
    if (!relation)
      throw new SourceError('protocol', `pgoutput referenced relation ${oid} before describing it`);
    return relation;
  }

  #readRelation(): RawRelation {
    if (this.#inStream) this.#position += 4;
    const oid = this.#uint32();
    const schema = this.#cstring();
    const name = this.#cstring();
    const replicaIdentity = this.#buffer[this.#position++]!;
    const count = this.#buffer.readUInt16BE(this.#position);
    this.#position += 2;
    const columns: RawRelation['columns'] = [];
    for (let index = 0; index < count; index++) {
      const flags = this.#buffer[this.#position++]!;
      const columnName = this.#cstring();
      const typeOid = this.#uint32();
      const modifier = this.#buffer.readInt32BE(this.#position);
      this.#position += 4;
      columns.push({ flags, name: columnName, typeOid, modifier });
    }
    return { oid, schema, name, replicaIdentity, columns };
  }

  #tuple(relation: Relation): Row {
    const buffer = this.#buffer;
    const count = buffer.readUInt16BE(this.#position);
    this.#position += 2;
    if (count > relation.names.length)
      throw new SourceError(
        'protocol',
        `pgoutput tuple has ${count} columns, relation has ${relation.names.length}`,
      );
    const row: Row = {};
    for (let index = 0; index < count; index++) {
      const kind = buffer[this.#position++];
      const name = relation.names[index]!;
      let value: ColumnValue;
      if (kind === 0x74 /* t */) {
        const length = buffer.readUInt32BE(this.#position);
        const start = this.#position + 4;
        this.#position = start + length;
        value = relation.decoders[index]!(buffer.toString('utf8', start, this.#position));
      } else if (kind === 0x6e /* n */) {
        value = null;
      } else if (kind === 0x75 /* u */) {
        value = UNCHANGED_TOAST;
      } else if (kind === 0x62 /* b */) {
        const length = buffer.readUInt32BE(this.#position);
        const start = this.#position + 4;
        this.#position = start + length;
        value = buffer.toString('hex', start, this.#position);
      } else {
        throw new SourceError('protocol', `unknown pgoutput tuple column kind 0x${(kind ?? 0).toString(16)}`);
      }
      row[name] = value;
    }
    return row;
  }

  #uint32(): number {
    const value = this.#buffer.readUInt32BE(this.#position);
    this.#position += 4;
    return value;
  }

  #int64(): bigint {
    const value = this.#buffer.readBigUInt64BE(this.#position);
    this.#position += 8;
    return value;
  }

  #timestamp(): Date {
    const micros = this.#buffer.readBigInt64BE(this.#position);
    this.#position += 8;
    return new Date(Number(micros / 1000n) + postgresEpochMs);
  }

  #cstring(): string {
    const end = this.#buffer.indexOf(0, this.#position);
    if (end < 0) throw new SourceError('protocol', 'pgoutput string without terminator');
    const value = this.#buffer.toString('utf8', this.#position, end);
    this.#position = end + 1;
    return value;
  }
}

function pick(row: Row, names: string[]): Row {
  const key: Row = {};
  for (const name of names) key[name] = row[name] ?? null;
  return key;
}
