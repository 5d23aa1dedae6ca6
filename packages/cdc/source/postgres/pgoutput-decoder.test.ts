import { describe, expect, it } from 'vitest';
import type { ChangeEvent, TableSchema } from '../../change-event.ts';
import { UNCHANGED_TOAST } from '../../change-event.ts';
import { PgoutputDecoder, type RawRelation } from './pgoutput-decoder.ts';

/** Builds pgoutput messages byte by byte, framed like XLogData (25-byte header). */
class Message {
  readonly #parts: Buffer[] = [];
  constructor(type: string) {
    this.#parts.push(Buffer.alloc(25), Buffer.from(type, 'latin1'));
  }
  int8(value: number) {
    this.#parts.push(Buffer.from([value]));
    return this;
  }
  int16(value: number) {
    const buffer = Buffer.alloc(2);
    buffer.writeUInt16BE(value);
    this.#parts.push(buffer);
    return this;
  }
  int32(value: number) {
    const buffer = Buffer.alloc(4);
    buffer.writeInt32BE(value);
    this.#parts.push(buffer);
    return this;
  }
  int64(value: bigint) {
    const buffer = Buffer.alloc(8);
    buffer.writeBigInt64BE(value);
    this.#parts.push(buffer);
    return this;
  }
  string(value: string) {
    this.#parts.push(Buffer.from(value, 'utf8'), Buffer.from([0]));
    return this;
  }
  text(value: string) {
    const bytes = Buffer.from(value, 'utf8');
    return this.int8(0x74).int32(bytes.length).raw(bytes);
  }
  raw(bytes: Buffer) {
    this.#parts.push(bytes);
    return this;
  }
  build() {
    return Buffer.concat(this.#parts);
  }
}

const relationOid = 16400;

function relation(xid?: number): Buffer {
  const message = new Message('R');
  if (xid !== undefined) message.int32(xid);
  return message
    .int32(relationOid)
    .string('public')
    .string('t')
    .int8(0x64)
    .int16(2)
    .int8(1)
    .string('id')
    .int32(23)
    .int32(-1)
    .int8(0)
    .string('body')
    .int32(25)
    .int32(-1)
    .build();
}

function insert(id: number, xid?: number): Buffer {
  const message = new Message('I');
  if (xid !== undefined) message.int32(xid);
  return message.int32(relationOid).int8(0x4e).int16(2).text(String(id)).text(`row ${id}`).build();
}

function decoder(version = 4) {
  return new PgoutputDecoder({
    protocolVersion: version,
    describe: (raw: RawRelation): TableSchema => ({
      table: { schema: raw.schema, name: raw.name },
      columns: raw.columns.map((column) => ({
        name: column.name,
        type: {
          oid: column.typeOid,
          name: column.typeOid === 23 ? 'int4' : 'text',
          modifier: -1,
          kind: 'base',
        },
        nullable: true,
      })),
      primaryKey: ['id'],
    }),
  });
}

function run(target: PgoutputDecoder, messages: Buffer[]): ChangeEvent[] {
  const out: ChangeEvent[] = [];
  for (const message of messages) target.decode(message, 25, 100n, out);
  return out;
}

const begin = (xid: number) => new Message('B').int64(500n).int64(0n).int32(xid).build();
const commit = () => new Message('C').int8(0).int64(500n).int64(520n).int64(0n).build();
const streamStart = (xid: number) => new Message('S').int32(xid).int8(1).build();
const streamStop = () => new Message('E').build();
const streamCommit = (xid: number) =>
  new Message('c').int32(xid).int8(0).int64(900n).int64(920n).int64(0n).build();

describe('the pgoutput decoder', () => {
  it('decodes a transaction with a first-sight schema, an update with an unchanged TOAST column and a delete by key', () => {
    const update = new Message('U')
      .int32(relationOid)
      .int8(0x4b)
      .int16(2)
      .text('1')
      .int8(0x6e)
      .int8(0x4e)
      .int16(2)
      .text('2')
      .int8(0x75)
      .build();
    const remove = new Message('D').int32(relationOid).int8(0x4b).int16(2).text('2').int8(0x6e).build();
    const events = run(decoder(), [begin(7), relation(), insert(1), update, remove, commit()]);
    expect(events.map((event) => event.kind)).toEqual([
      'begin',
      'schema',
      'insert',
      'update',
      'delete',
      'commit',
    ]);
    expect(events[3]).toMatchObject({ row: { id: 2, body: UNCHANGED_TOAST }, oldKey: { id: 1 } });
    expect(events[4]).toMatchObject({ key: { id: 2 } });
    expect(events[5]).toMatchObject({ xid: 7, commitLsn: 500n, endLsn: 520n });
  });

  it('holds a streamed transaction until its commit and drops an aborted subtransaction and everything after it', () => {
    const target = decoder();
    const abortSub = new Message('A').int32(40).int32(41).int64(0n).int64(0n).build();
    const held = run(target, [
      streamStart(40),
      relation(40),
      insert(1, 40),
      insert(2, 41),
      insert(3, 42),
      streamStop(),
      streamStart(40),
      abortSub,
    ]);
    expect(held).toEqual([]);
    expect(target.bufferedStreamBytes).toBeGreaterThan(0);
    const events = run(target, [insert(4, 40), streamStop(), streamCommit(40)]);
    expect(events.map((event) => (event.kind === 'insert' ? event.row.id : event.kind))).toEqual([
      'begin',
      'schema',
      1,
      4,
      'commit',
    ]);
    expect(events.at(-1)).toMatchObject({ xid: 40, commitLsn: 900n, endLsn: 920n });
    expect(target.bufferedStreamBytes).toBe(0);
  });

  it('drops a whole streamed transaction at its abort, and interleaves other transactions by commit', () => {
    const target = decoder();
    const abort = new Message('A').int32(50).int32(50).build();
    const events = run(target, [
      streamStart(50),
      relation(50),
      insert(1, 50),
      streamStop(),
      begin(51),
      relation(),
      insert(9),
      commit(),
      streamStart(50),
      insert(2, 50),
      streamStop(),
      abort,
    ]);
    expect(
      events
        .filter((event) => event.kind === 'insert')
        .map((event) => event.kind === 'insert' && event.row.id),
    ).toEqual([9]);
    expect(target.stats.streamAborts).toBe(1);
  });

  it('tolerates two-phase and origin messages, passes logical messages on, and refuses unknown types', () => {
    const target = decoder(3);
    const message = new Message('M')
      .int8(1)
      .int64(777n)
      .string('sluice.heartbeat')
      .int32(2)
      .raw(Buffer.from('hi'))
      .build();
    const events = run(target, [
      new Message('b').int64(1n).int64(2n).int64(0n).int32(5).string('gid').build(),
      new Message('O').int64(1n).string('origin').build(),
      message,
    ]);
    expect(events).toEqual([
      {
        kind: 'message',
        lsn: 777n,
        transactional: true,
        prefix: 'sluice.heartbeat',
        content: Buffer.from('hi'),
      },
    ]);
    expect(() => run(target, [new Message('Z').build()])).toThrow(/unknown pgoutput message type 0x5a/);
    expect(() => run(target, [insert(1)])).toThrow(/before describing it/);
  });

  it('fails with an overflow error when a streamed transaction passes its bound', () => {
    const target = new PgoutputDecoder({
      protocolVersion: 2,
      maxStreamedTransactionBytes: 200,
      describe: (raw) => ({
        table: { schema: raw.schema, name: raw.name },
        columns: raw.columns.map((column) => ({
          name: column.name,
          type: { oid: column.typeOid, name: 'text', modifier: -1, kind: 'base' },
          nullable: true,
        })),
        primaryKey: ['id'],
      }),
    });
    const messages = [streamStart(60), relation(60)];
    for (let id = 0; id < 10; id++) messages.push(insert(id, 60));
    expect(() => run(target, messages)).toThrow(expect.objectContaining({ code: 'overflow' }));
  });
});
