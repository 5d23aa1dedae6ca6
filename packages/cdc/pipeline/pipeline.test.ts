import { hashPii, hmacPii } from '@sluice/crypto';
import { createTestDatabase, type StarRocksEmulator, startStarRocksEmulator, waitFor } from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableRef } from '../change-event.ts';
import { parseLsn } from '../change-event.ts';
import { createStarRocksSink, type StarRocksSink } from '../sink/starrocks/index.ts';
import { PostgresSource } from '../source/postgres/index.ts';
import { testConnection } from '../source/postgres/testing/memory-table.ts';
import type { Checkpoint } from './checkpoint.ts';
import { Pipeline, PipelineError } from './pipeline.ts';

const accounts: TableRef = { schema: 'public', name: 'accounts' };
const events: TableRef = { schema: 'public', name: 'events' };

let emulator: StarRocksEmulator;
beforeAll(async () => {
  emulator = await startStarRocksEmulator({ password: 'emulator-pw' });
});
afterAll(async () => {
  await emulator?.stop();
});

function memoryCheckpoints() {
  const saved: Checkpoint[] = [];
  return {
    saved,
    last: () => saved.at(-1),
    store: {
      async save(checkpoint: Checkpoint) {
        const previous = saved.at(-1);
        if (previous && checkpoint.durableLsn < previous.durableLsn) throw new Error('checkpoint went back');
        saved.push(checkpoint);
      },
    },
  };
}

function sinkFor(database: string, wrap: (sink: StarRocksSink) => StarRocksSink = (sink) => sink) {
  return () =>
    wrap(
      createStarRocksSink({
        datasource: {
          name: 'emulator',
          host: emulator.host,
          httpPort: emulator.fePort,
          queryPort: emulator.mysqlPort,
          user: emulator.user,
          password: emulator.password,
          database,
        },
        minLoadIntervalMs: 200,
      }),
    );
}

async function seed(client: pg.Client, rows: number) {
  await client.query(`
    create table accounts (id int primary key, email text, secret text, balance int8);
    create table events (id int8 primary key, body text);
    insert into accounts select g, 'User' || g || '@Example.com', 'hide-' || g, g * 10 from generate_series(1, ${rows}) g;
    insert into events select g, repeat('e', 50) || g from generate_series(1, ${rows}) g;`);
}

/** Random single-row and multi-row transactions on both tables until stopped. */
function startWriter(config: pg.ClientConfig, rows: number) {
  const client = new pg.Client(config);
  let running = true;
  const done = (async () => {
    client.on('error', () => undefined);
    await client.connect();
    let next = rows + 1;
    while (running) {
      const id = 1 + Math.floor(Math.random() * rows);
      const pick = Math.random();
      if (pick < 0.3) await client.query('update accounts set balance = balance + 1 where id = $1', [id]);
      else if (pick < 0.45) await client.query('delete from events where id = $1', [id]);
      else if (pick < 0.8) {
        await client.query('begin');
        await client.query(`insert into accounts values ($1::int, 'n' || $1::int || '@x.io', 's', 1)`, [
          next,
        ]);
        await client.query(`insert into events values ($1, 'new')`, [next++]);
        await client.query('commit');
      } else await client.query('update events set body = body || $2 where id = $1', [id, 'u']);
    }
    await client.end();
  })();
  return {
    async stop() {
      running = false;
      await done;
    },
  };
}

async function sourceRows(client: pg.Client, table: string): Promise<string[]> {
  const result = await client.query(`select * from ${table} order by id`);
  return result.rows.map((row) =>
    JSON.stringify(Object.values(row).map((v) => (v === null ? null : String(v)))),
  );
}

function sinkRows(database: string, table: string, columns: string[]): string[] {
  return emulator
    .rows(database, table)
    .map((row) => JSON.stringify(columns.map((name) => (row[name] == null ? null : String(row[name])))));
}

async function tablesEqual(client: pg.Client, database: string) {
  const [a, b] = await Promise.all([sourceRows(client, 'accounts'), sourceRows(client, 'events')]);
  const sa = sinkRows(database, 'accounts', ['id', 'email', 'secret', 'balance']);
  const sb = sinkRows(database, 'events', ['id', 'body']);
  return a.length === sa.length && b.length === sb.length && a.join() === sa.join() && b.join() === sb.join();
}

describe('pipeline', () => {
  it('copies a snapshot and streams concurrent writes until source and sink are equal row by row', async () => {
    const db = await createTestDatabase('pipeline-equal');
    await seed(db.client, 5_000);
    const writer = startWriter(db.config, 5_000);
    try {
      const checkpoints = memoryCheckpoints();
      const database = `p_${db.name}`;
      const pipeline = new Pipeline({
        job: 'job-equal',
        epoch: 1n,
        createSource: () =>
          new PostgresSource({
            connection: testConnection(db.server, db.name),
            job: 'equal',
            tables: [accounts, events],
          }),
        createSink: sinkFor(database),
        checkpoints: checkpoints.store,
        batch: { maxRows: 2_000, flushIntervalMs: 300 },
        snapshotRangePages: 8,
      });
      const run = pipeline.run();
      run.catch(() => undefined);
      await waitFor(() => pipeline.phase === 'streaming', { timeoutMs: 60_000, description: 'streaming' });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await writer.stop();
      await waitFor(() => tablesEqual(db.client, database), {
        timeoutMs: 60_000,
        description: 'sink equal to source',
      });
      expect(checkpoints.last()?.snapshotComplete).toBe(true);
      expect(pipeline.tables.every((table) => table.state === 'streaming')).toBe(true);
      pipeline.stop({ drain: true });
      await run;
    } finally {
      await writer.stop().catch(() => undefined);
      await db.drop();
    }
  });

  it('never lets the slot confirm past the saved checkpoint while the sink is slow', async () => {
    const db = await createTestDatabase('pipeline-order');
    try {
      await seed(db.client, 500);
      const checkpoints = memoryCheckpoints();
      const database = `o_${db.name}`;
      const slow = (sink: StarRocksSink): StarRocksSink => ({
        ...sink,
        async write(table, ops, labels) {
          await new Promise((resolve) => setTimeout(resolve, 250));
          return sink.write(table, ops, labels);
        },
      });
      const pipeline = new Pipeline({
        job: 'job-order',
        epoch: 1n,
        createSource: () =>
          new PostgresSource({
            connection: testConnection(db.server, db.name),
            job: 'order',
            tables: [accounts, events],
          }),
        createSink: sinkFor(database, slow),
        checkpoints: checkpoints.store,
        batch: { maxRows: 100, flushIntervalMs: 100 },
      });
      const run = pipeline.run();
      await waitFor(() => pipeline.phase === 'streaming', { timeoutMs: 60_000, description: 'streaming' });
      const writer = startWriter(db.config, 500);
      let checks = 0;
      const deadline = Date.now() + 4_000;
      while (Date.now() < deadline) {
        const slot = await db.client.query<{ confirmed: string }>(
          `select confirmed_flush_lsn::text as confirmed from pg_replication_slots where slot_name = 'sluice_order'`,
        );
        // Read after the slot: whatever the slot confirmed was saved before it was acknowledged.
        const durable = checkpoints.last()?.durableLsn ?? 0n;
        expect(parseLsn(slot.rows[0]!.confirmed)).toBeLessThanOrEqual(durable);
        checks++;
      }
      await writer.stop();
      await waitFor(() => tablesEqual(db.client, database), { timeoutMs: 60_000, description: 'caught up' });
      expect(checks).toBeGreaterThan(5);
      expect(checkpoints.last()!.durableLsn).toBeGreaterThan(checkpoints.saved[0]!.durableLsn);
      pipeline.stop({ drain: true });
      await run;
    } finally {
      await db.drop();
    }
  });
});

describe('restart', () => {
  it('copies only the unfinished snapshot ranges after a drain in the middle of the snapshot', async () => {
    const db = await createTestDatabase('pipeline-restart');
    try {
      await seed(db.client, 5_000);
      await db.client.query('analyze');
      const checkpoints = memoryCheckpoints();
      const database = `r_${db.name}`;
      const options = {
        job: 'job-restart',
        createSource: () =>
          new PostgresSource({
            connection: testConnection(db.server, db.name),
            job: 'restart',
            tables: [accounts, events],
          }),
        checkpoints: checkpoints.store,
        batch: { maxRows: 500, flushIntervalMs: 100 },
        snapshotRangePages: 4,
        snapshotParallelism: 1,
      };
      const first = new Pipeline({ ...options, epoch: 1n, createSink: sinkFor(database) });
      const firstRun = first.run();
      await waitFor(() => (checkpoints.last()?.completed.length ?? 0) >= 3, {
        timeoutMs: 60_000,
        description: 'three ranges done',
      });
      first.stop({ drain: true });
      await firstRun;
      const saved = checkpoints.last()!;
      expect(saved.snapshotComplete).toBe(false);
      expect(saved.completed.length).toBeLessThan(saved.planned.length);

      const second = new Pipeline({
        ...options,
        epoch: 2n,
        createSink: sinkFor(database),
        checkpoint: saved,
      });
      const secondRun = second.run();
      await waitFor(() => second.phase === 'streaming', { timeoutMs: 60_000, description: 'streaming' });
      expect(second.totals.rows).toBeLessThan(10_000);
      expect(second.totals.rows).toBeGreaterThan(0);
      await waitFor(() => tablesEqual(db.client, database), { timeoutMs: 30_000, description: 'equal' });
      second.stop({ drain: true });
      await secondRun;
    } finally {
      await db.drop();
    }
  });
});

describe('backpressure', () => {
  it('pauses reading from the slot while the sink holds back, then catches up', async () => {
    const db = await createTestDatabase('pipeline-backpressure');
    try {
      await seed(db.client, 10);
      let open: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      let blocked = false;
      const gated = (sink: StarRocksSink): StarRocksSink => ({
        ...sink,
        async write(table, ops, labels) {
          if (blocked) await gate;
          return sink.write(table, ops, labels);
        },
      });
      const database = `b_${db.name}`;
      const pipeline = new Pipeline({
        job: 'job-backpressure',
        epoch: 1n,
        createSource: () =>
          new PostgresSource({
            connection: testConnection(db.server, db.name),
            job: 'backpressure',
            tables: [accounts, events],
          }),
        createSink: sinkFor(database, gated),
        checkpoints: memoryCheckpoints().store,
        maxInFlightBytes: 512 * 1024,
        batch: { flushIntervalMs: 100 },
      });
      const run = pipeline.run();
      run.catch(() => undefined);
      await waitFor(() => pipeline.phase === 'streaming', { timeoutMs: 60_000, description: 'streaming' });
      blocked = true;
      await db.client.query(
        `insert into events select g, repeat('b', 300) from generate_series(100, 20100) g`,
      );
      await waitFor(() => pipeline.readPaused, { timeoutMs: 30_000, description: 'reading paused' });
      open();
      await waitFor(() => tablesEqual(db.client, database), { timeoutMs: 60_000, description: 'caught up' });
      expect(pipeline.readPaused).toBe(false);
      pipeline.stop({ drain: true });
      await run;
    } finally {
      await db.drop();
    }
  });
});

describe('a missing slot', () => {
  it('needs an operator when the checkpoint names a slot that is gone', async () => {
    const db = await createTestDatabase('pipeline-slot-gone');
    try {
      await seed(db.client, 10);
      const pipeline = new Pipeline({
        job: 'job-gone',
        epoch: 2n,
        createSource: () =>
          new PostgresSource({
            connection: testConnection(db.server, db.name),
            job: 'gone',
            tables: [accounts, events],
          }),
        createSink: sinkFor(`g_${db.name}`),
        checkpoints: memoryCheckpoints().store,
        checkpoint: {
          consistentPoint: 0x1000n,
          durableLsn: 0x2000n,
          planned: [],
          completed: [],
          snapshotComplete: true,
        },
      });
      const error = await pipeline.run().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(PipelineError);
      expect((error as PipelineError).classified).toMatchObject({ kind: 'operator', side: 'source' });
      expect((error as PipelineError).classified.solution).toMatch(/snapshot/);
    } finally {
      await db.drop();
    }
  });
});

describe('transforms in the pipeline', () => {
  it('hashes hashed columns and never sends excluded ones', async () => {
    const db = await createTestDatabase('pipeline-transforms');
    try {
      await seed(db.client, 50);
      const key = new Uint8Array(32).fill(7);
      const database = `t_${db.name}`;
      const pipeline = new Pipeline({
        job: 'job-transforms',
        epoch: 1n,
        createSource: () =>
          new PostgresSource({
            connection: testConnection(db.server, db.name),
            job: 'transforms',
            tables: [accounts, events],
          }),
        createSink: sinkFor(database),
        checkpoints: memoryCheckpoints().store,
        transforms: {
          hashColumns: [{ table: accounts, column: 'email' }],
          excludeColumns: [{ table: accounts, column: 'secret' }],
          hmacKey: key,
        },
        batch: { flushIntervalMs: 100 },
      });
      const run = pipeline.run();
      await waitFor(() => pipeline.phase === 'streaming', { timeoutMs: 60_000, description: 'streaming' });
      await db.client.query(`insert into accounts values (9999, ' Streamed@Example.COM ', 'nope', 1)`);
      await waitFor(() => emulator.rows(database, 'accounts').length === 51, { description: 'streamed row' });
      expect(emulator.table(database, 'accounts')!.map((column) => column.name)).toEqual([
        'id',
        'email',
        'balance',
      ]);
      const rows = emulator.rows(database, 'accounts');
      expect(rows[0]!.email).toBe(hmacPii(key, 'User1@Example.com'));
      expect(rows.at(-1)!.email).toBe(hmacPii(key, 'streamed@example.com'));
      expect(rows[0]!.email).not.toBe(hashPii('User1@Example.com'));
      pipeline.stop({ drain: true });
      await run;
    } finally {
      await db.drop();
    }
  });
});
