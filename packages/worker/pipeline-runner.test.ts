import { create } from '@bufbuild/protobuf';
import { createLogger, Secret } from '@sluice/crypto';
import {
  ColumnTarget,
  DatasourceKind,
  DatasourceSecretsSchema,
  ErrorKind,
  JobLeaseSchema,
  JobOptionsSchema,
  JobPhase,
  JobState,
  ReportProgressResponseSchema,
  SslMode,
  UnrepresentablePolicy,
} from '@sluice/proto';
import { createTestDatabase, type StarRocksEmulator, startStarRocksEmulator, waitFor } from '@sluice/testkit';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobContext, ProgressReport } from './job-runner.ts';
import { createPipelineRunner } from './pipeline-runner.ts';

let emulator: StarRocksEmulator;
beforeAll(async () => {
  emulator = await startStarRocksEmulator({ password: 'sink-pw-runner' });
});
afterAll(async () => {
  await emulator?.stop();
});

function leaseFor(jobId: string, server: { port: number; caPem?: string }, database: string, sinkDb: string) {
  return create(JobLeaseSchema, {
    jobId,
    epoch: 3n,
    spec: {
      job: {
        id: jobId,
        name: 'runner',
        tables: [{ schema: 'public', name: 'items' }],
        state: JobState.RUNNING,
      },
      source: {
        id: 'src',
        name: 'runner-src',
        kind: DatasourceKind.POSTGRES,
        config: {
          case: 'postgres',
          value: {
            host: '127.0.0.1',
            port: server.port,
            database,
            username: 'postgres',
            sslMode: SslMode.VERIFY_FULL,
          },
        },
      },
      sink: {
        id: 'sink',
        name: 'runner-sink',
        kind: DatasourceKind.STARROCKS,
        config: {
          case: 'starrocks',
          value: {
            feHost: emulator.host,
            httpPort: emulator.fePort,
            mysqlPort: emulator.mysqlPort,
            username: emulator.user,
            database: sinkDb,
          },
        },
      },
    },
  });
}

function fakeContext(
  lease: ReturnType<typeof leaseFor>,
  passwords: { source: string; sink: string; caPem: string },
) {
  const reports: ProgressReport[] = [];
  const abort = new AbortController();
  let opened = 0;
  const context: JobContext = {
    lease,
    signal: abort.signal,
    logger: createLogger('runner-test', { level: 'silent' }),
    async credentials() {
      opened++;
      return {
        source: Secret.of(
          create(DatasourceSecretsSchema, { password: passwords.source, sslRootCert: passwords.caPem }),
        ),
        sink: Secret.of(create(DatasourceSecretsSchema, { password: passwords.sink })),
      };
    },
    async report(progress) {
      reports.push(progress);
      return create(ReportProgressResponseSchema, { desiredState: JobState.RUNNING });
    },
  };
  return { context, reports, abort, opened: () => opened };
}

describe('pipeline runner', () => {
  it('replicates a leased job, reports phase, counters and checkpoints, and releases the lease on drain', async () => {
    const db = await createTestDatabase('runner-drain');
    try {
      await db.client.query(
        `create table items (id int primary key, v text); insert into items select g, 'v' || g from generate_series(1, 300) g`,
      );
      const registry = new Registry();
      const lease = leaseFor('11111111-1111-4111-8111-111111111111', db.server, db.name, 'runner_drain');
      const fake = fakeContext(lease, {
        source: db.server.password,
        sink: 'sink-pw-runner',
        caPem: db.server.caPem!,
      });
      const run = createPipelineRunner({ registry, reportEveryMs: 100 })(fake.context);
      await waitFor(() => fake.reports.some((r) => r.phase === JobPhase.STREAMING), {
        timeoutMs: 30_000,
        description: 'streaming reported',
      });
      await db.client.query(`insert into items values (1000, 'streamed')`);
      await waitFor(() => emulator.rows('runner_drain', 'items').length === 301, {
        description: 'streamed row',
      });
      run.stop({ drain: true, reason: 'test' });
      await run.done;
      const last = fake.reports.at(-1)!;
      expect(last.released).toBe(true);
      expect(last.checkpoint?.snapshotComplete).toBe(true);
      expect(last.checkpoint?.durableLsn).toBeGreaterThan(0n);
      const table = fake.reports.flatMap((r) => r.tables ?? []).find((t) => (t.snapshotRows ?? 0n) > 0n);
      expect(table?.snapshotRows).toBe(300n);
      expect(fake.opened()).toBeGreaterThan(0);
      // Each report replaces the stored status whole: checkpoint saves must carry the rate too, or status
      // shows 0 rows/s between periodic reports.
      expect(fake.reports.filter((r) => r.rowsPerSecond === undefined)).toEqual([]);
      expect(Math.max(...fake.reports.map((r) => r.rowsPerSecond ?? 0))).toBeGreaterThan(0);
      const metrics = await registry.metrics();
      expect(metrics).toContain('sluice_job_rows_total');
      expect(metrics).toContain('sluice_job_lag_bytes');
    } finally {
      await db.drop();
    }
  });

  it("passes the job's column choices to the sink and reports values nulled and clamped per table, in progress and /metrics", async () => {
    const db = await createTestDatabase('runner-choices');
    try {
      await db.client.query(
        `create table items (id int primary key, v text, d date, e date, f date);
         insert into items select g, 'v', 'infinity', 'infinity', 'infinity' from generate_series(1, 3) g;
         insert into items values (4, 'v', '2024-01-02', '2024-01-02', '2024-01-02')`,
      );
      const registry = new Registry();
      const jobId = '44444444-4444-4444-8444-444444444444';
      const lease = leaseFor(jobId, db.server, db.name, 'runner_choices');
      const table = { schema: 'public', name: 'items' };
      lease.spec!.job!.options = create(JobOptionsSchema, {
        columnOptions: [
          { column: { table, column: 'd' }, onUnrepresentable: UnrepresentablePolicy.CLAMP },
          { column: { table, column: 'e' }, onUnrepresentable: UnrepresentablePolicy.NULL },
          { column: { table, column: 'f' }, target: ColumnTarget.TEXT },
        ],
      });
      const fake = fakeContext(lease, {
        source: db.server.password,
        sink: 'sink-pw-runner',
        caPem: db.server.caPem!,
      });
      const run = createPipelineRunner({ registry, reportEveryMs: 100 })(fake.context);
      await waitFor(() => fake.reports.some((r) => r.phase === JobPhase.STREAMING), {
        timeoutMs: 30_000,
        description: 'streaming reported',
      });
      await db.client.query(`insert into items values (5, 'streamed', 'infinity', '2024-01-03', 'infinity')`);
      await waitFor(() => emulator.rows('runner_choices', 'items').length === 5, {
        description: 'streamed row',
      });
      // While the job runs, /metrics counts what the choices did, per table and action.
      const lines = [
        `sluice_values_adjusted_total{job="${jobId}",table="public.items",action="clamp"} 4`,
        `sluice_values_adjusted_total{job="${jobId}",table="public.items",action="null"} 3`,
      ];
      await waitFor(
        async () => {
          const metrics = await registry.metrics();
          return lines.every((line) => metrics.includes(line));
        },
        { description: 'values adjusted in /metrics' },
      ).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await registry.metrics()}`);
      });
      run.stop({ drain: true, reason: 'test' });
      await run.done;
      const rows = new Map(emulator.rows('runner_choices', 'items').map((row) => [String(row.id), row]));
      expect(String(rows.get('1')?.d)).toBe('9999-12-31');
      expect(rows.get('1')?.e ?? null).toBeNull();
      expect(rows.get('1')?.f).toBe('infinity');
      expect(String(rows.get('4')?.e)).toBe('2024-01-02');
      const last = fake.reports.at(-1)!.tables!.find((t) => t.table?.name === 'items')!;
      expect(last.valuesClamped).toBe(4n);
      expect(last.valuesNulled).toBe(3n);
      // A finished job's series leave the registry with it.
      expect(await registry.metrics()).not.toContain(`sluice_values_adjusted_total{job="${jobId}"`);
    } finally {
      await db.drop();
    }
  });

  it('marks the job failed with a message naming the sink datasource and a solution when the sink refuses the password', async () => {
    const db = await createTestDatabase('runner-fail');
    try {
      await db.client.query('create table items (id int primary key, v text)');
      const lease = leaseFor('22222222-2222-4222-8222-222222222222', db.server, db.name, 'runner_fail');
      const fake = fakeContext(lease, {
        source: db.server.password,
        sink: 'wrong-password',
        caPem: db.server.caPem!,
      });
      const run = createPipelineRunner()(fake.context);
      await expect(run.done).rejects.toThrow(/runner-sink/);
      const failed = fake.reports.find((r) => r.failed);
      expect(failed?.error?.kind).toBe(ErrorKind.OPERATOR);
      expect(failed?.error?.message).toContain('"runner-sink"');
      expect(failed?.error?.solution).toMatch(/\S/);
      expect(JSON.stringify(fake.reports, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(
        'wrong-password',
      );
    } finally {
      await db.drop();
    }
  });

  it('names the PostgreSQL datasource when the source refuses the password', async () => {
    const db = await createTestDatabase('runner-source');
    try {
      await db.client.query('create table items (id int primary key, v text)');
      const lease = leaseFor('33333333-3333-4333-8333-333333333333', db.server, db.name, 'runner_source');
      const fake = fakeContext(lease, {
        source: 'not-the-password',
        sink: 'sink-pw-runner',
        caPem: db.server.caPem!,
      });
      const run = createPipelineRunner()(fake.context);
      await expect(run.done).rejects.toThrow(/PostgreSQL datasource "runner-src"/);
      const failed = fake.reports.find((r) => r.failed);
      expect(failed?.error?.kind).toBe(ErrorKind.OPERATOR);
      expect(failed?.error?.solution).toMatch(/password/);
    } finally {
      await db.drop();
    }
  });
});
