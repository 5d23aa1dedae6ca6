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
