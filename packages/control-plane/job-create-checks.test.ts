// CreateJob's per-column choices (stored and returned with the job) and its table check, which a worker runs:
// here a stand-in completes the connection test in the catalog the way the worker service would.
import { Code, ConnectError } from '@connectrpc/connect';
import { ColumnTarget, DatasourceService, JobService, SslMode, UnrepresentablePolicy } from '@sluice/proto';
import { waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from './test-control-plane.ts';

const WORKER_ID = '0b7c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3';
const orders = { schema: 'public', name: 'orders' };

describe('CreateJob: column choices and the table check', () => {
  let t: TestControlPlane;
  let token: string;
  let sourceId: string;
  let sinkId: string;

  beforeAll(async () => {
    t = await startTestControlPlane({ label: 'cp_job_checks' });
    token = await t.adminToken();
    const datasources = t.client(DatasourceService, token);
    sourceId = (
      await datasources.createDatasource({
        name: 'checks-src',
        spec: {
          case: 'postgres',
          value: { host: 'db.example.com', database: 'app', username: 'r', sslMode: SslMode.REQUIRE },
        },
      })
    ).datasource!.id;
    sinkId = (
      await datasources.createDatasource({
        name: 'checks-sink',
        spec: { case: 'starrocks', value: { feHost: 'sr.example.com', username: 'l', database: 'dw' } },
      })
    ).datasource!.id;
  });

  afterAll(async () => {
    await t?.stop();
  });

  /** CreateJob, with the table check of its answer (`passed` when a worker checked the tables). */
  async function createJob(name: string, extra: Record<string, unknown> = {}) {
    const answer = await t.client(JobService, token).createJob({
      name,
      sourceId,
      sinkId,
      tables: [orders],
      ...extra,
    });
    return {
      job: answer.job!,
      check: answer.tableCheck?.checked ? 'passed' : 'not-checked',
      note: answer.tableCheck?.note ?? '',
    };
  }

  /** Stands in for the worker: answers the next connection test of the source, returning the tables it named. */
  async function answerTest(answer: { ok: boolean; message: string; serverVersion: string }) {
    const test = await waitFor(
      async () =>
        (
          await t.cp.pool.query<{ id: string; tables: unknown }>(
            "select id, tables from connection_tests where datasource_id = $1 and state = 'pending'",
            [sourceId],
          )
        ).rows[0],
      { description: 'a pending connection test' },
    );
    await t.cp.pool.query(
      `update connection_tests set state = 'done', worker_id = $2, ok = $3, message = $4, server_version = $5,
         latency_ms = 3, completed_at = now() where id = $1`,
      [test.id, WORKER_ID, answer.ok, answer.message, answer.serverVersion],
    );
    return test.tables;
  }

  it('stores the column choices with the job and returns them', async () => {
    const columnOptions = [
      { column: { table: orders, column: 'placed' }, target: ColumnTarget.TEXT },
      { column: { table: orders, column: 'ratio' }, onUnrepresentable: UnrepresentablePolicy.CLAMP },
      {
        column: { table: orders, column: 'born' },
        target: ColumnTarget.TEXT,
        onUnrepresentable: UnrepresentablePolicy.NULL,
      },
    ];
    const { job, check, note } = await createJob('with-choices', { options: { columnOptions } });
    expect(check).toBe('not-checked');
    expect(note).toBe('no worker is online; the tables will be checked when a worker starts the job');
    const stored = (await t.client(JobService, token).getJob({ id: job.id })).job!;
    expect(
      stored.options!.columnOptions.map((o) => [
        o.column?.table?.name,
        o.column?.column,
        o.target,
        o.onUnrepresentable,
      ]),
    ).toEqual([
      ['orders', 'placed', ColumnTarget.TEXT, UnrepresentablePolicy.UNSPECIFIED],
      ['orders', 'ratio', ColumnTarget.UNSPECIFIED, UnrepresentablePolicy.CLAMP],
      ['orders', 'born', ColumnTarget.TEXT, UnrepresentablePolicy.NULL],
    ]);
  });

  describe('with a worker online', () => {
    beforeAll(async () => {
      await t.cp.pool.query(
        `insert into workers (id, hostname, version, state, agent_state, last_heartbeat_at)
         values ($1, 'checker.example', '0.1.0', 'active', 'running', now())`,
        [WORKER_ID],
      );
    });
    afterAll(async () => {
      await t.cp.pool.query("update workers set state = 'revoked' where id = $1", [WORKER_ID]);
    });

    it('refuses the job with the worker’s message when the worker connected and refused a table, creating nothing', async () => {
      const message =
        'checks-src: table "public"."orders" has no primary key or replica identity — run: alter table "public"."orders" add primary key (<key columns>)';
      const [refused, tables] = await Promise.all([
        createJob('refused').then(
          () => undefined,
          (e: unknown) => e,
        ),
        answerTest({ ok: false, message, serverVersion: '18.1' }),
      ]);
      expect(tables).toEqual([orders]);
      expect(refused).toBeInstanceOf(ConnectError);
      expect(Code[(refused as ConnectError).code]).toBe(Code[Code.FailedPrecondition]);
      expect((refused as ConnectError).rawMessage).toBe(`job refused was not created: ${message}`);
      const listed = await t.client(JobService, token).listJobs({});
      expect(listed.jobs.map((j) => j.name)).not.toContain('refused');
    });

    it('creates the job when the worker passed the tables, and says so', async () => {
      const [created] = await Promise.all([
        createJob('passed'),
        answerTest({
          ok: true,
          message: 'connected to checks-src (1 table can be replicated)',
          serverVersion: '18.1',
        }),
      ]);
      expect(created.check).toBe('passed');
      expect(created.note).toMatch(/^worker 0b7c1d2e checked the tables$/);
    });

    it('creates the job unchecked when the worker could not connect to the source', async () => {
      const [created] = await Promise.all([
        createJob('unreachable'),
        answerTest({ ok: false, message: 'checks-src: could not connect', serverVersion: '' }),
      ]);
      expect(created.check).toBe('not-checked');
      expect(created.note).toBe(
        'a worker could not connect to the source (checks-src: could not connect); the tables will be checked when a worker starts the job',
      );
    });

    it('creates the job unchecked when no worker claims the check within a few seconds, and withdraws it', async () => {
      const started = Date.now();
      const created = await createJob('unclaimed');
      expect(Date.now() - started).toBeLessThan(9_000);
      expect(created.check).toBe('not-checked');
      expect(created.note).toMatch(/^no worker answered the table check in time/);
      const left = await t.cp.pool.query(
        "select 1 from connection_tests where datasource_id = $1 and state = 'pending'",
        [sourceId],
      );
      expect(left.rowCount).toBe(0);
    });
  });
});
