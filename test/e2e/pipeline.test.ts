// The replication pipeline end to end: control plane and worker as real processes over TLS 1.3, the run's
// embedded PostgreSQL as the source, the StarRocks emulator (in this process) as the sink.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { hashPii, randomToken } from '@sluice/crypto';
import {
  BootstrapTokenService,
  DatasourceService,
  JobPhase,
  JobService,
  JobState,
  SslMode,
  TableState,
} from '@sluice/proto';
import {
  connectionConfig,
  createTestDatabase,
  type ServiceProcess,
  type StarRocksEmulator,
  startStarRocksEmulator,
  type TestDatabase,
  waitFor,
} from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClients,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  freePort,
  startControlPlaneProcess,
  startWorkerProcess,
} from './cluster.ts';

const CANARY_SOURCE = `canary-source-pw-${randomToken(16)}`;
const CANARY_SINK = `canary-sink-pw-${randomToken(16)}`;
const CANARY_WRONG_SINK = `canary-wrong-sink-pw-${randomToken(16)}`;
const SOURCE_ROLE = `sluice_e2e_${randomBytes(4).toString('hex')}`;
const SINK_DATABASE = 'e2e_main';

const ROWS = { customers: 80_000, orders: 80_000, events: 40_000 };
const TABLES = ['customers', 'orders', 'events'] as const;

type Admin = Awaited<ReturnType<typeof adminClients>>;

/** Ids for new rows, shared by every writer of the run. */
let nextId = 1_000_000;

/** Random inserts, updates, deletes and multi-statement transactions over the three tables until stopped. */
function startWriter(config: pg.ClientConfig) {
  const client = new pg.Client(config);
  let running = true;
  let ops = 0;
  const done = (async () => {
    client.on('error', () => undefined);
    await client.connect();
    while (running) {
      const pick = Math.random();
      const c = 1 + Math.floor(Math.random() * ROWS.customers);
      const o = 1 + Math.floor(Math.random() * ROWS.orders);
      if (pick < 0.2) await client.query('update customers set score = score + 1 where id = $1', [c]);
      else if (pick < 0.3) await client.query('delete from customers where id = $1', [c]);
      else if (pick < 0.45)
        await client.query(`insert into customers values ($1, $2, 'ssn-' || $1::int, 'new', 0)`, [
          nextId,
          `New${nextId++}@Example.com`,
        ]);
      else if (pick < 0.6) await client.query('update orders set amount = amount + 7 where id = $1', [o]);
      else if (pick < 0.7) await client.query('delete from orders where id = $1', [o]);
      else if (pick < 0.85) {
        await client.query('begin');
        await client.query(`insert into orders (id, customer_id, amount, note) values ($1, $2, 5, 'tx')`, [
          nextId++,
          c,
        ]);
        await client.query(`insert into events values ($1, 'tx', repeat('p', 40))`, [nextId++]);
        await client.query('update customers set name = name || $2 where id = $1', [c, 'x']);
        await client.query('commit');
      } else await client.query(`insert into events values ($1, 'solo', 'payload')`, [nextId++]);
      ops++;
      await new Promise((resolve) => setTimeout(resolve, 4));
    }
    await client.end();
  })();
  return {
    get ops() {
      return ops;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Source rows as the sink should hold them (hashed email, no ssn), as comparable strings. */
async function expectedRows(client: pg.Client, table: string): Promise<string[]> {
  const result = await client.query(`select * from ${table} order by id`);
  return result.rows.map((row: Record<string, unknown>) => {
    if (table === 'customers') {
      delete row.ssn;
      row.email = hashPii(row.email);
    }
    return JSON.stringify(Object.values(row).map((value) => (value === null ? null : String(value))));
  });
}

function sinkRows(emulator: StarRocksEmulator, table: string, columns: string[]): string[] {
  return emulator
    .rows(SINK_DATABASE, table)
    .map((row) => JSON.stringify(columns.map((name) => (row[name] == null ? null : String(row[name])))));
}

/** Undefined when every target table equals its source row by row, else what differs. */
async function difference(client: pg.Client, emulator: StarRocksEmulator): Promise<string | undefined> {
  for (const table of TABLES) {
    const columns = (
      await client.query<{ column_name: string }>(
        `select column_name from information_schema.columns where table_name = $1 and column_name <> 'ssn' order by ordinal_position`,
        [table],
      )
    ).rows.map((row) => row.column_name);
    const expected = await expectedRows(client, table);
    const actual = sinkRows(emulator, table, columns);
    if (expected.length !== actual.length)
      return `${table}: ${expected.length} source rows, ${actual.length} in the sink`;
    for (let index = 0; index < expected.length; index++) {
      if (expected[index] !== actual[index])
        return `${table}: row ${index} differs: ${expected[index]} vs ${actual[index]}`;
    }
  }
  return undefined;
}

describe('the replication pipeline run by a worker, end to end', () => {
  let catalog: TestDatabase;
  let source: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let admin: Admin;
  let emulator: StarRocksEmulator;
  let worker: ServiceProcess;
  let jobId: string;
  let writer: ReturnType<typeof startWriter> | undefined;
  const workers: ServiceProcess[] = [];
  const stateDir = () => path.join(secrets.dir, 'worker');

  const status = (id: string) =>
    admin
      .client(JobService)
      .getJobStatus({ id })
      .then((answer) => answer.status!);

  let metricsPort = 0;
  async function restartWorker(token?: string): Promise<void> {
    metricsPort ||= await freePort();
    worker = await startWorkerProcess(cp, {
      stateDir: stateDir(),
      ...(token && { token }),
      env: { SLUICE_METRICS_LISTEN: `127.0.0.1:${metricsPort}` },
    });
    workers.push(worker);
  }

  async function killWorker(): Promise<void> {
    await worker.stop('SIGKILL');
  }

  async function createDatasources(name: string, sinkPassword: string) {
    const datasources = admin.client(DatasourceService);
    const src = await datasources.createDatasource({
      name: `${name}-src`,
      spec: {
        case: 'postgres',
        value: {
          host: '127.0.0.1',
          port: source.server.port,
          database: source.name,
          username: SOURCE_ROLE,
          sslMode: SslMode.VERIFY_FULL,
          password: CANARY_SOURCE,
          sslRootCert: source.server.caPem!,
        },
      },
    });
    const sink = await datasources.createDatasource({
      name: `${name}-sink`,
      spec: {
        case: 'starrocks',
        value: {
          feHost: emulator.host,
          httpPort: emulator.fePort,
          mysqlPort: emulator.mysqlPort,
          username: emulator.user,
          database: name === 'main' ? SINK_DATABASE : `e2e_${name}`,
          password: sinkPassword,
        },
      },
    });
    return { sourceId: src.datasource!.id, sinkId: sink.datasource!.id };
  }

  beforeAll(async () => {
    [catalog, source, secrets, emulator] = await Promise.all([
      createTestDatabase('e2e_pipeline_catalog'),
      createTestDatabase('e2e_pipeline_source'),
      clusterSecrets(),
      startStarRocksEmulator({ password: CANARY_SINK }),
    ]);
    await source.client.query(`create role ${SOURCE_ROLE} login superuser password '${CANARY_SOURCE}'`);
    await source.client.query(`
      create table customers (id int primary key, email text, ssn text, name text, score int);
      create table orders (id int8 primary key, customer_id int, amount int8, note text);
      create table events (id int primary key, kind text, payload text);
      insert into customers select g, 'User' || g || '@Example.com', 'ssn-' || g, 'name ' || g, g % 100
        from generate_series(1, ${ROWS.customers}) g;
      insert into orders select g, 1 + g % ${ROWS.customers}, g * 3, 'order ' || g from generate_series(1, ${ROWS.orders}) g;
      insert into events select g, 'seed', repeat('e', 60) from generate_series(1, ${ROWS.events}) g;
      analyze;`);
    cp = await startControlPlaneProcess(catalog, secrets);
    admin = await adminClients(cp);
  });

  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    await Promise.all(workers.map((p) => p.stop('SIGKILL')));
    await cp?.process.stop('SIGKILL');
    await emulator?.stop();
    await source?.drop();
    const admin = new pg.Client(connectionConfig(catalog.server));
    await admin.connect();
    await admin.query(`drop role if exists ${SOURCE_ROLE}`).catch(() => undefined);
    await admin.end();
    await catalog?.drop();
  });

  it('copies 200,000 rows and streams inserts, updates, deletes, a TRUNCATE and an ADD COLUMN through three SIGKILLs until every target table equals its source row by row, streaming with lag near zero', async () => {
    const { sourceId, sinkId } = await createDatasources('main', CANARY_SINK);
    const created = await admin.client(JobService).createJob({
      name: 'main',
      sourceId,
      sinkId,
      tables: TABLES.map((name) => ({ schema: 'public', name })),
      options: {
        batchMaxRows: 20_000,
        flushIntervalMs: 500,
        snapshotRangePages: 128,
        snapshotParallelism: 2,
        hashColumns: [{ table: { schema: 'public', name: 'customers' }, column: 'email' }],
        excludeColumns: [{ table: { schema: 'public', name: 'customers' }, column: 'ssn' }],
      },
      start: true,
    });
    jobId = created.job!.id;
    const token = await admin.client(BootstrapTokenService).createBootstrapToken({ ttlSeconds: 600 });
    writer = startWriter(source.config);
    // A few slow loads keep the snapshot long enough to be caught in the middle on a fast machine.
    for (let i = 0; i < 4; i++) emulator.faults.inject({ kind: 'slow', port: 'be', delayMs: 1_000 });
    await restartWorker(token.secret);

    // Kill 1: during the snapshot, once some ranges are durable.
    await waitFor(
      async () => {
        const s = await status(jobId);
        return s.phase === JobPhase.SNAPSHOT && s.tables.some((t) => t.rangesDone > 0);
      },
      { timeoutMs: 90_000, intervalMs: 100, description: 'snapshot ranges to complete' },
    );
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 1_000));
    await killWorker();
    const before = await status(jobId);
    const rangesBefore = before.checkpoint?.completedRanges.length ?? 0;
    expect(before.checkpoint?.snapshotComplete).toBe(false);
    expect(rangesBefore).toBeGreaterThan(0);
    await restartWorker();

    // Kill 2: while streaming.
    await waitFor(async () => (await status(jobId)).phase === JobPhase.STREAMING, {
      timeoutMs: 120_000,
      intervalMs: 200,
      description: 'streaming after the snapshot',
    });
    const afterSnapshot = await status(jobId);
    expect(afterSnapshot.checkpoint?.snapshotComplete).toBe(true);
    expect(afterSnapshot.checkpoint!.completedRanges.length).toBeGreaterThanOrEqual(rangesBefore);
    await source.client.query('truncate events');
    await source.client.query(
      `insert into events select g, 'after-truncate', 'p' from generate_series(1, 500) g`,
    );
    await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 1_500));
    await killWorker();
    await restartWorker();

    // Kill 3: after a schema change.
    await source.client.query('alter table orders add column status text');
    await source.client.query(`update orders set status = 'shipped' where id % 40 = 0`);
    await waitFor(async () => (await status(jobId)).phase === JobPhase.STREAMING, {
      timeoutMs: 60_000,
      description: 'streaming again',
    });
    await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 2_000));
    await killWorker();
    await restartWorker();

    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await writer.stop();
    expect(writer.ops).toBeGreaterThan(0);
    writer = undefined;
    let last: string | undefined;
    await waitFor(
      async () => {
        last = await difference(source.client, emulator);
        return last === undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1_000, description: 'every target table equal to its source' },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; last difference: ${last}`);
    });
    const final = await waitFor(
      async () => {
        const s = await status(jobId);
        return s.state === JobState.RUNNING && s.phase === JobPhase.STREAMING && s.lagSeconds < 5 && s;
      },
      { timeoutMs: 30_000, description: 'streaming with lag near zero' },
    );
    expect(final.lagBytes).toBeLessThan(64n * 1024n * 1024n);
    const orders = final.tables.find((t) => t.table?.name === 'orders');
    const events = final.tables.find((t) => t.table?.name === 'events');
    // Counters are per run of the job (the worker was restarted since); the sink saw the TRUNCATE.
    expect(events?.state).toBe(TableState.STREAMING);
    expect(orders?.state).toBe(TableState.STREAMING);
    expect(emulator.statements.some((sql) => /^truncate table/i.test(sql.trim()))).toBe(true);
    expect(emulator.table(SINK_DATABASE, 'orders')!.map((c) => c.name)).toContain('status');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    for (const name of ['sluice_job_rows_total', 'sluice_job_lag_seconds', 'sluice_job_batch_rows_bucket'])
      expect(metrics).toContain(`${name}{`);
    expect(metrics).toContain(`job="${jobId}"`);
  });

  it('hashes hashed columns and never sends excluded ones', async () => {
    expect(emulator.table(SINK_DATABASE, 'customers')!.map((c) => c.name)).toEqual([
      'id',
      'email',
      'name',
      'score',
    ]);
    const first = emulator.rows(SINK_DATABASE, 'customers').find((row) => String(row.id) === '2');
    expect(first?.email).toBe(hashPii('user2@example.com'));
  });

  it('slows under 30% failed loads with mixed faults for a minute, then catches up with tables equal', async () => {
    writer = startWriter(source.config);
    const kinds = [
      { kind: 'http-error', port: 'be', status: 503 },
      { kind: 'reset-mid-body' },
      { kind: 'reset-after-commit' },
      { kind: 'fail', message: 'injected failure' },
      { kind: 'publish-timeout' },
    ] as const;
    const loadsAtStart = emulator.requests.filter((r) => r.port === 'be').length;
    let injected = 0;
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const loads = emulator.requests.filter((r) => r.port === 'be').length - loadsAtStart;
      if (emulator.faults.pending().length === 0 && injected < 0.3 * (loads + 1)) {
        emulator.faults.inject(kinds[injected % kinds.length]!);
        injected++;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    emulator.faults.clear();
    expect(injected).toBeGreaterThan(3);
    await writer.stop();
    writer = undefined;
    let last: string | undefined;
    await waitFor(
      async () => {
        last = await difference(source.client, emulator);
        return last === undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1_000, description: 'tables equal after the faults' },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; last difference: ${last}`);
    });
    expect((await status(jobId)).state).toBe(JobState.RUNNING);
  }, 240_000);

  it('fails a job whose sink password is wrong, naming the datasource and the fix, while the other job keeps replicating', async () => {
    const { sourceId, sinkId } = await createDatasources('badsink', CANARY_WRONG_SINK);
    const bad = await admin.client(JobService).createJob({
      name: 'badsink',
      sourceId,
      sinkId,
      tables: [{ schema: 'public', name: 'events' }],
      start: true,
    });
    const failed = await waitFor(
      async () => {
        const s = await status(bad.job!.id);
        return s.state === JobState.FAILED && s;
      },
      { timeoutMs: 60_000, description: 'the job with the wrong sink password to fail' },
    );
    expect(failed.lastError?.message).toContain('"badsink-sink"');
    expect(failed.lastError?.solution).toMatch(/password|credential/i);

    await source.client.query(`insert into customers values (7777777, 'Late@Example.com', 'x', 'late', 1)`);
    await waitFor(
      () => emulator.rows(SINK_DATABASE, 'customers').some((row) => String(row.id) === '7777777'),
      {
        timeoutMs: 30_000,
        description: 'the main job to replicate a new row',
      },
    );
    const main = await status(jobId);
    expect(main.state).toBe(JobState.RUNNING);
  });

  it('drains on SIGTERM: the in-flight batch is loaded, the checkpoint saved and the lease released', async () => {
    const before = await status(jobId);
    const exited = await worker.stop('SIGTERM', 30_000);
    expect(exited).toBe(0);
    const released = await status(jobId);
    expect(released.workerId).toBe('');
    expect(released.state).toBe(JobState.PENDING);
    expect(released.checkpoint!.durableLsn).toBeGreaterThanOrEqual(before.checkpoint!.durableLsn);
    expect(worker.output()).toMatch(/job ended/);
  });

  it('never writes a source or sink password to any log of the run', () => {
    const logs = [cp.process.output(), ...workers.map((w) => w.output())].join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const canary of [CANARY_SOURCE, CANARY_SINK, CANARY_WRONG_SINK]) expect(logs).not.toContain(canary);
  });
});
