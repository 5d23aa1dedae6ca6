// Attacks on stored datasource passwords, against a real control plane and a real worker over TLS 1.3: an
// operator redirecting a datasource to a server they control (through the API, or by editing the catalog),
// a server asking for the password in the clear, weakening sslmode, and hosts outside the allowlist.
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { randomToken } from '@sluice/crypto';
import {
  AuditService,
  AuthService,
  BootstrapTokenService,
  DatasourceService,
  Role,
  SslMode,
  UserService,
} from '@sluice/proto';
import {
  createTestCa,
  createTestDatabase,
  plantCanary,
  type ServiceProcess,
  type TestCa,
  type TestDatabase,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClients,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  startControlPlaneProcess,
  startWorkerProcess,
} from '../e2e/cluster.ts';
import { type FakePostgres, startFakePostgres } from './fake-postgres.ts';

type Clients = { client<S extends DescService>(service: S): Client<S> };

async function loginClients(cp: { url: string; caPem: string }, username: string, password: string) {
  const transport = (headers?: Record<string, string>) =>
    createConnectTransport({
      baseUrl: cp.url,
      httpVersion: '2',
      nodeOptions: { ca: cp.caPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
      interceptors: headers
        ? [
            (next) => (req) => {
              for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
              return next(req);
            },
          ]
        : [],
    });
  const login = await createClient(AuthService, transport()).login({ username, password });
  const headers = { Authorization: `Bearer ${login.accessToken}` };
  return { client: <S extends DescService>(service: S) => createClient(service, transport(headers)) };
}

async function rpcError(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the call should have been refused').toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

describe('stored datasource passwords can not be exfiltrated', () => {
  const PASSWORD_CANARY = plantCanary(`exfil-canary-${randomToken(16)}`, 'datasource-exfiltration password');
  let db: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let allowlisted: ControlPlaneProcess | undefined;
  let worker: ServiceProcess | undefined;
  let admin: Clients;
  let operator: Clients;
  let fakeCa: TestCa;
  let fakeCert: { certPem: string; keyPem: string };
  const fakes: FakePostgres[] = [];

  async function fake(options: Parameters<typeof startFakePostgres>[0]): Promise<FakePostgres> {
    const server = await startFakePostgres(options);
    fakes.push(server);
    return server;
  }

  /** A verify-full datasource on the run's real PostgreSQL (TLS, SCRAM), with the canary as its password. */
  async function realDatasource(clients: Clients, name: string, password = db.server.password) {
    const server = db.server;
    const created = await clients.client(DatasourceService).createDatasource({
      name,
      spec: {
        case: 'postgres',
        value: {
          host: server.host,
          port: server.port,
          database: db.name,
          username: server.user,
          password,
          sslMode: SslMode.VERIFY_FULL,
          sslRootCert: server.caPem!,
        },
      },
    });
    return created.datasource!;
  }

  async function auditRows(action: string, resourceId: string) {
    const { events } = await admin.client(AuditService).listAuditEvents({ action, resourceId, pageSize: 50 });
    return events;
  }

  beforeAll(async () => {
    db = await createTestDatabase('security');
    secrets = await clusterSecrets();
    cp = await startControlPlaneProcess(db, secrets, { name: 'control plane' });
    admin = await adminClients(cp);
    const operatorPassword = `operator-${randomToken(16)}`;
    await admin
      .client(UserService)
      .createUser({ username: 'mallory', password: operatorPassword, role: Role.OPERATOR });
    operator = await loginClients(cp, 'mallory', operatorPassword);
    const token = await admin.client(BootstrapTokenService).createBootstrapToken({ ttlSeconds: 300 });
    worker = await startWorkerProcess(cp, {
      token: token.secret,
      stateDir: await mkdtemp(path.join(secrets.dir, 'worker-')),
    });
    fakeCa = await createTestCa('Nobody Trusts This CA');
    fakeCert = await fakeCa.issueServer(['localhost', '127.0.0.2', '127.0.0.1']);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(fakes.map((f) => f.close()));
    await worker?.stop();
    await allowlisted?.process.stop();
    await cp?.process.stop();
    await db?.drop();
  });

  it('refuses to move a datasource to another host without its password (the operator redirect)', async () => {
    const target = await fake({ host: '127.0.0.2' });
    const datasource = await realDatasource(operator, 'redirect-api');
    const pg = datasource.config.value as { database: string; username: string; sslRootCert?: string };
    const redirect = {
      id: datasource.id,
      spec: {
        case: 'postgres' as const,
        value: {
          host: target.host,
          port: target.port,
          database: pg.database,
          username: pg.username,
          sslMode: SslMode.VERIFY_FULL,
        },
      },
    };
    const refused = await rpcError(operator.client(DatasourceService).updateDatasource(redirect));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain('postgres.host');
    expect(refused.rawMessage).toContain('postgres.port');
    expect(refused.rawMessage).toMatch(/password again/);
    expect(refused.rawMessage).toContain('--password-file');
    // Nothing changed: the stored row still names the real server, and a test still works there.
    const stored = await admin.client(DatasourceService).getDatasource({ id: datasource.id });
    expect((stored.datasource!.config.value as { host: string }).host).toBe(db.server.host);
    const tested = await operator.client(DatasourceService).testDatasource({ id: datasource.id });
    expect(tested.ok, tested.message).toBe(true);
    expect(target.connections).toBe(0);
    const audited = await auditRows('datasource.update', datasource.id);
    expect(audited.some((e) => e.outcome === 'error')).toBe(true);
    // With the password given again the move is allowed (whoever knows it may send it anywhere).
    const moved = await operator.client(DatasourceService).updateDatasource({
      ...redirect,
      spec: { ...redirect.spec, value: { ...redirect.spec.value, password: 'a-new-password-entered-now' } },
    });
    expect((moved.datasource!.config.value as { host: string }).host).toBe(target.host);
  });

  it('a catalog edit of the target makes the password undecryptable instead of redirecting it', async () => {
    const target = await fake({ host: '127.0.0.2' });
    const datasource = await realDatasource(operator, 'redirect-sql');
    // Someone with write access to the catalog points the row at their server, without TLS.
    await db.client.query(
      `update datasources
          set config = config || jsonb_build_object('host', $2::text, 'port', $3::int, 'sslMode', 'disable')
        where id = $1`,
      [datasource.id, target.host, target.port],
    );
    const refused = await rpcError(operator.client(DatasourceService).testDatasource({ id: datasource.id }));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain('redirect-sql');
    expect(refused.rawMessage).toContain('different connection target');
    expect(refused.rawMessage).not.toContain(db.server.password);
    // Give a worker time to have picked anything up: nothing ever reached the fake server.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(target.connections).toBe(0);
    expect(target.received(db.server.password)).toBe(false);
    const audited = await auditRows('datasource.target_mismatch', datasource.id);
    expect(audited.map((e) => e.outcome)).toContain('denied');
    expect(cp.process.output().includes(db.server.password)).toBe(false);
  });

  for (const [mode, sslMode, tls, auth] of [
    ['disable', SslMode.DISABLE, false, 'cleartext'],
    ['prefer', SslMode.PREFER, true, 'cleartext'],
    ['require', SslMode.REQUIRE, true, 'cleartext'],
    ['require', SslMode.REQUIRE, true, 'md5'],
  ] as const) {
    it(`the worker refuses ${auth} password authentication over sslmode ${mode}`, async () => {
      const target = await fake({ ...(tls && { tls: fakeCert }), auth });
      const created = await admin.client(DatasourceService).createDatasource({
        name: `cleartext-${mode}-${auth}`,
        spec: {
          case: 'postgres',
          value: {
            host: target.host,
            port: target.port,
            database: 'app',
            username: 'replicator',
            password: PASSWORD_CANARY,
            sslMode,
          },
        },
      });
      const result = await admin
        .client(DatasourceService)
        .testDatasource({ id: created.datasource!.id, waitMs: 20_000 });
      expect(result.ok).toBe(false);
      expect(target.connections).toBeGreaterThan(0);
      expect(target.passwordMessages).toHaveLength(0);
      expect(target.received(PASSWORD_CANARY)).toBe(false);
      expect(result.message).toMatch(/password was not sent/);
      expect(result.message).toMatch(/verify-full|scram-sha-256/);
    });
  }

  it('with verify-full and SCRAM against a real TLS PostgreSQL, the connection works', async () => {
    const datasource = await realDatasource(operator, 'real-scram');
    const result = await operator
      .client(DatasourceService)
      .testDatasource({ id: datasource.id, waitMs: 20_000 });
    expect(result.ok, result.message).toBe(true);
    expect(result.serverVersion).not.toBe('');
  });

  it('only an admin may choose an sslmode below verify-full, and it is audited as its own action', async () => {
    const spec = {
      case: 'postgres' as const,
      value: {
        host: '127.0.0.1',
        port: 5432,
        database: 'app',
        username: 'replicator',
        password: 'weak-tls-password',
        sslMode: SslMode.DISABLE,
      },
    };
    const denied = await rpcError(
      operator.client(DatasourceService).createDatasource({ name: 'weak-by-operator', spec }),
    );
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(denied.rawMessage).toMatch(/admin/);
    expect(denied.rawMessage).toMatch(/verify-full/);
    const all = await admin
      .client(AuditService)
      .listAuditEvents({ action: 'datasource.tls_weaken', pageSize: 50 });
    expect(all.events.some((e) => e.outcome === 'denied')).toBe(true);

    const allowed = await admin.client(DatasourceService).createDatasource({ name: 'weak-by-admin', spec });
    const id = allowed.datasource!.id;
    expect((await auditRows('datasource.tls_weaken', id)).map((e) => e.outcome)).toEqual(['success']);

    // Lowering an operator's verify-full datasource is weakening too.
    const strong = await realDatasource(operator, 'lowered-by-operator');
    const lowered = await rpcError(
      operator.client(DatasourceService).updateDatasource({
        id: strong.id,
        spec: {
          case: 'postgres',
          value: {
            host: db.server.host,
            port: db.server.port,
            database: db.name,
            username: db.server.user,
            password: PASSWORD_CANARY,
            sslMode: SslMode.REQUIRE,
          },
        },
      }),
    );
    expect(lowered.code).toBe(Code.PermissionDenied);
    expect((await auditRows('datasource.tls_weaken', strong.id)).map((e) => e.outcome)).toEqual(['denied']);
  });

  it('a control plane with SLUICE_DATASOURCE_HOSTS refuses hosts outside it', async () => {
    const outside = await realDatasource(admin, 'outside-allowlist');
    allowlisted = await startControlPlaneProcess(db, secrets, {
      name: 'allowlisted control plane',
      env: { SLUICE_DATASOURCE_HOSTS: '*.db.internal,10.0.*' },
    });
    const restricted = await adminClients(allowlisted);
    const spec = (host: string) => ({
      case: 'postgres' as const,
      value: {
        host,
        database: 'app',
        username: 'replicator',
        password: 'allowlist-password',
        sslMode: SslMode.VERIFY_FULL,
        sslRootCert: db.server.caPem!,
      },
    });
    const refused = await rpcError(
      restricted
        .client(DatasourceService)
        .createDatasource({ name: 'evil', spec: spec('attacker.example.com') }),
    );
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.rawMessage).toContain('SLUICE_DATASOURCE_HOSTS');
    await restricted
      .client(DatasourceService)
      .createDatasource({ name: 'inside', spec: spec('pg.db.internal') });
    await restricted
      .client(DatasourceService)
      .createDatasource({ name: 'inside-ip', spec: spec('10.0.3.4') });
    const moved = await rpcError(
      restricted.client(DatasourceService).updateDatasource({ id: outside.id, spec: spec('10.1.0.1') }),
    );
    expect(moved.code).toBe(Code.InvalidArgument);
    const tested = await rpcError(restricted.client(DatasourceService).testDatasource({ id: outside.id }));
    expect(tested.code).toBe(Code.InvalidArgument);
    expect(tested.rawMessage).toContain('SLUICE_DATASOURCE_HOSTS');
  });
});
