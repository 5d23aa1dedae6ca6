// The pipeline keeps values exact where PostgreSQL writes no WAL for them: columns added with a default to
// a populated table (a constant default PostgreSQL fills from `attmissingval`, a volatile one that rewrote
// the table, a default StarRocks takes no DEFAULT for), and rows whose primary key moved while a TOASTed
// column was unchanged under REPLICA IDENTITY DEFAULT. Real PostgreSQL, the StarRocks emulator.
import { createTestDatabase, type StarRocksEmulator, startStarRocksEmulator, waitFor } from '@sluice/testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableRef } from '../change-event.ts';
import { createStarRocksSink, type StarRocksSink } from '../sink/starrocks/index.ts';
import { StarRocksError } from '../sink/starrocks/starrocks-error.ts';
import { PostgresSource } from '../source/postgres/index.ts';
import { testConnection } from '../source/postgres/testing/memory-table.ts';
import type { Checkpoint } from './checkpoint.ts';
import { Pipeline } from './pipeline.ts';

const items: TableRef = { schema: 'public', name: 'items' };

let emulator: StarRocksEmulator;
beforeAll(async () => {
  emulator = await startStarRocksEmulator({ password: 'emulator-pw' });
});
afterAll(async () => {
  await emulator?.stop();
});

interface Harness {
  db: Awaited<ReturnType<typeof createTestDatabase>>;
  database: string;
  pipeline: Pipeline;
  saved: Checkpoint[];
  run: Promise<void>;
  writes: { table: string; rows: number }[];
}

/** A pipeline over `items`, streaming; `wrap` may inject faults into the sink. */
async function start(
  label: string,
  setupSql: string,
  wrap: (sink: StarRocksSink) => StarRocksSink = (sink) => sink,
): Promise<Harness> {
  const db = await createTestDatabase(label);
  await db.client.query(setupSql);
  const database = `x_${db.name}`;
  const saved: Checkpoint[] = [];
  const writes: { table: string; rows: number }[] = [];
  const pipeline = new Pipeline({
    job: label.replaceAll('-', ''),
    epoch: 1n,
    createSource: () =>
      new PostgresSource({
        connection: testConnection(db.server, db.name),
        job: label.replaceAll('-', '_'),
        tables: [items],
      }),
    createSink: () => {
      const sink = createStarRocksSink({
        datasource: {
          name: 'emulator',
          host: emulator.host,
          httpPort: emulator.fePort,
          queryPort: emulator.mysqlPort,
          user: emulator.user,
          password: emulator.password,
          database,
        },
        minLoadIntervalMs: 50,
      });
      return wrap({
        ...sink,
        async write(table, ops, labels) {
          const result = await sink.write(table, ops, labels);
          writes.push({ table: table.name, rows: ops.length });
          return result;
        },
      });
    },
    checkpoints: { save: async (checkpoint) => void saved.push(checkpoint) },
    batch: { maxRows: 1_000, flushIntervalMs: 100 },
    retryCapMs: 200,
  });
  const run = pipeline.run();
  run.catch(() => undefined);
  await waitFor(() => pipeline.phase === 'streaming', { timeoutMs: 60_000, description: 'streaming' });
  return { db, database, pipeline, saved, run, writes };
}

async function stop(harness: Harness) {
  harness.pipeline.stop({ drain: false });
  await harness.run.catch(() => undefined);
  await harness.db.drop();
}

/** Source rows as `id → {column: text}` (PostgreSQL's text of each value). */
async function sourceTable(
  client: pg.Client,
  columns: string[],
): Promise<Map<string, Record<string, string | null>>> {
  const list = columns.map((column) => `${column}::text as ${column}`).join(', ');
  const { rows } = await client.query<Record<string, string | null>>(
    `select id::text as id, ${list} from items`,
  );
  return new Map(rows.map((row) => [row.id!, row]));
}

function sinkTable(database: string): Map<string, Record<string, unknown>> {
  return new Map(emulator.rows(database, 'items').map((row) => [String(row.id), row]));
}

describe('exact values without WAL', { timeout: 180_000 }, () => {
  it('gives rows that predate ADD COLUMN … NOT NULL DEFAULT 42 the default, as PostgreSQL reads them', async () => {
    const harness = await start(
      'add-default',
      `create table items (id int primary key, name text);
       insert into items select g, 'n' || g from generate_series(1, 300) g;`,
    );
    try {
      await waitFor(() => emulator.rows(harness.database, 'items').length === 300, {
        timeoutMs: 60_000,
        description: 'snapshot',
      });
      await harness.db.client.query(`alter table items add column d int not null default 42`);
      await harness.db.client.query(`alter table items add column t text default 'it''s, {quoted}'`);
      await harness.db.client.query(`insert into items values (301, 'new', 7, 'x')`);
      await waitFor(() => emulator.rows(harness.database, 'items').length === 301, {
        timeoutMs: 60_000,
        description: 'insert after the ALTER',
      });
      const sink = sinkTable(harness.database);
      const source = await sourceTable(harness.db.client, ['d', 't']);
      for (const [id, row] of source) {
        expect(String(sink.get(id)?.d), `row ${id}`).toBe(row.d);
        expect(sink.get(id)?.t, `row ${id}`).toBe(row.t);
      }
      expect(sink.get('1')).toMatchObject({ d: 42, t: "it's, {quoted}" });
      // A constant default travels as StarRocks' own DEFAULT: no copy of the table was needed.
      expect(harness.saved.every((checkpoint) => (checkpoint.resync ?? []).length === 0)).toBe(true);
    } finally {
      await stop(harness);
    }
  });

  it('copies the table again when a volatile default rewrote it, saving the owed copy before the ALTER and surviving a failure mid-copy', async () => {
    let failOnce = true;
    let resyncSeenBeforeFailure = false;
    const harness = await start(
      'add-volatile',
      `create table items (id int primary key, name text);
       insert into items select g, 'n' || g from generate_series(1, 200) g;`,
      (sink) => ({
        ...sink,
        async write(table, ops, labels) {
          // Failpoint: the first copied batch after the ALTER fails as a network error would.
          if (failOnce && String(labels.job).includes('_r')) {
            failOnce = false;
            resyncSeenBeforeFailure = harness.saved.some(
              (checkpoint) => (checkpoint.resync ?? []).length > 0,
            );
            throw new StarRocksError('transient', 'injected: connection reset during the re-copy');
          }
          return sink.write(table, ops, labels);
        },
      }),
    );
    try {
      await waitFor(() => emulator.rows(harness.database, 'items').length === 200, {
        timeoutMs: 60_000,
        description: 'snapshot',
      });
      await harness.db.client.query(`alter table items add column r float8 not null default random()`);
      await harness.db.client.query(`alter table items add column j jsonb default '{"a": [1, 2]}'`);
      await harness.db.client.query(`update items set name = 'changed' where id = 5`);
      await waitFor(
        async () => {
          const source = await sourceTable(harness.db.client, ['r', 'name']);
          const sink = sinkTable(harness.database);
          return [...source].every(
            ([id, row]) => sink.get(id)?.name === row.name && Number(sink.get(id)?.r) === Number(row.r),
          );
        },
        { timeoutMs: 90_000, description: 'every row holds its random default' },
      );
      expect(failOnce).toBe(false);
      expect(resyncSeenBeforeFailure).toBe(true);
      const sink = sinkTable(harness.database);
      expect(JSON.parse(String(sink.get('1')?.j))).toEqual({ a: [1, 2] });
      // The owed copy is cleared once it is durable (just after its last load).
      await waitFor(() => (harness.pipeline.checkpoint.resync ?? []).length === 0, {
        timeoutMs: 30_000,
        description: 'the owed copy cleared',
      });
    } finally {
      await stop(harness);
    }
  });

  it('moves a row whose key changed while a TOASTed column stayed unchanged, reading that value from the source', async () => {
    const harness = await start(
      'toast-move',
      `create table items (id int primary key, name text, big text);
       alter table items alter column big set storage external;
       insert into items select g, 'n' || g, repeat(md5(g::text), 400) from generate_series(1, 50) g;`,
    );
    try {
      await waitFor(() => emulator.rows(harness.database, 'items').length === 50, {
        timeoutMs: 60_000,
        description: 'snapshot',
      });
      await harness.db.client.query(`update items set id = id + 1000, name = 'moved' where id <= 10`);
      await harness.db.client.query(
        `begin; update items set id = 2001 where id = 11; delete from items where id = 2001; commit;`,
      );
      await waitFor(() => emulator.rows(harness.database, 'items').some((row) => row.id === 1010), {
        timeoutMs: 60_000,
        description: 'moved rows',
      });
      await waitFor(() => !emulator.rows(harness.database, 'items').some((row) => row.id === 11), {
        timeoutMs: 60_000,
        description: 'moved-and-deleted row gone',
      });
      const source = await sourceTable(harness.db.client, ['name', 'big']);
      const sink = sinkTable(harness.database);
      expect([...sink.keys()].sort()).toEqual([...source.keys()].sort());
      for (const [id, row] of source) {
        expect(sink.get(id)?.big, `row ${id}`).toBe(row.big);
        expect(sink.get(id)?.name, `row ${id}`).toBe(row.name);
      }
      expect(harness.pipeline.lastError).toBeUndefined();
    } finally {
      await stop(harness);
    }
  });
});
