import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import {
  AuditService,
  AuthService,
  BootstrapTokenService,
  DatasourceKind,
  DatasourceService,
  health,
  JobPhase,
  JobService,
  JobState,
  KeyService,
  Role,
  SslMode,
  UserService,
  WorkerAdminService,
  WorkerState,
} from '@sluice/proto';
import { createTestCa, waitFor } from '@sluice/testkit';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from './auth/access-token.ts';
import {
  ADMIN,
  PROTOCOLS,
  type Protocol,
  startTestControlPlane,
  type TestControlPlane,
  testPems,
} from './test-control-plane.ts';

async function expectCode(promise: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected the call to fail').toBeInstanceOf(ConnectError);
  const connectError = error as ConnectError;
  expect(Code[connectError.code], connectError.rawMessage).toBe(Code[code]);
  if (message) expect(connectError.rawMessage).toMatch(message);
  return connectError;
}

describe('the control plane over TLS 1.3', () => {
  let t: TestControlPlane;
  let pems: Awaited<ReturnType<typeof testPems>>;

  beforeAll(async () => {
    t = await startTestControlPlane({ label: 'cp_api' });
    pems = await testPems();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it.each(PROTOCOLS)('answers health checks and logs in over %s', async (protocol: Protocol) => {
    const healthClient = createClient(health.Health, t.transport(protocol));
    const status = await healthClient.check({ service: '' });
    expect(status.status).toBe(health.HealthCheckResponse_ServingStatus.SERVING);
    const token = await t.login(ADMIN.username, ADMIN.password, protocol);
    const me = await t.client(AuthService, token, protocol).whoAmI({});
    expect(me.user?.username).toBe(ADMIN.username);
    expect(me.user?.role).toBe(Role.ADMIN);
  });

  it.each(PROTOCOLS)('runs the admin services end to end over %s', async (protocol: Protocol) => {
    const token = await t.adminToken();
    const suffix = protocol.replace(/[^a-z0-9]/g, '');

    // Users.
    const users = t.client(UserService, token, protocol);
    const created = await users.createUser({
      username: `op-${suffix}`,
      password: 'operator-password-1',
      role: Role.OPERATOR,
    });
    expect(created.user?.role).toBe(Role.OPERATOR);
    const listed = await users.listUsers({});
    expect(listed.users.map((u) => u.username)).toContain(`op-${suffix}`);
    const updated = await users.updateUser({ id: created.user!.id, role: Role.VIEWER });
    expect(updated.user?.role).toBe(Role.VIEWER);

    // Datasources.
    const datasources = t.client(DatasourceService, token, protocol);
    const source = await datasources.createDatasource({
      name: `pg-${suffix}`,
      spec: {
        case: 'postgres',
        value: {
          host: 'db.example.com',
          database: 'app',
          username: 'replicator',
          sslMode: SslMode.VERIFY_FULL,
          password: 'pg-password',
          sslRootCert: pems.rootCert,
        },
      },
    });
    expect(source.datasource?.kind).toBe(DatasourceKind.POSTGRES);
    expect(source.datasource?.config.case).toBe('postgres');
    if (source.datasource?.config.case === 'postgres') {
      expect(source.datasource.config.value.port).toBe(5432);
      expect(source.datasource.config.value.hasPassword).toBe(true);
      expect(source.datasource.config.value.hasSslRootCert).toBe(true);
      expect(source.datasource.config.value.hasSslClientKey).toBe(false);
    }
    const sink = await datasources.createDatasource({
      name: `sr-${suffix}`,
      spec: {
        case: 'starrocks',
        value: { feHost: 'starrocks.internal', username: 'loader', database: 'dw', password: 'sr' },
      },
    });
    expect(sink.datasource?.config.case).toBe('starrocks');
    const fetched = await datasources.getDatasource({ id: source.datasource!.id });
    expect(fetched.datasource?.name).toBe(`pg-${suffix}`);
    const onlySinks = await datasources.listDatasources({ kind: DatasourceKind.STARROCKS });
    expect(onlySinks.datasources.every((d) => d.kind === DatasourceKind.STARROCKS)).toBe(true);
    expect(onlySinks.datasources.map((d) => d.id)).toContain(sink.datasource!.id);
    // An update that omits the password keeps it (when the connection target stays); an empty one clears it.
    const kept = await datasources.updateDatasource({
      id: source.datasource!.id,
      name: `pg2-${suffix}`,
      spec: {
        case: 'postgres',
        value: {
          host: 'db.example.com',
          database: 'app',
          username: 'replicator',
          sslMode: SslMode.VERIFY_FULL,
        },
      },
    });
    expect(kept.datasource?.name).toBe(`pg2-${suffix}`);
    if (kept.datasource?.config.case === 'postgres') {
      expect(kept.datasource.config.value.host).toBe('db.example.com');
      expect(kept.datasource.config.value.hasPassword).toBe(true);
      expect(kept.datasource.config.value.hasSslRootCert).toBe(true);
    }
    const cleared = await datasources.updateDatasource({
      id: source.datasource!.id,
      spec: {
        case: 'postgres',
        value: {
          host: 'db2.example.com',
          database: 'app',
          username: 'replicator',
          sslMode: SslMode.REQUIRE,
          password: '',
        },
      },
    });
    expect(
      cleared.datasource?.config.case === 'postgres' && cleared.datasource.config.value.hasPassword,
    ).toBe(false);

    // Jobs and their life cycle.
    const jobs = t.client(JobService, token, protocol);
    const job = await jobs.createJob({
      name: `job-${suffix}`,
      sourceId: source.datasource!.id,
      sinkId: sink.datasource!.id,
      tables: [{ schema: 'public', name: 'orders' }],
      options: {
        hashColumns: [{ table: { schema: 'public', name: 'orders' }, column: 'email' }],
        keyedHashing: true,
      },
    });
    expect(job.job?.state).toBe(JobState.CREATED);
    expect(job.job?.options?.batchMaxRows).toBe(50_000);
    expect(job.job?.options?.initialSnapshot).toBe(true);
    const id = job.job!.id;
    expect((await jobs.startJob({ id })).job?.state).toBe(JobState.PENDING);
    expect((await jobs.pauseJob({ id })).job?.state).toBe(JobState.PAUSED);
    expect((await jobs.resumeJob({ id })).job?.state).toBe(JobState.PENDING);
    expect((await jobs.stopJob({ id })).job?.state).toBe(JobState.STOPPED);
    const status = await jobs.getJobStatus({ id });
    expect(status.status?.state).toBe(JobState.STOPPED);
    expect(status.status?.phase).toBe(JobPhase.UNSPECIFIED);
    const watch = jobs.watchJobStatus({ id }, { signal: AbortSignal.timeout(30_000) });
    for await (const update of watch) {
      expect(update.status?.jobId).toBe(id);
      break;
    }
    expect((await jobs.getJob({ id })).job?.name).toBe(`job-${suffix}`);
    expect((await jobs.listJobs({ state: JobState.STOPPED })).jobs.map((j) => j.id)).toContain(id);
    await jobs.deleteJob({ id, dropReplicationSlot: true });
    await expectCode(jobs.getJob({ id }), Code.NotFound);
    await datasources.deleteDatasource({ id: sink.datasource!.id });
    await expectCode(datasources.getDatasource({ id: sink.datasource!.id }), Code.NotFound);

    // Bootstrap tokens.
    const tokens = t.client(BootstrapTokenService, token, protocol);
    const bootstrap = await tokens.createBootstrapToken({ description: 'rack 1', labels: { zone: 'a' } });
    expect(bootstrap.secret).toMatch(/^sluice_bt_/);
    const expiresIn = Number(bootstrap.token!.expiresAt!.seconds) * 1000 - Date.now();
    expect(expiresIn).toBeGreaterThan(14 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60_000 + 5_000);
    const tokenList = await tokens.listBootstrapTokens({});
    expect(tokenList.tokens.find((x) => x.id === bootstrap.token!.id)?.labels).toEqual({ zone: 'a' });
    expect(JSON.stringify(tokenList, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(
      bootstrap.secret,
    );
    await tokens.revokeBootstrapToken({ id: bootstrap.token!.id });
    expect(
      (await tokens.listBootstrapTokens({})).tokens.find((x) => x.id === bootstrap.token!.id)?.revoked,
    ).toBe(true);

    // Audit and keys.
    const audit = t.client(AuditService, token, protocol);
    const events = await audit.listAuditEvents({ action: 'job.start' });
    expect(events.events.some((e) => e.resourceId === id && e.outcome === 'success')).toBe(true);
    expect((await audit.verifyAuditChain({})).ok).toBe(true);
    const rotated = await t.client(KeyService, token, protocol).rotateEncryptionKeys({});
    expect(rotated.keyId).toBe(t.cp.keyring.currentKeyId);

    await users.deleteUser({ id: created.user!.id });
  });

  it('lists, drains and revokes workers, freeing a revoked worker’s leases', async () => {
    const token = await t.adminToken();
    const workerId = '6f1f4a53-9a39-4d0a-8a6f-0d6d3a1b0c01';
    await t.cp.pool.query(
      `insert into workers (id, hostname, version, labels, state, envelope_public_key, cert_serial, cert_expires_at, last_heartbeat_at)
       values ($1, 'w1.example', '0.1.0', '{"zone":"a"}', 'active', $2, '01ab', now() + interval '1 hour', now())`,
      [workerId, Buffer.alloc(32, 7)],
    );
    const sources = await t.cp.pool.query<{ id: string; kind: string }>('select id, kind from datasources');
    const src = sources.rows.find((r) => r.kind === 'postgres')!;
    const datasources = t.client(DatasourceService, token);
    const sink = await datasources.createDatasource({
      name: 'sr-workers',
      spec: { case: 'starrocks', value: { feHost: '10.0.0.5', username: 'loader', database: 'dw' } },
    });
    const job = await t.client(JobService, token).createJob({
      name: 'leased',
      sourceId: src.id,
      sinkId: sink.datasource!.id,
      tables: [{ schema: 'public', name: 'items' }],
      start: true,
    });
    await t.cp.pool.query(
      "update jobs set state = 'running', lease_worker_id = $1, lease_epoch = 3, lease_expires_at = now() + interval '30 seconds' where id = $2",
      [workerId, job.job!.id],
    );
    const workers = t.client(WorkerAdminService, token, 'grpc');
    const listed = await workers.listWorkers({});
    const worker = listed.workers.find((w) => w.id === workerId);
    expect(worker?.state).toBe(WorkerState.ACTIVE);
    expect(worker?.jobIds).toEqual([job.job!.id]);
    expect(worker?.labels).toEqual({ zone: 'a' });
    expect((await workers.getWorker({ id: workerId })).worker?.hostname).toBe('w1.example');
    expect((await workers.drainWorker({ id: workerId })).worker?.state).toBe(WorkerState.DRAINING);
    const revoked = await workers.revokeWorker({ id: workerId });
    expect(revoked.worker?.state).toBe(WorkerState.REVOKED);
    expect(revoked.worker?.jobIds).toEqual([]);
    const status = await t.client(JobService, token).getJobStatus({ id: job.job!.id });
    expect(status.status?.state).toBe(JobState.PENDING);
    expect(status.status?.epoch).toBe(3n);
    expect((await workers.listWorkers({})).workers.some((w) => w.id === workerId)).toBe(false);
    expect((await workers.listWorkers({ includeRevoked: true })).workers.some((w) => w.id === workerId)).toBe(
      true,
    );
  });

  it('hands a connection test to a worker and returns what the worker reported', async () => {
    const token = await t.adminToken();
    const workerId = '7a2b9c10-3d4e-4f50-8a6b-7c8d9e0f1a2b';
    await t.cp.pool.query(
      "insert into workers (id, hostname, version, state, last_heartbeat_at) values ($1, 'tester.example', '0.1.0', 'active', now())",
      [workerId],
    );
    const datasource = (
      await t.cp.pool.query<{ id: string }>("select id from datasources where kind = 'postgres' limit 1")
    ).rows[0]!;
    const pending = t
      .client(DatasourceService, token, 'grpc')
      .testDatasource({ id: datasource.id, waitMs: 30_000 });
    // Stand in for the worker service: pick the pending test up and complete it.
    const testId = await waitFor(async () => {
      const row = await t.cp.pool.query<{ id: string }>(
        "select id from connection_tests where datasource_id = $1 and state = 'pending'",
        [datasource.id],
      );
      return row.rows[0]?.id;
    });
    await t.cp.pool.query(
      `update connection_tests set state = 'done', worker_id = $2, ok = true, message = 'connected',
         server_version = '18.1', latency_ms = 12, completed_at = now() where id = $1`,
      [testId, workerId],
    );
    const result = await pending;
    expect(result).toMatchObject({
      ok: true,
      message: 'connected',
      workerId,
      serverVersion: '18.1',
      latencyMs: 12,
    });
    await t.cp.pool.query("update workers set state = 'offline' where id = $1", [workerId]);
  });

  it('rotates refresh tokens and revokes the family when a spent one is reused', async () => {
    const auth = t.client(AuthService);
    const first = await auth.login({ username: ADMIN.username, password: ADMIN.password });
    const second = await auth.refresh({ refreshToken: first.refreshToken });
    expect(second.refreshToken).not.toBe(first.refreshToken);
    const third = await auth.refresh({ refreshToken: second.refreshToken });
    await expectCode(
      auth.refresh({ refreshToken: first.refreshToken }),
      Code.Unauthenticated,
      /already used/,
    );
    // The reuse revoked the whole family, including the newest token.
    await expectCode(auth.refresh({ refreshToken: third.refreshToken }), Code.Unauthenticated);
    const fresh = await auth.login({ username: ADMIN.username, password: ADMIN.password });
    await t.client(AuthService, fresh.accessToken).logout({ refreshToken: fresh.refreshToken });
    await expectCode(auth.refresh({ refreshToken: fresh.refreshToken }), Code.Unauthenticated);
  });

  it('keeps a viewer from creating or deleting anything', async () => {
    const admin = await t.adminToken();
    await t
      .client(UserService, admin)
      .createUser({ username: 'viewer1', password: 'viewer-password-1', role: Role.VIEWER });
    const viewer = await t.login('viewer1', 'viewer-password-1');
    const anyDatasource = (await t.client(DatasourceService, admin).listDatasources({})).datasources[0]!;
    for (const protocol of PROTOCOLS) {
      const datasources = t.client(DatasourceService, viewer, protocol);
      expect((await datasources.listDatasources({})).datasources.length).toBeGreaterThan(0);
      await expectCode(
        datasources.createDatasource({
          name: 'nope',
          spec: { case: 'starrocks', value: { feHost: 'x.example', username: 'u', database: 'd' } },
        }),
        Code.PermissionDenied,
        /needs role operator; user has role viewer/,
      );
      await expectCode(
        datasources.deleteDatasource({ id: anyDatasource.id }),
        Code.PermissionDenied,
        /operator/,
      );
      await expectCode(
        t.client(UserService, viewer, protocol).deleteUser({ id: anyDatasource.id }),
        Code.PermissionDenied,
        /admin/,
      );
      await expectCode(
        t.client(JobService, viewer, protocol).deleteJob({ id: anyDatasource.id }),
        Code.PermissionDenied,
      );
      await expectCode(
        t.client(BootstrapTokenService, viewer, protocol).createBootstrapToken({}),
        Code.PermissionDenied,
      );
    }
    const denied = await t.cp.pool.query(
      "select count(*)::int as n from audit_events where action = 'datasource.create' and outcome = 'denied'",
    );
    expect(denied.rows[0].n).toBeGreaterThanOrEqual(PROTOCOLS.length);
  });

  it('refuses the access token of a user disabled after it was issued, and its role change takes effect at once', async () => {
    const admin = await t.adminToken();
    const users = t.client(UserService, admin);
    const user = await users.createUser({
      username: 'soon-disabled',
      password: 'disabled-password-1',
      role: Role.OPERATOR,
    });
    const token = await t.login('soon-disabled', 'disabled-password-1');
    expect((await t.client(AuthService, token).whoAmI({})).user?.role).toBe(Role.OPERATOR);
    await users.updateUser({ id: user.user!.id, role: Role.VIEWER });
    await expectCode(
      t.client(BootstrapTokenService, token).listBootstrapTokens({}),
      Code.PermissionDenied,
      /user has role viewer/,
    );
    await users.updateUser({ id: user.user!.id, disabled: true });
    await expectCode(t.client(AuthService, token).whoAmI({}), Code.Unauthenticated, /disabled/);
    await expectCode(
      t.client(AuthService).login({ username: 'soon-disabled', password: 'disabled-password-1' }),
      Code.Unauthenticated,
    );
  });

  it('refuses expired, forged and missing access tokens', async () => {
    const me = (await t.client(AuthService, await t.adminToken()).whoAmI({})).user!;
    const now = Math.floor(Date.now() / 1000);
    const sign = (secret: Uint8Array, exp: number, alg = 'HS256') =>
      new SignJWT({ role: 'admin' })
        .setProtectedHeader({ alg })
        .setSubject(me.id)
        .setIssuer(TOKEN_ISSUER)
        .setAudience(TOKEN_AUDIENCE)
        .setIssuedAt(now - 3600)
        .setExpirationTime(exp)
        .sign(secret);
    const expired = await sign(t.config.jwtSecret, now - 60);
    const forged = await sign(new Uint8Array(32).fill(1), now + 600);
    const wrongAlg = await sign(t.config.jwtSecret, now + 600, 'HS512');
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: me.id, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now, exp: now + 600 }),
    ).toString('base64url')}.`;
    for (const protocol of ['connect-h2', 'grpc'] as const) {
      await expectCode(t.client(AuthService, expired, protocol).whoAmI({}), Code.Unauthenticated, /expired/);
      await expectCode(t.client(AuthService, forged, protocol).whoAmI({}), Code.Unauthenticated, /signature/);
      await expectCode(
        t.client(AuthService, wrongAlg, protocol).whoAmI({}),
        Code.Unauthenticated,
        /algorithm/,
      );
      await expectCode(t.client(AuthService, unsigned, protocol).whoAmI({}), Code.Unauthenticated);
      await expectCode(
        t.client(AuthService, undefined, protocol).whoAmI({}),
        Code.Unauthenticated,
        /missing/,
      );
    }
  });

  it('refuses a TLS 1.2 client and plain HTTP on the same port', async () => {
    const tls12 = await new Promise<string>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: t.cp.port,
        ca: t.ca.certPem,
        servername: 'localhost',
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.2',
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    expect(tls12).not.toBe('connected');
    expect(tls12).toMatch(/PROTOCOL_VERSION|VERSION|ALERT/);

    const plain = await new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: t.cp.port, path: '/metrics', agent: false }, (res) => {
        res.resume();
        resolve(`status ${res.statusCode}`);
      });
      req.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    expect(plain).not.toMatch(/^status/);

    // TLS 1.3 is what the port speaks.
    const protocol = await new Promise<string | null>((resolve, reject) => {
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port: t.cp.port,
          ca: t.ca.certPem,
          servername: 'localhost',
          ALPNProtocols: ['h2'],
        },
        () => {
          const version = socket.getProtocol();
          socket.destroy();
          resolve(version);
        },
      );
      socket.once('error', reject);
    });
    expect(protocol).toBe('TLSv1.3');
  });

  it('still refuses TLS 1.2 after the certificate is rotated', async () => {
    const ca = await createTestCa('Rotated CA');
    const next = await ca.issueServer(['localhost', '127.0.0.1']);
    t.cp.rotateTls(next);
    const tls12 = await new Promise<string>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: t.cp.port,
        ca: ca.certPem,
        servername: 'localhost',
        maxVersion: 'TLSv1.2',
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    expect(tls12).not.toBe('connected');
    const issuer = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port: t.cp.port, ca: ca.certPem, servername: 'localhost' },
        () => {
          const cert = socket.getPeerCertificate();
          socket.destroy();
          resolve(String(cert.issuer.CN ?? ''));
        },
      );
      socket.once('error', reject);
    });
    expect(issuer).toBe('Rotated CA');
    t.cp.rotateTls({ certPem: t.config.tls!.certPem, keyPem: t.config.tls!.keyPem });
  });

  it('serves Prometheus metrics over HTTPS to an operator or admin token only', async () => {
    const get = (token?: string) =>
      new Promise<string>((resolve, reject) => {
        const req = httpsGet(t.cp.port, t.ca.certPem, '/metrics', resolve, token);
        req.once('error', reject);
      });
    expect(await get()).not.toContain('sluice_rpc_requests_total');
    expect(await get('not-a-token')).not.toContain('sluice_rpc_requests_total');
    const body = await get(await t.adminToken());
    expect(body).toContain('sluice_rpc_requests_total');
    expect(body).toMatch(/method="sluice\.v1\.AuthService\/Login",code="ok"/);
  });
});

function httpsGet(port: number, ca: string, path: string, onBody: (body: string) => void, token?: string) {
  // node:https speaks HTTP/1.1, which the port also accepts.
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return https.get(
    { host: '127.0.0.1', port, path, ca, servername: 'localhost', agent: false, headers },
    (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => onBody(body));
    },
  );
}
