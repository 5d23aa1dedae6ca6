// `sluice job create` refuses a table without a primary key or usable replica identity: the control plane
// (which never connects to the source) has a worker check the job's tables first. Real processes over TLS 1.3:
// control plane, worker, and the CLI; the run's PostgreSQL as the source, the StarRocks emulator as the sink.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { BootstrapTokenService, DatasourceService, JobService, JobState, SslMode } from '@sluice/proto';
import {
  createTestDatabase,
  type ServiceProcess,
  type StarRocksEmulator,
  startStarRocksEmulator,
  type TestDatabase,
  waitFor,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  adminClients,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  startControlPlaneProcess,
  startWorkerProcess,
} from './cluster.ts';

const MAIN = path.resolve(import.meta.dirname, '../../packages/cli/main.ts');
const FIX = 'run: alter table "public"."no_pk" add primary key (<key columns>)';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('job create checks the tables on a worker', () => {
  let catalog: TestDatabase;
  let source: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let emulator: StarRocksEmulator;
  let worker: ServiceProcess | undefined;
  let admin: Awaited<ReturnType<typeof adminClients>>;
  let stateDir: string;

  function sluice(args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [MAIN, ...args],
        { env: { PATH: process.env.PATH, HOME: secrets.dir, SLUICE_STATE_DIR: stateDir }, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  beforeAll(async () => {
    [catalog, source, secrets, emulator] = await Promise.all([
      createTestDatabase('e2e_table_check_catalog'),
      createTestDatabase('e2e_table_check_source'),
      clusterSecrets(),
      startStarRocksEmulator({ password: 'table-check-sink' }),
    ]);
    await source.client.query(`
      create table with_pk (id int primary key, v text);
      create table no_pk (a int, b text);
      insert into no_pk values (1, 'x');`);
    cp = await startControlPlaneProcess(catalog, secrets);
    admin = await adminClients(cp);
    const datasources = admin.client(DatasourceService);
    await datasources.createDatasource({
      name: 'tc-src',
      spec: {
        case: 'postgres',
        value: {
          host: '127.0.0.1',
          port: source.server.port,
          database: source.name,
          username: source.server.user,
          sslMode: SslMode.VERIFY_FULL,
          password: source.server.password,
          sslRootCert: source.server.caPem!,
        },
      },
    });
    await datasources.createDatasource({
      name: 'tc-sink',
      spec: {
        case: 'starrocks',
        value: {
          feHost: emulator.host,
          httpPort: emulator.fePort,
          mysqlPort: emulator.mysqlPort,
          username: emulator.user,
          database: 'table_check',
          password: 'table-check-sink',
        },
      },
    });
    stateDir = await mkdtemp(path.join(secrets.dir, 'cli-'));
    const login = await sluice([
      'login',
      '--control-plane',
      cp.url,
      '--ca-file',
      cp.caFile,
      '--username',
      ADMIN.username,
      '--password-file',
      secrets.adminPasswordFile,
    ]);
    expect(login.code, login.stderr).toBe(0);
  });

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await cp?.process.stop('SIGKILL');
    await emulator?.stop();
    await source?.drop();
    await catalog?.drop();
  });

  const create = (name: string, ...tables: string[]) =>
    sluice([
      'job',
      'create',
      '--name',
      name,
      '--source',
      'tc-src',
      '--sink',
      'tc-sink',
      ...tables.flatMap((table) => ['--table', table]),
      '--start',
    ]);

  it('without a worker online, creates the job and says the tables are checked at start, where the worker refuses it', async () => {
    const run = await create('early', 'public.no_pk');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(
      'tables not checked yet: no worker is online; the tables will be checked when a worker starts the job',
    );
    const token = await admin.client(BootstrapTokenService).createBootstrapToken({ ttlSeconds: 600 });
    worker = await startWorkerProcess(cp, {
      token: token.secret,
      stateDir: path.join(secrets.dir, 'worker'),
    });
    const { jobs } = await admin.client(JobService).listJobs({});
    const id = jobs.find((job) => job.name === 'early')!.id;
    const failed = await waitFor(
      async () => {
        const { status } = await admin.client(JobService).getJobStatus({ id });
        return status?.state === JobState.FAILED && status;
      },
      { timeoutMs: 60_000, description: 'the worker to refuse the table at start' },
    );
    expect(failed.lastError?.message).toMatch(
      /table "public"\."no_pk" has no primary key or replica identity/,
    );
  });

  it('with a worker online, refuses a table without a primary key with exit 5 and the fix, and creates nothing', async () => {
    const run = await create('late', 'public.with_pk', 'public.no_pk');
    expect(run.stderr.trim()).toBe(
      `sluice: job late was not created: tc-src: table "public"."no_pk" has no primary key or replica identity — ${FIX}`,
    );
    expect(run.code).toBe(5);
    const list = await sluice(['job', 'list', '--json']);
    expect(JSON.parse(list.stdout).jobs.map((job: { name: string }) => job.name)).toEqual(['early']);

    const test = await sluice(['datasource', 'test', 'tc-src', '--table', 'public.no_pk']);
    expect(test.code).toBe(1);
    expect(test.stdout).toContain(FIX);

    const good = await create('good', 'public.with_pk');
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain('tables checked on a worker: replicable');

    // The fix works: after it, the table passes.
    await source.client.query('alter table no_pk add primary key (a)');
    const fixed = await sluice(['datasource', 'test', 'tc-src', '--table', 'public.no_pk', '--json']);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(JSON.parse(fixed.stdout)).toMatchObject({
      ok: true,
      message: 'connected to tc-src (1 table can be replicated)',
    });
  });
});
