import { createTestDatabase, type TestDatabase, waitFor } from '@sluice/testkit';
import pg from 'pg';
import { expect, it } from 'vitest';
import type { ChangeEvent, Lsn, TableRef } from '../../change-event.ts';
import { formatLsn, parseLsn, UNCHANGED_TOAST } from '../../change-event.ts';
import { HEARTBEAT_PREFIX, PostgresSource, type ReplicationStream } from './index.ts';
import { collect, MemoryTable, testConnection } from './testing/memory-table.ts';
import { forEachServer } from './testing/servers.ts';

const table = (name: string): TableRef => ({ schema: 'public', name });

/** Events of `kind` (and table) seen so far. */
function dml(events: ChangeEvent[]): ChangeEvent[] {
  return events.filter((event) => ['insert', 'update', 'delete', 'truncate', 'schema'].includes(event.kind));
}

async function emitMarker(client: pg.Client, events: ChangeEvent[]): Promise<void> {
  const marker = `marker-${Math.random()}`;
  await client.query(`select pg_logical_emit_message(true, $1, '')`, [marker]);
  await waitFor(
    () => {
      const failed = events.find((event) => event.kind === 'message' && event.prefix === 'stream-error');
      if (failed?.kind === 'message') throw new Error(failed.content.toString());
      const at = events.findIndex((event) => event.kind === 'message' && event.prefix === marker);
      return at >= 0 && events.slice(at).some((event) => event.kind === 'commit');
    },
    { description: `marker ${marker}` },
  );
}

async function slotFlush(client: pg.Client, slot: string): Promise<Lsn> {
  const { rows } = await client.query<{ lsn: string }>(
    'select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1',
    [slot],
  );
  return parseLsn(rows[0]!.lsn);
}

forEachServer((server) => {
  async function open(
    label: string,
    ddl: string,
    tables: TableRef[],
    options: Parameters<PostgresSource['stream']>[0] = {},
  ): Promise<{ db: TestDatabase; source: PostgresSource; stream: ReplicationStream }> {
    const db = await createTestDatabase(label, server());
    try {
      await db.client.query(ddl);
      const source = new PostgresSource({
        connection: testConnection(server(), db.name),
        job: label,
        tables,
      });
      await source.setup();
      const stream = await source.stream(options);
      return { db, source, stream };
    } catch (error) {
      await db.drop();
      throw error;
    }
  }

  it('a transaction larger than logical_decoding_work_mem is streamed and arrives whole, in order, at commit; aborted work leaves nothing', async () => {
    const { db, source, stream } = await open(
      'streamed',
      'create table big (id int primary key, pad text)',
      [table('big')],
      {
        settings: { logical_decoding_work_mem: '64kB' },
      },
    );
    const other = new pg.Client(db.config);
    try {
      await other.connect();
      const { events } = collect(stream);
      await db.client.query('begin');
      await db.client.query(`insert into big select g, repeat('p', 100) from generate_series(1, 3000) g`);
      await db.client.query('savepoint s1');
      await db.client.query(`insert into big select g, 'rolled back' from generate_series(10001, 10500) g`);
      await db.client.query('rollback to savepoint s1');
      await db.client.query(`insert into big values (20000, 'after savepoint')`);
      await other.query(`insert into big values (50000, 'small, committed first')`);
      await db.client.query('commit');
      await db.client.query('begin');
      await db.client.query(
        `insert into big select g, repeat('a', 100) from generate_series(30001, 33000) g`,
      );
      await db.client.query('rollback');
      await emitMarker(db.client, events);

      expect(stream.stats.streamedCommits).toBeGreaterThanOrEqual(1);
      expect(stream.stats.streamAborts).toBeGreaterThanOrEqual(1);
      const transactions: ChangeEvent[][] = [];
      let current: ChangeEvent[] | undefined;
      for (const event of events) {
        if (event.kind === 'begin') current = [];
        else if (event.kind === 'commit') {
          if (current) transactions.push(current);
          current = undefined;
        } else if (event.kind === 'insert') current?.push(event);
      }
      const ids = transactions.map((inserts) =>
        inserts.map((event) => (event.kind === 'insert' ? event.row.id : 0)),
      );
      const withRows = ids.filter((list) => list.length > 0);
      expect(withRows).toHaveLength(2);
      expect(withRows[0]).toEqual([50000]);
      expect(withRows[1]).toEqual([...Array.from({ length: 3000 }, (_, index) => index + 1), 20000]);
      const begins = events.filter((event) => event.kind === 'begin');
      const commits = events.filter((event) => event.kind === 'commit');
      expect(begins.length).toBe(commits.length);
    } finally {
      await other.end().catch(() => undefined);
      await source.close();
      await db.drop();
    }
  });

  it('an update that leaves a large TOASTed column alone marks that column unchanged, never NULL', async () => {
    const { db, source, stream } = await open(
      'toast',
      `create table docs (id int primary key, body text, n int);
       alter table docs alter column body set storage external`,
      [table('docs')],
    );
    try {
      const replica = new MemoryTable(table('docs'), ['id']);
      const { events } = collect(stream, (event) => replica.apply(event));
      await db.client.query(
        `insert into docs select 1, string_agg(md5(g::text), '') from generate_series(1, 400) g, lateral (select 1) x`,
      );
      await db.client.query('update docs set n = 2 where id = 1');
      await emitMarker(db.client, events);
      const update = events.find((event) => event.kind === 'update');
      expect(update?.kind === 'update' && update.row.body).toBe(UNCHANGED_TOAST);
      expect(update?.kind === 'update' && update.row.n).toBe(2);
      const { rows } = await db.client.query<{ id: number; body: string; n: number }>(
        'select id, body, n from docs',
      );
      expect([...replica.rows.values()]).toEqual(rows);
      expect(rows[0]?.body.length).toBe(12_800);
    } finally {
      await source.close();
      await db.drop();
    }
  });

  it('ADD COLUMN, a type change, DROP COLUMN and TRUNCATE arrive as events in order', async () => {
    const { db, source, stream } = await open('ddl', 'create table evolving (id int primary key, a text)', [
      table('evolving'),
    ]);
    try {
      const { events } = collect(stream);
      await db.client.query(`insert into evolving values (1, 'one')`);
      await db.client.query('alter table evolving add column b int');
      await db.client.query(`insert into evolving values (2, 'two', 2)`);
      await db.client.query('alter table evolving alter column b type bigint');
      await db.client.query(`insert into evolving values (3, 'three', 3)`);
      await db.client.query('alter table evolving drop column a');
      await db.client.query('insert into evolving values (4, 4)');
      await db.client.query('truncate evolving restart identity');
      await db.client.query('insert into evolving values (5, 5)');
      await emitMarker(db.client, events);

      const summary = dml(events).map((event) => {
        if (event.kind === 'schema')
          return `schema +${event.added.map((c) => c.name).join(',')} -${event.dropped.join(',')} ~${event.retyped
            .map((c) => `${c.name}:${c.type.name}`)
            .join(',')} [${event.schema.columns.map((c) => c.name).join(',')}]`;
        if (event.kind === 'insert') return `insert ${JSON.stringify(event.row)}`;
        if (event.kind === 'truncate')
          return `truncate ${event.tables.map((t) => t.name).join(',')} ${event.restartIdentity}`;
        return event.kind;
      });
      expect(summary).toEqual([
        'schema + - ~ [id,a]',
        'insert {"id":1,"a":"one"}',
        'schema +b - ~ [id,a,b]',
        'insert {"id":2,"a":"two","b":2}',
        'schema + - ~b:int8 [id,a,b]',
        'insert {"id":3,"a":"three","b":"3"}',
        'schema + -a ~ [id,b]',
        'insert {"id":4,"b":"4"}',
        'truncate evolving true',
        'insert {"id":5,"b":"5"}',
      ]);
    } finally {
      await source.close();
      await db.drop();
    }
  });

  it('confirmed_flush_lsn never passes what the consumer declared durable, and heartbeats keep an idle slot moving', async () => {
    const { db, source, stream } = await open(
      'ack',
      'create table acked (id int primary key)',
      [table('acked')],
      {
        heartbeatIntervalMs: 200,
        statusIntervalMs: 100,
      },
    );
    const slot = 'sluice_ack';
    try {
      const { events } = collect(stream);
      for (let id = 1; id <= 5; id++) await db.client.query('insert into acked values ($1)', [id]);
      await waitFor(() => events.filter((event) => event.kind === 'commit').length >= 5, {
        description: 'five commits',
      });
      const commits = events.filter((event) => event.kind === 'commit');
      const declared = commits[1]!.kind === 'commit' ? commits[1]!.endLsn : 0n;
      stream.acknowledge(declared);
      await waitFor(async () => (await slotFlush(db.client, slot)) === declared, {
        description: `confirmed_flush at ${formatLsn(declared)}`,
      });
      // Several status and heartbeat cycles later, with more commits received, it has not moved on.
      const heartbeatsBefore = events.filter(
        (event) => event.kind === 'message' && event.prefix === HEARTBEAT_PREFIX,
      ).length;
      await waitFor(
        async () => {
          expect(await slotFlush(db.client, slot)).toBe(declared);
          return (
            events.filter((event) => event.kind === 'message' && event.prefix === HEARTBEAT_PREFIX).length >=
            heartbeatsBefore + 3
          );
        },
        { description: 'three heartbeats', intervalMs: 25 },
      );
      expect(() => stream.acknowledge(stream.receivedLsn + 1_000_000_000n)).toThrow(RangeError);

      // Now a consumer that acknowledges every commit: on an idle database the slot follows the heartbeats.
      const acknowledgeAll = () => {
        const last = events.filter((event) => event.kind === 'commit').at(-1);
        if (last?.kind === 'commit') stream.acknowledge(last.endLsn);
      };
      const lags: bigint[] = [];
      let previous = await slotFlush(db.client, slot);
      for (let cycle = 0; cycle < 3; cycle++) {
        const seen = events.length;
        await waitFor(
          () =>
            events.slice(seen).some((event) => event.kind === 'message' && event.prefix === HEARTBEAT_PREFIX),
          { description: 'a heartbeat' },
        );
        await waitFor(() => events.slice(seen).some((event) => event.kind === 'commit'), {
          description: 'its commit',
        });
        acknowledgeAll();
        const target = stream.durableLsn;
        await waitFor(async () => (await slotFlush(db.client, slot)) >= target, {
          description: 'the slot to follow',
        });
        const now = await slotFlush(db.client, slot);
        expect(now).toBeGreaterThan(previous);
        previous = now;
        const { rows } = await db.client.query<{ lag: string }>(
          `select (pg_current_wal_lsn() - confirmed_flush_lsn)::text as lag from pg_replication_slots where slot_name = $1`,
          [slot],
        );
        lags.push(BigInt(rows[0]!.lag.split('.')[0]!));
      }
      // Bounded: at most what the whole cluster wrote during one heartbeat cycle, far below a WAL segment.
      for (const lag of lags) expect(lag).toBeLessThan(16n * 1024n * 1024n);
    } finally {
      await source.close();
      await db.drop();
    }
  });
});

forEachServer((server) => {
  it('pauses reading while the consumer is behind and delivers everything once it catches up', async () => {
    const db = await createTestDatabase('backpressure', server());
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'backpressure',
      tables: [table('flood')],
    });
    try {
      await db.client.query('create table flood (id int primary key, pad text)');
      await source.setup();
      const stream = await source.stream({ maxBufferedBytes: 64 * 1024 });
      await db.client.query(`insert into flood select g, repeat('f', 200) from generate_series(1, 20000) g`);
      await waitFor(() => stream.paused, { description: 'reading to pause' });
      // Paused: what waits is bounded by the limit plus what was in flight when it was reached.
      expect(stream.bufferedBytes).toBeLessThan(4 * 1024 * 1024);
      let inserts = 0;
      for await (const batch of stream) {
        inserts += batch.filter((event) => event.kind === 'insert').length;
        if (batch.some((event) => event.kind === 'commit') && inserts >= 20000) break;
      }
      expect(inserts).toBe(20000);
    } finally {
      await source.close();
      await db.drop();
    }
  });
});

forEachServer((server) => {
  it('a slot held by another stream is a precise slot error, and usable once released', async () => {
    const db = await createTestDatabase('busy', server());
    const connection = testConnection(server(), db.name);
    const tables = [table('busy')];
    const first = new PostgresSource({ connection, job: 'busy', tables });
    const second = new PostgresSource({ connection, job: 'busy', tables });
    try {
      await db.client.query('create table busy (id int primary key)');
      await first.setup();
      await first.stream();
      expect((await second.setup()).slotCreated).toBe(false);
      await expect(second.stream({ slotWaitMs: 300 })).rejects.toMatchObject({
        code: 'slot',
        message: expect.stringMatching(/replication slot sluice_busy is in use by process \d+/),
      });
      await first.close();
      const stream = await second.stream();
      const { events } = collect(stream);
      await db.client.query('insert into busy values (1)');
      await waitFor(() => events.some((event) => event.kind === 'insert'), { description: 'the insert' });
    } finally {
      await first.close();
      await second.close();
      await db.drop();
    }
  });
});
