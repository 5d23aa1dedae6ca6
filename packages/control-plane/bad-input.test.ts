import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import {
  AuditService,
  AuthService,
  BootstrapTokenService,
  ColumnTarget,
  DatasourceService,
  health,
  JobService,
  KeyService,
  Role,
  SslMode,
  UnrepresentablePolicy,
  UserService,
  WorkerAdminService,
} from '@sluice/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane, testPems } from './test-control-plane.ts';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

interface Ctx {
  t: TestControlPlane;
  admin: string;
  operator: string;
  viewer: string;
  pems: Awaited<ReturnType<typeof testPems>>;
  sourceId: string;
  sinkId: string;
  createdJobId: string;
  pendingJobId: string;
  revokedWorkerId: string;
  usedTokenId: string;
  adminId: string;
}

interface Case {
  name: string;
  code: Code;
  message: RegExp;
  call: (c: Ctx) => Promise<unknown>;
}

const pg = (value: Record<string, unknown>) => ({
  case: 'postgres' as const,
  value: {
    host: 'db.example.com',
    database: 'app',
    username: 'replicator',
    sslMode: SslMode.REQUIRE,
    ...value,
  },
});
const sr = (value: Record<string, unknown>) => ({
  case: 'starrocks' as const,
  value: { feHost: 'sr.example.com', username: 'loader', database: 'dw', ...value },
});
const ds = (c: Ctx) => c.t.client(DatasourceService, c.admin);
const jobs = (c: Ctx) => c.t.client(JobService, c.admin);
const users = (c: Ctx) => c.t.client(UserService, c.admin);
const table = { schema: 'public', name: 'orders' };
const job = (c: Ctx, extra: Record<string, unknown>) =>
  jobs(c).createJob({ name: 'bad-job', sourceId: c.sourceId, sinkId: c.sinkId, tables: [table], ...extra });

const CASES: Case[] = [
  // Users.
  {
    name: 'a user without a name',
    code: Code.InvalidArgument,
    message: /username is required/,
    call: (c) => users(c).createUser({ username: '', password: 'long-enough-password', role: Role.VIEWER }),
  },
  {
    name: 'an oversized user name',
    code: Code.InvalidArgument,
    message: /longer than 64/,
    call: (c) =>
      users(c).createUser({ username: 'u'.repeat(65), password: 'long-enough-password', role: Role.VIEWER }),
  },
  {
    name: 'an SQL-ish user name',
    code: Code.InvalidArgument,
    message: /may only contain/,
    call: (c) =>
      users(c).createUser({
        username: "bob'); drop table users;--",
        password: 'long-enough-password',
        role: Role.VIEWER,
      }),
  },
  {
    name: 'a Unicode user name',
    code: Code.InvalidArgument,
    message: /may only contain/,
    call: (c) =>
      users(c).createUser({ username: 'ädmin', password: 'long-enough-password', role: Role.VIEWER }),
  },
  {
    name: 'a short password',
    code: Code.InvalidArgument,
    message: /at least 12 characters/,
    call: (c) => users(c).createUser({ username: 'shorty', password: 'short', role: Role.VIEWER }),
  },
  {
    name: 'an oversized password',
    code: Code.InvalidArgument,
    message: /longer than 1024/,
    call: (c) => users(c).createUser({ username: 'huge', password: 'p'.repeat(2000), role: Role.VIEWER }),
  },
  {
    name: 'a user without a role',
    code: Code.InvalidArgument,
    message: /role is required/,
    call: (c) =>
      users(c).createUser({ username: 'norole', password: 'long-enough-password', role: Role.UNSPECIFIED }),
  },
  {
    name: 'an update of an unknown user',
    code: Code.NotFound,
    message: /user "0{8}-.*" not found/,
    call: (c) => users(c).updateUser({ id: UNKNOWN_ID, disabled: true }),
  },
  {
    name: 'a user id that is not a UUID',
    code: Code.NotFound,
    message: /user "not-a-uuid" not found/,
    call: (c) => users(c).deleteUser({ id: 'not-a-uuid' }),
  },
  {
    name: 'a delete without an id',
    code: Code.InvalidArgument,
    message: /id is required/,
    call: (c) => users(c).deleteUser({ id: '' }),
  },
  {
    name: 'an admin deleting itself',
    code: Code.FailedPrecondition,
    message: /can't delete itself/,
    call: (c) => users(c).deleteUser({ id: c.adminId }),
  },
  {
    name: 'an admin demoting itself',
    code: Code.FailedPrecondition,
    message: /can't change its own role/,
    call: (c) => users(c).updateUser({ id: c.adminId, role: Role.VIEWER }),
  },

  // Datasources.
  {
    name: 'a datasource without a name',
    code: Code.InvalidArgument,
    message: /name is required/,
    call: (c) => ds(c).createDatasource({ name: '', spec: sr({}) }),
  },
  {
    name: 'an oversized datasource name',
    code: Code.InvalidArgument,
    message: /longer than 63/,
    call: (c) => ds(c).createDatasource({ name: 'n'.repeat(64), spec: sr({}) }),
  },
  {
    name: 'an SQL-ish datasource name',
    code: Code.InvalidArgument,
    message: /may only contain/,
    call: (c) => ds(c).createDatasource({ name: "x'; drop table datasources;--", spec: sr({}) }),
  },
  {
    name: 'a Unicode datasource name',
    code: Code.InvalidArgument,
    message: /may only contain/,
    call: (c) => ds(c).createDatasource({ name: 'données', spec: sr({}) }),
  },
  {
    name: 'a datasource without a spec',
    code: Code.InvalidArgument,
    message: /spec is required/,
    call: (c) => ds(c).createDatasource({ name: 'nospec' }),
  },
  {
    name: 'a port above 65535',
    code: Code.InvalidArgument,
    message: /postgres\.port 70000 is out of range/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ port: 70000 }) }),
  },
  {
    name: 'a missing host',
    code: Code.InvalidArgument,
    message: /postgres\.host is required/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ host: '' }) }),
  },
  {
    name: 'a host name with bad characters',
    code: Code.InvalidArgument,
    message: /not a valid host name/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ host: 'db_server!.example' }) }),
  },
  {
    name: 'an oversized host name',
    code: Code.InvalidArgument,
    message: /longer than 253/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ host: `${'a'.repeat(60)}.`.repeat(5) }) }),
  },
  {
    name: 'verify-full without a root certificate',
    code: Code.InvalidArgument,
    message: /verify-full needs postgres\.ssl_root_cert/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ sslMode: SslMode.VERIFY_FULL }) }),
  },
  {
    name: 'verify-ca without a root certificate',
    code: Code.InvalidArgument,
    message: /verify-ca needs postgres\.ssl_root_cert/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ sslMode: SslMode.VERIFY_CA }) }),
  },
  {
    name: 'a root certificate that is not PEM',
    code: Code.InvalidArgument,
    message: /ssl_root_cert is not a PEM certificate/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ sslRootCert: 'hello' }) }),
  },
  {
    name: 'a corrupted root certificate',
    code: Code.InvalidArgument,
    message: /ssl_root_cert contains a certificate that does not parse/,
    call: (c) =>
      ds(c).createDatasource({
        name: 'p',
        spec: pg({ sslRootCert: c.pems.rootCert.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA') }),
      }),
  },
  {
    name: 'a private key given as the root certificate',
    code: Code.InvalidArgument,
    message: /not a certificate/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ sslRootCert: c.pems.clientKey }) }),
  },
  {
    name: 'a client certificate without its key',
    code: Code.InvalidArgument,
    message: /must be given together/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ sslClientCert: c.pems.clientCert }) }),
  },
  {
    name: 'a client key that is not PEM',
    code: Code.InvalidArgument,
    message: /ssl_client_key is not a PEM private key/,
    call: (c) =>
      ds(c).createDatasource({
        name: 'p',
        spec: pg({ sslClientCert: c.pems.clientCert, sslClientKey: 'secret' }),
      }),
  },
  {
    name: 'a corrupted client key',
    code: Code.InvalidArgument,
    message: /ssl_client_key does not parse as a private key/,
    call: (c) =>
      ds(c).createDatasource({
        name: 'p',
        spec: pg({
          sslClientCert: c.pems.clientCert,
          sslClientKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
        }),
      }),
  },
  {
    name: 'an oversized certificate',
    code: Code.InvalidArgument,
    message: /larger than 64 KiB/,
    call: (c) =>
      ds(c).createDatasource({ name: 'p', spec: pg({ sslRootCert: c.pems.rootCert.repeat(200) }) }),
  },
  {
    name: 'an oversized datasource password',
    code: Code.InvalidArgument,
    message: /postgres\.password is longer than 1024/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ password: 'x'.repeat(1500) }) }),
  },
  {
    name: 'a database name with a NUL byte',
    code: Code.InvalidArgument,
    message: /postgres\.database contains a control/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ database: 'app\u0000' }) }),
  },
  {
    name: 'a role name hiding a right-to-left override',
    code: Code.InvalidArgument,
    message: /postgres\.username contains a control or invisible/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ username: 'repl\u202eicator' }) }),
  },
  {
    name: 'a connection string naming a certificate file',
    code: Code.InvalidArgument,
    message: /sslrootcert names a file/,
    call: (c) =>
      ds(c).createDatasource({
        name: 'p',
        spec: pg({ host: '', connectionString: 'host=db.example.com sslrootcert=/etc/ssl/root.crt' }),
      }),
  },
  {
    name: 'a connection string that is neither form',
    code: Code.InvalidArgument,
    message: /neither a postgresql:\/\/ URI nor key=value/,
    call: (c) => ds(c).createDatasource({ name: 'p', spec: pg({ connectionString: 'just some words' }) }),
  },
  {
    name: 'a connection string with a bad port',
    code: Code.InvalidArgument,
    message: /connection_string port is out of range/,
    call: (c) =>
      ds(c).createDatasource({
        name: 'p',
        spec: pg({ connectionString: 'postgresql://u:pw@h.example:99999/db' }),
      }),
  },
  {
    name: 'a connection string with an unknown sslmode',
    code: Code.InvalidArgument,
    message: /sslmode must be disable/,
    call: (c) =>
      ds(c).createDatasource({
        name: 'p',
        spec: pg({ connectionString: 'host=h.example sslmode=sometimes' }),
      }),
  },
  {
    name: 'a StarRocks MySQL port of 65536',
    code: Code.InvalidArgument,
    message: /starrocks\.mysql_port 65536 is out of range/,
    call: (c) => ds(c).createDatasource({ name: 's', spec: sr({ mysqlPort: 65536 }) }),
  },
  {
    name: 'a StarRocks CA without TLS',
    code: Code.InvalidArgument,
    message: /ssl_enabled is false/,
    call: (c) => ds(c).createDatasource({ name: 's', spec: sr({ caCert: c.pems.rootCert }) }),
  },
  {
    name: 'a StarRocks sink without a database',
    code: Code.InvalidArgument,
    message: /starrocks\.database is required/,
    call: (c) => ds(c).createDatasource({ name: 's', spec: sr({ database: '' }) }),
  },
  {
    name: 'an unknown datasource',
    code: Code.NotFound,
    message: /datasource "0{8}-.*" not found/,
    call: (c) => ds(c).getDatasource({ id: UNKNOWN_ID }),
  },
  {
    name: 'a datasource update that changes its kind',
    code: Code.InvalidArgument,
    message: /kind can't change/,
    call: (c) => ds(c).updateDatasource({ id: c.sourceId, spec: sr({}) }),
  },
  {
    name: 'deleting a datasource a job uses',
    code: Code.FailedPrecondition,
    message: /is used by job\(s\) bad-input-created/,
    call: (c) => ds(c).deleteDatasource({ id: c.sourceId }),
  },
  {
    name: 'a connection test with no worker',
    code: Code.FailedPrecondition,
    message: /no active worker/,
    call: (c) => ds(c).testDatasource({ id: c.sourceId }),
  },
  {
    name: 'a connection test waiting too long',
    code: Code.InvalidArgument,
    message: /wait_ms 70000 is above the maximum/,
    call: (c) => ds(c).testDatasource({ id: c.sourceId, waitMs: 70_000 }),
  },

  // Jobs.
  {
    name: 'a job without tables',
    code: Code.InvalidArgument,
    message: /at least one table/,
    call: (c) => job(c, { tables: [] }),
  },
  {
    name: 'a job listing a table twice',
    code: Code.InvalidArgument,
    message: /tables\[1\] repeats public\.orders/,
    call: (c) => job(c, { tables: [table, table] }),
  },
  {
    name: 'a table without a schema',
    code: Code.InvalidArgument,
    message: /tables\[0\]\.schema is required/,
    call: (c) => job(c, { tables: [{ schema: '', name: 'x' }] }),
  },
  {
    name: 'an oversized Unicode table name',
    code: Code.InvalidArgument,
    message: /tables\[0\]\.name is longer than 63 bytes/,
    call: (c) => job(c, { tables: [{ schema: 'public', name: 'ü'.repeat(40) }] }),
  },
  {
    name: 'a table name with a double quote',
    code: Code.InvalidArgument,
    message: /contains a double quote/,
    call: (c) => job(c, { tables: [{ schema: 'public', name: 'x"; drop table y; --' }] }),
  },
  {
    name: 'a StarRocks datasource as the source',
    code: Code.InvalidArgument,
    message: /a source must be PostgreSQL/,
    call: (c) => job(c, { sourceId: c.sinkId }),
  },
  {
    name: 'an unknown source',
    code: Code.NotFound,
    message: /source datasource "0{8}-.*" not found/,
    call: (c) => job(c, { sourceId: UNKNOWN_ID }),
  },
  {
    name: 'a batch of twenty million rows',
    code: Code.InvalidArgument,
    message: /options\.batch_max_rows 20000000 is out of range/,
    call: (c) => job(c, { options: { batchMaxRows: 20_000_000 } }),
  },
  {
    name: 'a flush interval of 5 ms',
    code: Code.InvalidArgument,
    message: /options\.flush_interval_ms 5 is out of range/,
    call: (c) => job(c, { options: { flushIntervalMs: 5 } }),
  },
  {
    name: 'a hashed column of another table',
    code: Code.InvalidArgument,
    message: /not one of the job's tables/,
    call: (c) =>
      job(c, { options: { hashColumns: [{ table: { schema: 'public', name: 'users' }, column: 'email' }] } }),
  },
  {
    name: 'keyed hashing without hashed columns',
    code: Code.InvalidArgument,
    message: /keyed_hashing needs at least one/,
    call: (c) => job(c, { options: { keyedHashing: true } }),
  },
  {
    name: 'a column both hashed and excluded',
    code: Code.InvalidArgument,
    message: /both hashed and excluded/,
    call: (c) =>
      job(c, {
        options: { hashColumns: [{ table, column: 'email' }], excludeColumns: [{ table, column: 'email' }] },
      }),
  },
  {
    name: 'a column choice on a table the job does not replicate',
    code: Code.InvalidArgument,
    message:
      /options\.column_options\[0\] \(--column-as public\.users\.born=text\) names table public\.users, which is not one of the job's tables \(--table\)/,
    call: (c) =>
      job(c, {
        options: {
          columnOptions: [
            {
              column: { table: { schema: 'public', name: 'users' }, column: 'born' },
              target: ColumnTarget.TEXT,
            },
          ],
        },
      }),
  },
  {
    name: 'two choices for one column',
    code: Code.InvalidArgument,
    message:
      /options\.column_options\[1\] \(--on-unrepresentable public\.orders\.placed=clamp\) repeats column public\.orders\.placed; give each column one entry/,
    call: (c) =>
      job(c, {
        options: {
          columnOptions: [
            { column: { table, column: 'placed' }, target: ColumnTarget.TEXT },
            { column: { table, column: 'placed' }, onUnrepresentable: UnrepresentablePolicy.CLAMP },
          ],
        },
      }),
  },
  {
    name: 'a column choice for an excluded column',
    code: Code.InvalidArgument,
    message: /column public\.orders\.note is also excluded \(--exclude-column\)/,
    call: (c) =>
      job(c, {
        options: {
          excludeColumns: [{ table, column: 'note' }],
          columnOptions: [
            { column: { table, column: 'note' }, onUnrepresentable: UnrepresentablePolicy.NULL },
          ],
        },
      }),
  },
  {
    name: 'an unknown unrepresentable-value policy',
    code: Code.InvalidArgument,
    message: /on_unrepresentable 9 is not a known policy; --on-unrepresentable takes fail, null or clamp/,
    call: (c) =>
      job(c, {
        options: {
          columnOptions: [
            { column: { table, column: 'amount' }, onUnrepresentable: 9 as UnrepresentablePolicy },
          ],
        },
      }),
  },
  {
    name: 'an unknown column target',
    code: Code.InvalidArgument,
    message: /target 4 is not a known target; --column-as takes text or default/,
    call: (c) =>
      job(c, {
        options: { columnOptions: [{ column: { table, column: 'amount' }, target: 4 as ColumnTarget }] },
      }),
  },
  {
    name: 'a column choice without a column',
    code: Code.InvalidArgument,
    message: /options\.column_options\[0\]\.column\.table is required/,
    call: (c) => job(c, { options: { columnOptions: [{ target: ColumnTarget.TEXT }] } }),
  },
  {
    name: 'a column choice with an invisible character in its name',
    code: Code.InvalidArgument,
    message: /options\.column_options\[0\]\.column\.column contains a control or invisible character/,
    call: (c) =>
      job(c, {
        options: { columnOptions: [{ column: { table, column: 'a\u200bb' }, target: ColumnTarget.TEXT }] },
      }),
  },
  {
    name: 'a connection test of tables on a StarRocks sink',
    code: Code.InvalidArgument,
    message: /tables \(--table\) can only be checked on a PostgreSQL source; bad-input-sink is StarRocks/,
    call: (c) => ds(c).testDatasource({ id: c.sinkId, tables: [table] }),
  },
  {
    name: 'a connection test naming one table twice',
    code: Code.InvalidArgument,
    message: /tables\[1\] \(--table\) repeats public\.orders/,
    call: (c) => ds(c).testDatasource({ id: c.sourceId, tables: [table, table] }),
  },
  {
    name: 'pausing a created job',
    code: Code.FailedPrecondition,
    message: /can't pause a job that is created; pause is allowed from pending, running/,
    call: (c) => jobs(c).pauseJob({ id: c.createdJobId }),
  },
  {
    name: 'resuming a pending job',
    code: Code.FailedPrecondition,
    message: /can't resume a job that is pending/,
    call: (c) => jobs(c).resumeJob({ id: c.pendingJobId }),
  },
  {
    name: 'starting a pending job',
    code: Code.FailedPrecondition,
    message: /can't start a job that is pending/,
    call: (c) => jobs(c).startJob({ id: c.pendingJobId }),
  },
  {
    name: 'deleting a pending job',
    code: Code.FailedPrecondition,
    message: /can't delete a job that is pending/,
    call: (c) => jobs(c).deleteJob({ id: c.pendingJobId }),
  },
  {
    name: 'stopping a created job',
    code: Code.FailedPrecondition,
    message: /can't stop a job that is created/,
    call: (c) => jobs(c).stopJob({ id: c.createdJobId }),
  },
  {
    name: 'an unknown job',
    code: Code.NotFound,
    message: /job "0{8}-.*" not found/,
    call: (c) => jobs(c).getJobStatus({ id: UNKNOWN_ID }),
  },

  // Workers and bootstrap tokens.
  {
    name: 'draining an unknown worker',
    code: Code.NotFound,
    message: /worker "0{8}-.*" not found/,
    call: (c) => c.t.client(WorkerAdminService, c.admin).drainWorker({ id: UNKNOWN_ID }),
  },
  {
    name: 'revoking a revoked worker',
    code: Code.FailedPrecondition,
    message: /already revoked/,
    call: (c) => c.t.client(WorkerAdminService, c.admin).revokeWorker({ id: c.revokedWorkerId }),
  },
  {
    name: 'a bootstrap token living a day and more',
    code: Code.InvalidArgument,
    message: /ttl_seconds 100000 is above the maximum of 86400/,
    call: (c) => c.t.client(BootstrapTokenService, c.admin).createBootstrapToken({ ttlSeconds: 100_000 }),
  },
  {
    name: 'an oversized token description',
    code: Code.InvalidArgument,
    message: /description is longer than 200/,
    call: (c) =>
      c.t.client(BootstrapTokenService, c.admin).createBootstrapToken({ description: 'd'.repeat(201) }),
  },
  {
    name: 'a label name with spaces',
    code: Code.InvalidArgument,
    message: /labels key "bad key!" is not a valid label name/,
    call: (c) =>
      c.t.client(BootstrapTokenService, c.admin).createBootstrapToken({ labels: { 'bad key!': 'x' } }),
  },
  {
    name: 'revoking an unknown token',
    code: Code.NotFound,
    message: /bootstrap token "0{8}-.*" not found/,
    call: (c) => c.t.client(BootstrapTokenService, c.admin).revokeBootstrapToken({ id: UNKNOWN_ID }),
  },
  {
    name: 'revoking a used token',
    code: Code.FailedPrecondition,
    message: /already used/,
    call: (c) => c.t.client(BootstrapTokenService, c.admin).revokeBootstrapToken({ id: c.usedTokenId }),
  },

  // Audit.
  {
    name: 'an audit page of 5000',
    code: Code.InvalidArgument,
    message: /page_size 5000 is above the maximum of 1000/,
    call: (c) => c.t.client(AuditService, c.admin).listAuditEvents({ pageSize: 5000 }),
  },
  {
    name: 'a forged audit page token',
    code: Code.InvalidArgument,
    message: /page_token is not one this API issued/,
    call: (c) => c.t.client(AuditService, c.admin).listAuditEvents({ pageToken: '1 or 1=1' }),
  },
  {
    name: 'an audit window ending before it starts',
    code: Code.InvalidArgument,
    message: /since must be before until/,
    call: (c) =>
      c.t.client(AuditService, c.admin).listAuditEvents({
        since: timestampFromDate(new Date()),
        until: timestampFromDate(new Date(Date.now() - 1000)),
      }),
  },

  // Authentication and roles.
  {
    name: 'a wrong password',
    code: Code.Unauthenticated,
    message: /invalid user name or password/,
    call: (c) => c.t.client(AuthService).login({ username: 'admin', password: 'not-the-password' }),
  },
  {
    name: 'an unknown user',
    code: Code.Unauthenticated,
    message: /invalid user name or password/,
    call: (c) => c.t.client(AuthService).login({ username: 'ghost', password: 'not-the-password' }),
  },
  {
    name: 'a login without a user name',
    code: Code.InvalidArgument,
    message: /username is required/,
    call: (c) => c.t.client(AuthService).login({ username: '', password: 'x' }),
  },
  {
    name: 'a made-up refresh token',
    code: Code.Unauthenticated,
    message: /unknown refresh token/,
    call: (c) => c.t.client(AuthService).refresh({ refreshToken: 'sluice_rt_made-up' }),
  },
  {
    name: 'a call without a token',
    code: Code.Unauthenticated,
    message: /missing bearer access token/,
    call: (c) => c.t.client(JobService).listJobs({}),
  },
  {
    name: 'a garbage bearer token',
    code: Code.Unauthenticated,
    message: /malformed/,
    call: (c) => c.t.client(JobService, 'abc.def.ghi').listJobs({}),
  },
  {
    name: 'a viewer listing users',
    code: Code.PermissionDenied,
    message: /ListUsers needs role admin; user has role viewer/,
    call: (c) => c.t.client(UserService, c.viewer).listUsers({}),
  },
  {
    name: 'an operator rotating keys',
    code: Code.PermissionDenied,
    message: /RotateEncryptionKeys needs role admin; user has role operator/,
    call: (c) => c.t.client(KeyService, c.operator).rotateEncryptionKeys({}),
  },
  {
    name: 'an operator revoking a worker',
    code: Code.PermissionDenied,
    message: /needs role admin/,
    call: (c) => c.t.client(WorkerAdminService, c.operator).revokeWorker({ id: UNKNOWN_ID }),
  },
  {
    name: 'a viewer starting a job',
    code: Code.PermissionDenied,
    message: /StartJob needs role operator/,
    call: (c) => c.t.client(JobService, c.viewer).startJob({ id: c.createdJobId }),
  },
];

describe('bad input', () => {
  const c = {} as Ctx;

  beforeAll(async () => {
    c.t = await startTestControlPlane({ label: 'cp_bad_input' });
    c.admin = await c.t.adminToken();
    c.pems = await testPems();
    c.adminId = (await c.t.client(AuthService, c.admin).whoAmI({})).user!.id;
    await users(c).createUser({ username: 'op', password: 'operator-password', role: Role.OPERATOR });
    await users(c).createUser({ username: 'viewer', password: 'viewer-password1', role: Role.VIEWER });
    c.operator = await c.t.login('op', 'operator-password');
    c.viewer = await c.t.login('viewer', 'viewer-password1');
    c.sourceId = (await ds(c).createDatasource({ name: 'bad-input-src', spec: pg({}) })).datasource!.id;
    c.sinkId = (await ds(c).createDatasource({ name: 'bad-input-sink', spec: sr({}) })).datasource!.id;
    const base = { sourceId: c.sourceId, sinkId: c.sinkId, tables: [table] };
    c.createdJobId = (await jobs(c).createJob({ name: 'bad-input-created', ...base })).job!.id;
    c.pendingJobId = (await jobs(c).createJob({ name: 'bad-input-pending', ...base, start: true })).job!.id;
    c.revokedWorkerId = '11111111-2222-4333-8444-555555555555';
    await c.t.cp.pool.query(
      "insert into workers (id, hostname, version, state) values ($1, 'gone.example', '0.1.0', 'revoked')",
      [c.revokedWorkerId],
    );
    const token = await c.t.client(BootstrapTokenService, c.admin).createBootstrapToken({});
    c.usedTokenId = token.token!.id;
    await c.t.cp.pool.query(
      'update bootstrap_tokens set used_at = now(), used_by_worker_id = $1 where id = $2',
      [c.revokedWorkerId, c.usedTokenId],
    );
  });

  afterAll(async () => {
    await c.t?.stop();
  });

  it('has at least forty cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
  });

  it.each(CASES)('refuses $name with a precise message', async ({ call, code, message }) => {
    const error = await call(c).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, 'the call should have failed').toBeInstanceOf(ConnectError);
    const connectError = error as ConnectError;
    expect(Code[connectError.code], connectError.rawMessage).toBe(Code[code]);
    expect(connectError.rawMessage).toMatch(message);
  });

  it('keeps serving after all of them', async () => {
    const status = await createClient(health.Health, c.t.transport('grpc')).check({
      service: 'sluice.v1.JobService',
    });
    expect(status.status).toBe(health.HealthCheckResponse_ServingStatus.SERVING);
    const listed = await jobs(c).listJobs({});
    expect(listed.jobs.map((j) => j.name)).toEqual(['bad-input-created', 'bad-input-pending']);
    const internal = c.t.logs.filter((line) => line.includes('unexpected error in RPC handler'));
    expect(internal).toEqual([]);
  });
});
