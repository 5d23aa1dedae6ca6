// The exactness test ("type zoo"): control plane and worker as real processes over TLS 1.3, the run's
// embedded PostgreSQL as the source, the StarRocks emulator as the sink. A table with a column for each of
// 60+ PostgreSQL types holds their edge values; they go through the initial snapshot, streaming (TOAST
// values left unchanged across updates and primary-key changes), an ADD COLUMN with defaults on the
// populated table, and a kill -9 of the worker mid-stream. After each step every value must equal its source
// under the documented normalisation (test/e2e/type-zoo/oracle.ts), row by row in both directions. Values
// with no exact StarRocks form sit in columns with a per-column choice; for each such value without a
// choice, a separate job must fail naming table, column, key and value.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  BootstrapTokenService,
  ColumnTarget,
  DatasourceService,
  type JobOptionsSchema,
  JobPhase,
  JobService,
  JobState,
  type JobStatus,
  SslMode,
  UnrepresentablePolicy,
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
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClients,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  startControlPlaneProcess,
  startWorkerProcess,
} from './cluster.ts';
import {
  compareTable,
  type Difference,
  formatDifferences,
  mysqlSinkReader,
  type SinkReader,
  textClient,
} from './type-zoo/oracle.ts';
import { partialUpdate } from './type-zoo/stream-load.ts';
import {
  ADDED_COLUMNS,
  coveredColumns,
  EXTREME_SETS,
  EXTREMES_COLUMNS,
  EXTREMES_DDL,
  EXTREMES_TABLE,
  insertInto,
  insertValueSet,
  TOAST_VALUES,
  VALUE_SETS,
  ZOO_COLUMNS,
  ZOO_DDL,
  ZOO_TABLE,
  ZOO_TYPES_DDL,
  type ZooColumn,
} from './type-zoo/zoo.ts';

const SOURCE_ROLE = `sluice_zoo_${randomBytes(4).toString('hex')}`;
const SOURCE_PASSWORD = `zoo-source-${randomBytes(8).toString('hex')}`;
const SINK_PASSWORD = `zoo-sink-${randomBytes(8).toString('hex')}`;
const SINK_DATABASE = 'type_zoo';
const BAD_KEY = 424242;

type Admin = Awaited<ReturnType<typeof adminClients>>;
const stateName = (state: number) =>
  Object.entries(JobState).find(([, value]) => value === state)?.[0] ?? String(state);
type Comparison = Awaited<ReturnType<typeof compareTable>> & { failed?: string };

/** Values with no exact StarRocks form, each in a table of its own with no per-column choice. */
const UNREPRESENTABLE = [
  { table: 'fz_numeric_nan', type: 'numeric(10,2)', value: `'NaN'`, text: 'NaN', when: 'snapshot' },
  { table: 'fz_date_bc', type: 'date', value: `'0044-03-15 BC'`, text: '0044-03-15 BC', when: 'snapshot' },
  {
    table: 'fz_ts_year_10000',
    type: 'timestamp',
    value: `'10000-01-01 00:00:00'`,
    text: '10000-01-01 00:00:00',
    when: 'snapshot',
  },
  {
    table: 'fz_date_arr_infinity',
    type: 'date[]',
    value: `'{2024-01-01,infinity}'`,
    text: 'infinity',
    when: 'snapshot',
  },
  {
    table: 'fz_tstz_infinity',
    type: 'timestamptz',
    value: `'infinity'`,
    text: 'infinity',
    when: 'streaming',
  },
  {
    table: 'fz_jsonb_big_int',
    type: 'jsonb',
    value: `'{"n": 123456789012345678901234567890}'`,
    text: '123456789012345678901234567890',
    when: 'streaming',
  },
  {
    table: 'fz_jsonb_long_fraction',
    type: 'jsonb',
    value: `'[0.1000000000000000055511151231257827]'`,
    text: '0.1000000000000000055511151231257827',
    when: 'streaming',
  },
  {
    table: 'fz_int4_2d',
    type: 'int4[]',
    value: `'{{1,2},{3,4}}'`,
    // PostgreSQL's text or the same array in JSON notation.
    text: ['{{1,2},{3,4}}', '[[1,2],[3,4]]'],
    when: 'streaming',
  },
] as const;

describe('type zoo: every PostgreSQL type and edge value lands exactly, or the job fails naming it', () => {
  let catalog: TestDatabase;
  let source: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let admin: Admin;
  let emulator: StarRocksEmulator;
  let oracleClient: pg.Client;
  let sinkConnection: mysql.Connection;
  let reader: SinkReader;
  let worker: ServiceProcess;
  let sourceId: string;
  let sinkId: string;
  let zooJobId: string;
  let columns: ZooColumn[] = ZOO_COLUMNS;
  const workers: ServiceProcess[] = [];
  const notes: string[] = [];

  const status = (id: string): Promise<JobStatus> =>
    admin
      .client(JobService)
      .getJobStatus({ id })
      .then((answer) => answer.status!);
  const zooProgress = (s: JobStatus) => s.tables.find((t) => t.table?.name === ZOO_TABLE);
  /** The zoo's clamped/nulled counters once they reach `atLeast` (reports lag loads), or as they are. */
  async function counters(atLeast: bigint) {
    const read = async () => {
      const progress = zooProgress(await status(zooJobId));
      return { clamped: progress?.valuesClamped ?? 0n, nulled: progress?.valuesNulled ?? 0n };
    };
    return waitFor(
      async () => {
        const now = await read();
        return now.clamped >= atLeast && now.nulled >= atLeast && now;
      },
      { timeoutMs: 30_000, intervalMs: 250, description: 'the counters' },
    ).catch(read);
  }
  const successfulLoads = (table: string) =>
    emulator.loads.filter((l) => l.table === table && /^(Success|Publish Timeout)$/.test(l.status)).length;
  const errorText = (s: JobStatus) =>
    [s.lastError?.message, ...s.tables.map((t) => t.error?.message)].filter(Boolean).join(' | ');

  async function startWorker(token?: string): Promise<void> {
    worker = await startWorkerProcess(cp, {
      stateDir: path.join(secrets.dir, 'worker'),
      ...(token && { token }),
      env: { SLUICE_MAX_JOBS: '16' },
    });
    workers.push(worker);
  }

  async function createJob(
    name: string,
    tables: string[],
    options: MessageInitShape<typeof JobOptionsSchema> = {},
  ): Promise<string> {
    const created = await admin.client(JobService).createJob({
      name,
      sourceId,
      sinkId,
      tables: tables.map((table) => ({ schema: 'public', name: table })),
      options: { batchMaxRows: 20, flushIntervalMs: 200, snapshotParallelism: 1, ...options },
      start: true,
    });
    return created.job!.id;
  }

  /**
   * Compares until the sink equals the source; gives up when the job failed, or when neither the sink took a
   * load nor the differences shrank for `stallMs` (so a slow machine that is still progressing gets time).
   */
  async function settle(jobId: string, table: string, what: string, stallMs = 60_000): Promise<Comparison> {
    let last: Comparison | undefined;
    let progressAt = Date.now();
    let loads = -1;
    let fewest = Number.POSITIVE_INFINITY;
    return waitFor(
      async () => {
        const s = await status(jobId);
        last = await compareTable(oracleClient, reader, table, columns);
        if (last.differences.length === 0) return last;
        if (s.state === JobState.FAILED) return { ...last, failed: errorText(s) };
        const now = successfulLoads(table);
        if (now !== loads || last.differences.length < fewest) progressAt = Date.now();
        loads = now;
        fewest = Math.min(fewest, last.differences.length);
        return Date.now() - progressAt > stallMs && last;
      },
      { timeoutMs: 420_000, intervalMs: 1_000, description: `${what}: the sink equal to the source` },
    );
  }

  function expectExact(result: Comparison, what: string): void {
    const message = [
      `${what}: ${result.differences.length} differences (${result.sourceRows} source rows, ${result.sinkRows} sink rows)`,
      result.failed ? `the job FAILED: ${result.failed}` : '',
      formatDifferences(result.differences),
    ]
      .filter(Boolean)
      .join('\n');
    expect.soft(result.differences, message).toEqual([]);
  }

  beforeAll(async () => {
    [catalog, source, secrets, emulator] = await Promise.all([
      createTestDatabase('e2e_zoo_catalog'),
      createTestDatabase('e2e_zoo_source'),
      clusterSecrets(),
      startStarRocksEmulator({ password: SINK_PASSWORD }),
    ]);
    await source.client.query(`create role ${SOURCE_ROLE} login superuser password '${SOURCE_PASSWORD}'`);
    await source.client.query(ZOO_TYPES_DDL);
    await source.client.query(ZOO_DDL);
    // The snapshot's rows: every value set, and two TOAST rows.
    for (const [index, set] of VALUE_SETS.entries())
      await source.client.query(insertValueSet(index + 1, set));
    for (const id of [50, 60]) await source.client.query(insertValueSet(id, VALUE_SETS[2]!, TOAST_VALUES));
    for (const bad of UNREPRESENTABLE) {
      await source.client.query(`create table ${bad.table} (id int4 primary key, edge_col ${bad.type})`);
      await source.client.query(`insert into ${bad.table} values (1, null)`);
      if (bad.when === 'snapshot')
        await source.client.query(`insert into ${bad.table} values (${BAD_KEY}, ${bad.value})`);
    }
    await source.client.query(EXTREMES_DDL);
    for (const [index, set] of EXTREME_SETS.entries())
      await source.client.query(insertInto(EXTREMES_TABLE, index + 1, set));
    await source.client.query(`create table jz_null (id int4 primary key, doc_col jsonb);
      insert into jz_null values (1, 'null'), (2, null), (3, '{"a": null}')`);
    await source.client.query('analyze');

    cp = await startControlPlaneProcess(catalog, secrets);
    admin = await adminClients(cp);
    const datasources = admin.client(DatasourceService);
    sourceId = (
      await datasources.createDatasource({
        name: 'zoo-src',
        spec: {
          case: 'postgres',
          value: {
            host: '127.0.0.1',
            port: source.server.port,
            database: source.name,
            username: SOURCE_ROLE,
            sslMode: SslMode.VERIFY_FULL,
            password: SOURCE_PASSWORD,
            sslRootCert: source.server.caPem!,
          },
        },
      })
    ).datasource!.id;
    sinkId = (
      await datasources.createDatasource({
        name: 'zoo-sink',
        spec: {
          case: 'starrocks',
          value: {
            feHost: emulator.host,
            httpPort: emulator.fePort,
            mysqlPort: emulator.mysqlPort,
            username: emulator.user,
            database: SINK_DATABASE,
            password: SINK_PASSWORD,
          },
        },
      })
    ).datasource!.id;
    oracleClient = await textClient(source.config);
    sinkConnection = await mysql.createConnection({
      host: emulator.host,
      port: emulator.mysqlPort,
      user: emulator.user,
      password: SINK_PASSWORD,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      jsonStrings: true,
      decimalNumbers: false,
    });
    reader = mysqlSinkReader(sinkConnection, SINK_DATABASE, emulator);
    const token = await admin.client(BootstrapTokenService).createBootstrapToken({ ttlSeconds: 900 });
    await startWorker(token.secret);
  });

  afterAll(async () => {
    if (notes.length > 0) console.log(`type zoo notes:\n  ${notes.join('\n  ')}`);
    await sinkConnection?.end().catch(() => undefined);
    await oracleClient?.end().catch(() => undefined);
    await Promise.all(workers.map((p) => p.stop('SIGKILL')));
    await cp?.process.stop('SIGKILL');
    await emulator?.stop();
    await source?.drop();
    const superuser = new pg.Client(connectionConfig(catalog.server));
    await superuser.connect();
    await superuser.query(`drop role if exists ${SOURCE_ROLE}`).catch(() => undefined);
    await superuser.end();
    await catalog?.drop();
  });

  it('covers at least 40 PostgreSQL types, every column gets a non-NULL value', async () => {
    const types = await source.client.query<{ type: string }>(
      `select distinct format_type(atttypid, atttypmod) as type from pg_attribute
        where attrelid = '${ZOO_TABLE}'::regclass and attnum > 0 and not attisdropped`,
    );
    expect(types.rows.length).toBeGreaterThanOrEqual(40);
    const covered = coveredColumns();
    for (const toast of Object.keys(TOAST_VALUES)) covered.add(toast);
    expect(ZOO_COLUMNS.filter((c) => !covered.has(c.name)).map((c) => c.name)).toEqual([]);
    // The TOAST values really are out of line and uncompressed.
    const toasted = await source.client.query<{ bytes: number; compressed: string | null }>(
      `select pg_column_size(c_toast) as bytes, pg_column_compression(c_toast) as compressed from ${ZOO_TABLE} where id = 50`,
    );
    expect(toasted.rows[0]!.bytes).toBeGreaterThan(8 * 1024);
    expect(toasted.rows[0]!.compressed).toBeNull();
  });

  it('copies the zoo exactly in the initial snapshot, and the comparator reports a corrupted value', async () => {
    zooJobId = await createJob('zoo', [ZOO_TABLE], {
      columnOptions: ZOO_COLUMNS.filter((c) => c.choice).map((c) => ({
        column: { table: { schema: 'public', name: ZOO_TABLE }, column: c.name },
        target: c.choice?.target === 'text' ? ColumnTarget.TEXT : ColumnTarget.UNSPECIFIED,
        onUnrepresentable:
          c.choice?.policy === 'null'
            ? UnrepresentablePolicy.NULL
            : c.choice?.policy === 'clamp'
              ? UnrepresentablePolicy.CLAMP
              : c.choice?.policy === 'fail'
                ? UnrepresentablePolicy.FAIL
                : UnrepresentablePolicy.UNSPECIFIED,
      })),
    });
    const streaming = await waitFor(
      async () => {
        const s = await status(zooJobId);
        if (s.state === JobState.FAILED) return s;
        return s.phase === JobPhase.STREAMING && s.checkpoint?.snapshotComplete && s;
      },
      { timeoutMs: 180_000, intervalMs: 250, description: 'the zoo job to finish its snapshot' },
    );
    const result = await settle(zooJobId, ZOO_TABLE, 'after the snapshot');
    if (result.refined.length > 0)
      notes.push(`read from the emulator's stored rows (MySQL text lossy): ${result.refined.join(', ')}`);
    expectExact(result, 'after the snapshot');
    expect.soft(streaming.state, `zoo job: ${errorText(streaming)}`).not.toBe(JobState.FAILED);
    // Unrepresentable values in the CLAMP and NULL columns (value sets 0 and 1): two per column.
    const counted = await counters(4n);
    expect.soft(counted.clamped, 'values clamped after the snapshot').toBeGreaterThanOrEqual(4n);
    expect.soft(counted.nulled, 'values nulled after the snapshot').toBeGreaterThanOrEqual(4n);

    // A corrupted sink value is reported, exactly that row and column; restored, the report is as before.
    const target = {
      host: emulator.host,
      bePort: emulator.bePort,
      user: emulator.user,
      password: SINK_PASSWORD,
    };
    const key = (d: Difference) => `${d.key}/${d.column}/${d.problem}`;
    const before = (await compareTable(oracleClient, reader, ZOO_TABLE, columns)).differences.map(key);
    const [stored] = (await sinkConnection.query(
      `select id, c_text from \`${SINK_DATABASE}\`.\`${ZOO_TABLE}\` where id = 4`,
    )) as unknown as [{ id: string; c_text: string | null }[]];
    expect(stored).toHaveLength(1);
    const original = stored[0]!.c_text;
    expect(original).toEqual(expect.stringContaining('tab'));
    await partialUpdate(
      target,
      SINK_DATABASE,
      ZOO_TABLE,
      [{ id: 4, c_text: `${original}\u00a0` }],
      ['id', 'c_text'],
    );
    const corrupted = (await compareTable(oracleClient, reader, ZOO_TABLE, columns)).differences;
    const added = corrupted.filter((d) => !before.includes(key(d)));
    expect(added.map((d) => ({ key: d.key, column: d.column }))).toEqual([{ key: '4', column: 'c_text' }]);
    expect(corrupted.length).toBe(before.length + 1);
    await partialUpdate(target, SINK_DATABASE, ZOO_TABLE, [{ id: 4, c_text: original }], ['id', 'c_text']);
    const restored = (await compareTable(oracleClient, reader, ZOO_TABLE, columns)).differences.map(key);
    expect(restored).toEqual(before);
  }, 600_000);

  it('streams the zoo exactly: inserts, TOAST values unchanged across updates and key changes, deletes', async () => {
    const run = async (statements: string[]) => {
      await source.client.query('begin');
      for (const statement of statements) await source.client.query(statement);
      await source.client.query('commit');
    };
    await run(VALUE_SETS.map((set, index) => insertValueSet(101 + index, set)));
    await run([150, 160].map((id) => insertValueSet(id, VALUE_SETS[2]!, TOAST_VALUES)));
    // Updates that leave the TOAST columns unchanged (pgoutput sends them as "unchanged"), on a row from
    // the snapshot and on one from the stream.
    await source.client.query(`update ${ZOO_TABLE} set c_int4 = 1 where id in (50, 150)`);
    // Primary-key changes (REPLICA IDENTITY DEFAULT: the old key only) with TOAST unchanged.
    await source.client.query(`update ${ZOO_TABLE} set id = 51 where id = 50`);
    await source.client.query(`update ${ZOO_TABLE} set id = 151, c_text = 'moved' where id = 150`);
    await run([
      `update ${ZOO_TABLE} set id = 61 where id = 60`,
      `update ${ZOO_TABLE} set c_int2 = 5 where id = 61`,
    ]);
    // A TOAST value that does change.
    await source.client.query(`update ${ZOO_TABLE} set c_int4 = 2, c_toast = c_toast || 'x' where id = 160`);
    await source.client.query(`delete from ${ZOO_TABLE} where id in (9, 107)`);
    await source.client.query(
      `update ${ZOO_TABLE} set c_float8 = '-0', c_float4 = 'NaN', c_text = null, c_jsonb = '{"late": [1, null]}' where id = 103`,
    );
    await run([
      `update ${ZOO_TABLE} set c_int2 = 1 where id = 160`,
      `update ${ZOO_TABLE} set c_int2 = 2 where id = 160`,
      `delete from ${ZOO_TABLE} where id = 104`,
      insertValueSet(104, VALUE_SETS[3]!),
    ]);
    const result = await settle(zooJobId, ZOO_TABLE, 'after streaming');
    expectExact(result, 'after streaming');
    const counted = await counters(8n);
    expect.soft(counted.clamped, 'values clamped after streaming').toBeGreaterThanOrEqual(8n);
    expect.soft(counted.nulled, 'values nulled after streaming').toBeGreaterThanOrEqual(8n);
  }, 600_000);

  it('ADD COLUMN … NOT NULL DEFAULT on the populated table: every pre-existing row holds the default', async () => {
    await source.client.query(
      `alter table ${ZOO_TABLE} add column ${ADDED_COLUMNS[0]!.name} ${ADDED_COLUMNS[0]!.type}`,
    );
    await source.client.query(
      `alter table ${ZOO_TABLE} add column ${ADDED_COLUMNS[1]!.name} ${ADDED_COLUMNS[1]!.type}`,
    );
    columns = [...ZOO_COLUMNS, ...ADDED_COLUMNS];
    // One row changes (PostgreSQL writes no WAL for the others); one TOAST row changes elsewhere.
    await source.client.query(`update ${ZOO_TABLE} set c_int2 = 7 where id = 105`);
    await source.client.query(`update ${ZOO_TABLE} set c_int2 = 9 where id = 51`);
    await source.client.query(`insert into ${ZOO_TABLE} (id, d, e) values (170, 7, 'explicit')`);
    const result = await settle(zooJobId, ZOO_TABLE, 'after ADD COLUMN');
    expectExact(result, 'after ADD COLUMN');
    const untouched = (await sinkConnection.query(
      `select id, d, e from \`${SINK_DATABASE}\`.\`${ZOO_TABLE}\` where id = 1`,
    )) as unknown as [{ d: unknown; e: unknown }[]];
    expect
      .soft(untouched[0]?.map((row) => [String(row.d), row.e]))
      .toEqual([['42', `it's a "default" \\ with a quote`]]);
  }, 600_000);

  it('kill -9 of the worker while a streaming burst is partly loaded, then a new worker: still exact', async () => {
    const before = await status(zooJobId);
    if (before.state === JobState.FAILED) throw new Error(`the zoo job failed earlier: ${errorText(before)}`);
    // Slow loads widen the window in which the burst is partly loaded; the kill waits for that state.
    for (let i = 0; i < 8; i++)
      emulator.faults.inject({ kind: 'slow', port: 'be', delayMs: 1_500, table: ZOO_TABLE });
    const baseline = successfulLoads(ZOO_TABLE);
    const burst: number[] = [];
    await source.client.query('begin');
    for (let id = 1_000; id < 1_200; id++) {
      await source.client.query(insertValueSet(id, VALUE_SETS[id % VALUE_SETS.length]!));
      burst.push(id);
    }
    await source.client.query(`update ${ZOO_TABLE} set c_int2 = 11 where id = 51`);
    await source.client.query(`update ${ZOO_TABLE} set id = 152 where id = 151`);
    await source.client.query('commit');
    for (let id = 2_000; id < 2_060; id++) {
      await source.client.query(insertValueSet(id, VALUE_SETS[id % VALUE_SETS.length]!));
      burst.push(id);
    }
    const burstInSink = () =>
      emulator.rows(SINK_DATABASE, ZOO_TABLE).filter((row) => Number(row.id) >= 1_000).length;
    const atKill = await waitFor(
      async () => {
        const s = await status(zooJobId);
        if (s.state === JobState.FAILED)
          throw new Error(`the zoo job failed during the burst: ${errorText(s)}`);
        const loaded = burstInSink();
        const loads = successfulLoads(ZOO_TABLE) - baseline;
        return loads >= 2 && loaded > 0 && loaded < burst.length && { loaded, loads };
      },
      { timeoutMs: 240_000, intervalMs: 20, description: 'part of the streaming burst in the sink' },
    ).catch(async (error: unknown) => {
      const s = await status(zooJobId);
      throw new Error(`${error}; job ${stateName(s.state)}: ${errorText(s)}`);
    });
    await worker.stop('SIGKILL');
    notes.push(
      `kill -9 with ${atKill.loaded} of ${burst.length} burst rows in the sink after ${atKill.loads} loads`,
    );
    emulator.faults.clear();
    await startWorker();
    const restarted = await waitFor(
      async () => {
        const s = await status(zooJobId);
        return (
          (s.state === JobState.FAILED || (s.epoch > before.epoch && s.phase === JobPhase.STREAMING)) && s
        );
      },
      { timeoutMs: 120_000, intervalMs: 250, description: 'the zoo job streaming again under a new lease' },
    );
    expect.soft(restarted.state, errorText(restarted)).toBe(JobState.RUNNING);
    const result = await settle(zooJobId, ZOO_TABLE, 'after kill -9');
    expectExact(result, 'after kill -9 and a new worker');

    // The new worker's run counts its own clamped and nulled values.
    await source.client.query(insertValueSet(3_000, VALUE_SETS[0]!));
    expectExact(await settle(zooJobId, ZOO_TABLE, 'after the last insert'), 'after the last insert');
    const counted = await counters(2n);
    expect.soft(counted.clamped, 'values clamped after the restart').toBeGreaterThanOrEqual(2n);
    expect.soft(counted.nulled, 'values nulled after the restart').toBeGreaterThanOrEqual(2n);
  }, 900_000);

  it('loads float4 max/min/subnormals and jsonb numbers that are doubles exactly, in the snapshot and streaming', async () => {
    const id = await createJob('zoo-extremes', [EXTREMES_TABLE]);
    const streaming = await waitFor(
      async () => {
        const s = await status(id);
        return (s.state === JobState.FAILED || s.phase === JobPhase.STREAMING) && s;
      },
      { timeoutMs: 240_000, intervalMs: 250, description: 'the extremes job streaming or failed' },
    );
    if (streaming.state !== JobState.FAILED) {
      for (const [index, set] of EXTREME_SETS.entries())
        await source.client.query(insertInto(EXTREMES_TABLE, 101 + index, set));
    }
    const saved = columns;
    columns = EXTREMES_COLUMNS;
    try {
      expectExact(await settle(id, EXTREMES_TABLE, 'extremes'), 'extremes (snapshot and streaming)');
    } finally {
      columns = saved;
    }
  }, 600_000);

  it('fails a job for each unrepresentable value without a choice, naming table, column, key and value', async () => {
    const jobs = new Map<string, string>();
    for (const bad of UNREPRESENTABLE)
      jobs.set(bad.table, await createJob(bad.table.replaceAll('_', '-'), [bad.table]));
    // Values written while streaming: once each job streams, with its first row in the sink.
    await Promise.all(
      UNREPRESENTABLE.filter((bad) => bad.when === 'streaming').map(async (bad) => {
        const id = jobs.get(bad.table)!;
        const s = await waitFor(
          async () => {
            const s = await status(id);
            return (s.state === JobState.FAILED || s.phase === JobPhase.STREAMING) && s;
          },
          { timeoutMs: 240_000, intervalMs: 250, description: `${bad.table} streaming` },
        );
        if (s.state !== JobState.FAILED)
          await source.client.query(`insert into ${bad.table} values (${BAD_KEY}, ${bad.value})`);
      }),
    );
    const failures: string[] = [];
    for (const bad of UNREPRESENTABLE) {
      const id = jobs.get(bad.table)!;
      const s = await waitFor(
        async () => {
          const s = await status(id);
          return s.state === JobState.FAILED && s;
        },
        { timeoutMs: 180_000, intervalMs: 250, description: `the ${bad.table} job to fail` },
      ).catch(async (error: unknown) => {
        const s = await status(id);
        failures.push(
          `${bad.table} (${bad.when}): not FAILED (state ${stateName(s.state)}, ${errorText(s)}): ${error}`,
        );
        return undefined;
      });
      const row = emulator.rows(SINK_DATABASE, bad.table).find((r) => Number(r.id) === BAD_KEY);
      if (row)
        failures.push(`${bad.table}: the unrepresentable row is in the sink as ${JSON.stringify(row)}`);
      if (!s) continue;
      const message = errorText(s);
      const parts: (string | readonly string[])[] = [bad.table, 'edge_col', String(BAD_KEY), bad.text];
      for (const part of parts) {
        const forms = typeof part === 'string' ? [part] : part;
        if (!forms.some((form) => message.includes(form)))
          failures.push(`${bad.table}: the error doesn't name ${JSON.stringify(part)}: ${message}`);
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
  }, 900_000);

  it("loads a JSON 'null' document as something other than SQL NULL, or fails naming it", async () => {
    const id = await createJob('jz-null', ['jz_null']);
    const streaming = await waitFor(
      async () => {
        const s = await status(id);
        return (s.state === JobState.FAILED || s.phase === JobPhase.STREAMING) && s;
      },
      { timeoutMs: 240_000, intervalMs: 250, description: 'the jz_null job streaming or failed' },
    );
    if (streaming.state !== JobState.FAILED)
      await source.client.query(`insert into jz_null values (4, 'null'::jsonb)`);
    const jsonColumns: ZooColumn[] = [
      { name: 'doc_col', type: 'jsonb', oracle: { kind: 'json', sinkType: /^json$/i } },
    ];
    let result: Comparison | undefined;
    const outcome = await waitFor(
      async () => {
        const s = await status(id);
        if (s.state === JobState.FAILED) return { failed: errorText(s) };
        result = await compareTable(oracleClient, reader, 'jz_null', jsonColumns).catch(() => undefined);
        return result?.differences.length === 0 && { failed: undefined };
      },
      { timeoutMs: 180_000, intervalMs: 500, description: 'jz_null loaded exactly, or its job failed' },
    ).catch((error: unknown) => {
      throw new Error(`${error}\n${result ? formatDifferences(result.differences) : ''}`);
    });
    if (outcome.failed !== undefined) {
      notes.push(`'null'::jsonb: the job failed: ${outcome.failed}`);
      expect(outcome.failed).toContain('doc_col');
      expect(outcome.failed).toMatch(/null/);
    } else {
      notes.push(`'null'::jsonb: loaded as JSON null, distinct from SQL NULL`);
      const rows = emulator.rows(SINK_DATABASE, 'jz_null');
      expect(rows.find((r) => Number(r.id) === 1)?.doc_col).not.toBeNull();
      expect(rows.find((r) => Number(r.id) === 2)?.doc_col).toBeNull();
    }
  }, 600_000);
});
