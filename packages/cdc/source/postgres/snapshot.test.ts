import { createTestDatabase, waitFor } from '@sluice/testkit';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { ChangeEvent, Row, TableRef } from '../../change-event.ts';
import {
  CopyTextParser,
  PostgresSource,
  type SnapshotCheckpointStore,
  type SnapshotProgress,
  type SnapshotRange,
  SourceError,
} from './index.ts';
import { MemoryTable, readUntil, testConnection } from './testing/memory-table.ts';
import { forEachServer } from './testing/servers.ts';
import { decoderFor } from './value-decoder.ts';

const items: TableRef = { schema: 'public', name: 'items' };

function memoryStore(): SnapshotCheckpointStore & { planned?: SnapshotRange[]; completed: SnapshotRange[] } {
  const store = {
    planned: undefined as SnapshotRange[] | undefined,
    completed: [] as SnapshotRange[],
    async load() {
      return store.planned ? { planned: store.planned, completed: [...store.completed] } : undefined;
    },
    async savePlan(planned: SnapshotRange[]) {
      store.planned = planned;
    },
    async completeRange(range: SnapshotRange) {
      store.completed.push(range);
    },
  };
  return store;
}

/** Random inserts, updates and deletes on `items` until stopped. */
function startWriter(config: pg.ClientConfig) {
  const client = new pg.Client(config);
  let running = true;
  const state = { ops: 0 };
  const done = (async () => {
    client.on('error', () => undefined);
    await client.connect();
    let next = 100_000;
    while (running) {
      const id = 1 + Math.floor(Math.random() * 4000);
      const pick = Math.random();
      if (pick < 0.35) await client.query('update items set v = v || $2, n = n + 1 where id = $1', [id, 'u']);
      else if (pick < 0.55) await client.query('delete from items where id = $1', [id]);
      else if (pick < 0.85)
        await client.query(`insert into items values ($1::int, repeat('w', 150), $1::int8)`, [next++]);
      else {
        await client.query('begin');
        await client.query(
          `insert into items values ($1, 'in-tx', 1) on conflict (id) do update set v = 'upserted'`,
          [id],
        );
        await client.query('update items set id = $2 where id = $1', [id, next++]);
        await client.query('commit');
      }
      state.ops++;
    }
    await client.end();
  })().catch(async (error: unknown) => {
    await client.end().catch(() => undefined);
    throw error;
  });
  done.catch(() => undefined);
  return {
    state,
    async stop() {
      running = false;
      await done;
    },
  };
}

async function sourceRows(client: pg.Client): Promise<Row[]> {
  const { rows } = await client.query<Row>('select id, v, n::text as n from items order by id');
  return rows;
}

function replicaRows(replica: MemoryTable): Row[] {
  return [...replica.rows.values()].sort((a, b) => (a.id as number) - (b.id as number));
}

/** Streams until a marker message emitted now has committed, applying everything to `replica`. */
async function catchUp(
  source: pg.Client,
  stream: Awaited<ReturnType<PostgresSource['stream']>>,
  replica: MemoryTable,
) {
  const marker = `done-${Math.random()}`;
  await source.query(`select pg_logical_emit_message(true, $1, '')`, [marker]);
  let seen = false;
  await readUntil(
    stream,
    (event: ChangeEvent) => {
      if (event.kind === 'message' && event.prefix === marker) seen = true;
      return seen && event.kind === 'commit';
    },
    (event) => replica.apply(event),
  );
}

describe('COPY text parsing', () => {
  it('reads NULLs, escapes and rows split across chunks', () => {
    const parser = new CopyTextParser(
      ['a', 'b', 'c'],
      [decoderFor({ oid: 23, name: 'int4', modifier: -1, kind: 'base' }), (t) => t, (t) => t],
    );
    const rows: Row[] = [];
    parser.push(Buffer.from('1\ta\\tb\\\\c\\n\t\\N\n2\t\\303\\251'), rows);
    parser.push(Buffer.from('\tx\n'), rows);
    parser.end();
    expect(rows).toEqual([
      { a: 1, b: 'a\tb\\c\n', c: null },
      { a: 2, b: 'é', c: 'x' },
    ]);
  });
});

forEachServer((server) => {
  it.each([1, 4])(
    'a snapshot with %i connections plus the stream equals the source under concurrent inserts, updates and deletes',
    async (parallelism) => {
      const db = await createTestDatabase('snapshot', server());
      const writer = { stop: async () => undefined } as { stop(): Promise<void> };
      const source = new PostgresSource({
        connection: testConnection(server(), db.name),
        job: 'snap',
        tables: [items],
      });
      try {
        await db.client.query('create table items (id int primary key, v text not null, n int8 not null)');
        await db.client.query(
          `insert into items select g, repeat('x', 200) || g, g from generate_series(1, 3000) g`,
        );
        const running = startWriter(db.config);
        writer.stop = running.stop;
        await waitFor(() => running.state.ops > 20, { description: 'writes before setup' });
        await db.client.query('analyze items');

        const setup = await source.setup();
        expect(setup.slotCreated).toBe(true);
        expect(setup.schemas[0]?.primaryKey).toEqual(['id']);
        const replica = new MemoryTable(items, ['id']);
        const store = memoryStore();
        const progress: SnapshotProgress[] = [];
        const result = await source.snapshot({
          store,
          parallelism,
          rangePages: 8,
          batchRows: 500,
          onBatch: async (batch) => {
            for (const row of batch.rows) replica.upsert(row);
          },
          onProgress: (p) => progress.push(p),
        });
        expect(result.copied.length).toBe(store.planned?.length);
        expect(result.copied.length).toBeGreaterThan(4);
        const last = progress.at(-1)!;
        expect(last.rangesDone).toBe(last.rangesTotal);
        expect(last.rowsDone).toBe(result.rows);
        expect(last.bytesDone).toBe(result.bytes);
        expect(last.bytesDone).toBeGreaterThan(last.rowsDone * 200);
        expect(last.rowsEstimate).toBeGreaterThan(2000);

        const stream = await source.stream({ startLsn: setup.consistentPoint });
        const opsAfterSnapshot = running.state.ops;
        await waitFor(() => running.state.ops > opsAfterSnapshot + 30, {
          description: 'writes while streaming',
        });
        await running.stop();
        await catchUp(db.client, stream, replica);
        expect(replicaRows(replica)).toEqual(await sourceRows(db.client));
      } finally {
        await writer.stop();
        await source.close();
        await db.drop();
      }
    },
  );

  it('after a kill during the snapshot, a restart copies only the unfinished ranges and the result is exact', async () => {
    const db = await createTestDatabase('restart', server());
    const writer = { stop: async () => undefined } as { stop(): Promise<void> };
    const connection = testConnection(server(), db.name);
    let first: PostgresSource | undefined = new PostgresSource({
      connection,
      job: 'restart',
      tables: [items],
    });
    let second: PostgresSource | undefined;
    try {
      await db.client.query('create table items (id int primary key, v text not null, n int8 not null)');
      await db.client.query(
        `insert into items select g, repeat('x', 200) || g, g from generate_series(1, 3000) g`,
      );
      const running = startWriter(db.config);
      writer.stop = running.stop;
      const replica = new MemoryTable(items, ['id']);
      const store = memoryStore();

      const setup = await first.setup();
      let completedBeforeCrash = 0;
      let killed = false;
      const crashingStore: SnapshotCheckpointStore = {
        load: () => store.load(),
        savePlan: (planned) => store.savePlan(planned),
        completeRange: async (range) => {
          await store.completeRange(range);
          completedBeforeCrash++;
        },
      };
      await expect(
        first.snapshot({
          store: crashingStore,
          parallelism: 2,
          rangePages: 4,
          batchRows: 200,
          onBatch: async (batch) => {
            if (completedBeforeCrash >= 5 && !killed) {
              // The worker dies: every connection of the source is cut from the server side.
              killed = true;
              await db.client.query(
                `select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = current_database() and application_name = 'sluice'`,
              );
            }
            for (const row of batch.rows) replica.upsert(row);
          },
        }),
      ).rejects.toBeInstanceOf(SourceError);
      expect(killed).toBe(true);
      await first.close();
      first = undefined;
      const planned = store.planned ?? [];
      const finished = new Set(store.completed.map((range) => range.index));
      expect(finished.size).toBeGreaterThanOrEqual(5);
      expect(finished.size).toBeLessThan(planned.length);

      second = new PostgresSource({ connection, job: 'restart', tables: [items] });
      const again = await second.setup();
      expect(again.slotCreated).toBe(false);
      expect(again.consistentPoint).toBe(setup.consistentPoint);
      const copiedIndexes: number[] = [];
      const result = await second.snapshot({
        store,
        parallelism: 3,
        rangePages: 4,
        onBatch: async (batch) => {
          if (batch.last) copiedIndexes.push(batch.range.index);
          for (const row of batch.rows) replica.upsert(row);
        },
      });
      const unfinished = planned.filter((range) => !finished.has(range.index)).map((range) => range.index);
      expect(copiedIndexes.sort((a, b) => a - b)).toEqual(unfinished);
      expect(result.copied.length).toBe(unfinished.length);
      expect(store.completed.length).toBe(planned.length);

      const stream = await second.stream();
      await running.stop();
      await catchUp(db.client, stream, replica);
      expect(replicaRows(replica)).toEqual(await sourceRows(db.client));
    } finally {
      await writer.stop();
      await first?.close();
      await second?.close();
      await db.drop();
    }
  });
});

forEachServer((server) => {
  it('resync after a rewriting ADD COLUMN, with writes going on and the stream paused, then streaming on: the replica equals the table, new column included', async () => {
    const db = await createTestDatabase('resync', server());
    const writer = { stop: async () => undefined } as { stop(): Promise<void> };
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'resync',
      tables: [items],
    });
    try {
      await db.client.query('create table items (id int primary key, v text not null, n int8 not null)');
      await db.client.query(
        `insert into items select g, repeat('x', 200) || g, g from generate_series(1, 3000) g`,
      );
      const running = startWriter(db.config);
      writer.stop = running.stop;
      const setup = await source.setup();
      const replica = new MemoryTable(items, ['id']);
      await source.snapshot({
        store: memoryStore(),
        onBatch: async (batch) => {
          for (const row of batch.rows) replica.upsert(row);
        },
      });
      const stream = await source.stream({ startLsn: setup.consistentPoint });

      // PostgreSQL fills r for the old rows by rewriting the table: no WAL will ever carry those values.
      await db.client.query('alter table items add column r float8 default random()');
      const seen = await readUntil(
        stream,
        (event) => event.kind === 'schema' && event.added.some((column) => column.name === 'r'),
        (event) => replica.apply(event),
      );
      const schema = seen.at(-1);
      expect(schema?.kind === 'schema' && schema.added[0]?.backfill).toBe('unknown');

      // The stream is not read while the table is copied again; the writer goes on.
      const opsBefore = running.state.ops;
      const progress: SnapshotProgress[] = [];
      let copied = 0;
      const result = await source.resync(items, {
        parallelism: 3,
        rangePages: 4,
        batchRows: 300,
        onBatch: async (batch) => {
          expect(batch.table).toEqual(items);
          copied += batch.rows.length;
          for (const row of batch.rows) {
            expect(typeof row.r).toBe('number');
            replica.upsert(row);
          }
        },
        onProgress: (p) => progress.push(p),
      });
      expect(result.rows).toBe(copied);
      expect(result.rows).toBeGreaterThan(2000);
      expect(progress.at(-1)).toMatchObject({
        rowsDone: result.rows,
        rangesDone: progress.at(-1)?.rangesTotal,
      });
      expect(progress.at(-1)!.rangesTotal).toBeGreaterThan(3);
      await waitFor(() => running.state.ops > opsBefore + 30, { description: 'writes after the copy' });
      await running.stop();
      await catchUp(db.client, stream, replica);

      const { rows } = await db.client.query<Row>('select id, v, n::text as n, r from items order by id');
      expect(rows.every((row) => typeof row.r === 'number')).toBe(true);
      expect(replicaRows(replica)).toEqual(rows);
    } finally {
      await writer.stop();
      await source.close();
      await db.drop();
    }
  });

  it('resync decodes every value as the snapshot does, copies only the columns asked for (and the key), and names a missing table or column', async () => {
    const db = await createTestDatabase('resync_values', server());
    const zoo: TableRef = { schema: 'Odd "schema"', name: 'Zoo, with commas' };
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'resync_values',
      tables: [zoo],
    });
    try {
      await db.client.query(`
        create schema "Odd ""schema""";
        create type mood as enum ('sad', 'ok');
        create table "Odd ""schema"""."Zoo, with commas" (
          k text, k2 int, t text, b bytea, ts timestamptz, d date, num numeric, big int8, f float8, flag bool,
          j jsonb, ia int[], ta text[], u uuid, iv interval, m mood, primary key (k, k2));
        insert into "Odd ""schema"""."Zoo, with commas"
          select 'key ' || g, g, E'tab\\there\\nnewline \\\\ back' || repeat('z', g * 50), decode(md5(g::text), 'hex'),
                 timestamptz '2024-03-01 12:00:00.5+02' + g * interval '1 hour', date '0044-03-15 BC' + g,
                 g / 7.0, 9007199254740993 + g, case g % 3 when 0 then 'NaN'::float8 else -g / 3.0 end, g % 2 = 0,
                 jsonb_build_object('g', g, 'big', 12345678901234567890), array[g, null, -g],
                 array['a,b', 'c"d', null, 'NULL'], md5(g::text)::uuid, g * interval '1 day 2 hours', 'ok'
            from generate_series(1, 400) g;
        insert into "Odd ""schema"""."Zoo, with commas" (k, k2) values ('nulls', 0);`);
      await source.setup();
      const snapshotRows: Row[] = [];
      await source.snapshot({
        store: memoryStore(),
        onBatch: async (batch) => {
          snapshotRows.push(...batch.rows);
        },
      });
      const resyncRows: Row[] = [];
      const result = await source.resync(zoo, {
        parallelism: 2,
        rangePages: 2,
        batchRows: 50,
        onBatch: async (batch) => {
          resyncRows.push(...batch.rows);
        },
      });
      const byKey = (a: Row, b: Row) =>
        `${String(a.k)}\0${String(a.k2).padStart(4)}` < `${String(b.k)}\0${String(b.k2).padStart(4)}`
          ? -1
          : 1;
      expect(result.rows).toBe(401);
      expect(resyncRows.sort(byKey)).toEqual(snapshotRows.sort(byKey));
      expect(resyncRows.find((row) => row.k2 === 3)).toMatchObject({
        b: 'eccbc87e4b5ce2fe28308fd9f2a7baf3',
        ia: [3, null, -3],
        ta: ['a,b', 'c"d', null, 'NULL'],
        f: 'NaN',
        big: '9007199254740996',
      });

      const narrow: Row[] = [];
      await source.resync(zoo, {
        columns: ['flag'],
        onBatch: async (batch) => {
          narrow.push(...batch.rows);
        },
      });
      expect(narrow.sort(byKey)).toEqual(
        snapshotRows.map((row) => ({ k: row.k, k2: row.k2, flag: row.flag })),
      );

      const noColumn = await source
        .resync(zoo, { columns: ['gone'], onBatch: async () => undefined })
        .catch((error) => error);
      expect(noColumn).toBeInstanceOf(SourceError);
      expect(noColumn).toMatchObject({ code: 'table' });
      const noTable = await source
        .resync({ schema: 'public', name: 'absent' }, { onBatch: async () => undefined })
        .catch((error) => error);
      expect(noTable).toMatchObject({ code: 'table' });
      const { rows } = await db.client.query(
        `select count(*)::int as open from pg_stat_activity where datname = current_database() and application_name = 'sluice'`,
      );
      expect(rows[0].open).toBe(0);
    } finally {
      await source.close();
      await db.drop();
    }
  });
});

forEachServer((server) => {
  it('resync started while a table rewrite is uncommitted waits for it and copies the rewritten rows (its snapshot is taken after the lock, where an earlier one would see an empty table)', async () => {
    const db = await createTestDatabase('resync_rewrite', server());
    const other = new pg.Client(db.config);
    const source = new PostgresSource({
      connection: testConnection(server(), db.name),
      job: 'resync_rewrite',
      tables: [items],
    });
    try {
      await other.connect();
      await db.client.query('create table items (id int primary key, v text not null, n int8 not null)');
      await db.client.query(`insert into items select g, 'v' || g, g from generate_series(1, 500) g`);
      await other.query('begin');
      await other.query('alter table items add column r float8 default random()');
      const rows: Row[] = [];
      const copy = source.resync(items, {
        onBatch: async (batch) => {
          rows.push(...batch.rows);
        },
      });
      await waitFor(
        async () => {
          const { rows: waiting } = await db.client.query(
            `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          );
          return waiting.length > 0;
        },
        { description: 'resync waiting for the rewrite' },
      );
      await other.query('commit');
      expect((await copy).rows).toBe(500);
      expect(rows).toHaveLength(500);
      expect(rows.every((row) => typeof row.r === 'number')).toBe(true);
    } finally {
      await other.end().catch(() => undefined);
      await source.close();
      await db.drop();
    }
  });
});
