// Test support: a real control plane on port 0 over real TLS, on its own catalog database, with its log lines
// captured, the first admin created, and clients for every protocol. Used only by *.test.ts files.
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient, type Interceptor, type Transport } from '@connectrpc/connect';
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from '@connectrpc/connect-node';
import { createKeyring, generateEncryptionKey, type Keyring } from '@sluice/crypto';
import { AuthService } from '@sluice/proto';
import { createTestCa, createTestDatabase, type TestCa, type TestDatabase } from '@sluice/testkit';
import { createFirstAdmin } from './auth/users.ts';
import type { ControlPlaneConfig } from './config.ts';
import { type ControlPlane, type StartOptions, startControlPlane } from './control-plane.ts';

export const ADMIN = { username: 'admin', password: 'admin-password-123' };

export type Protocol = 'connect-h2' | 'connect-h1' | 'grpc' | 'grpc-web';
export const PROTOCOLS: readonly Protocol[] = ['connect-h2', 'connect-h1', 'grpc', 'grpc-web'];

export interface TestControlPlane {
  cp: ControlPlane;
  db: TestDatabase;
  ca: TestCa;
  config: ControlPlaneConfig;
  /** Every log line written so far (raw JSON). */
  logs: string[];
  transport(protocol?: Protocol): Transport;
  /** A client sending `token` as the bearer access token. */
  client<S extends DescService>(service: S, token?: string, protocol?: Protocol): Client<S>;
  login(username: string, password: string, protocol?: Protocol): Promise<string>;
  adminToken(): Promise<string>;
  stop(): Promise<void>;
}

export interface TestControlPlaneOptions {
  label?: string;
  keyring?: Keyring;
  /** Reuse an existing catalog database (several control planes on one catalog). */
  db?: TestDatabase;
  createAdmin?: boolean;
  /** More services on the port (see StartOptions.extraRoutes). */
  extraRoutes?: StartOptions['extraRoutes'];
}

export async function startTestControlPlane(
  options: TestControlPlaneOptions = {},
): Promise<TestControlPlane> {
  const db = options.db ?? (await createTestDatabase(options.label ?? 'cp'));
  const ca = await createTestCa('Control plane test CA');
  const serverCert = await ca.issueServer(['localhost', '127.0.0.1']);
  const logs: string[] = [];
  const config: ControlPlaneConfig = {
    listen: { host: '127.0.0.1', port: 0 },
    dataDir: '/nonexistent-data-dir',
    catalog: { kind: 'config', config: { ...db.config, max: 10 } },
    keyring: options.keyring ?? createKeyring(generateEncryptionKey()),
    jwtSecret: new Uint8Array(randomBytes(32)),
    tls: { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPem: ca.certPem },
    trustDomain: 'sluice.test',
    accessTokenTtlMs: 600_000,
    refreshTokenTtlMs: 3_600_000,
    envelopeTtlMs: 60_000,
    heartbeatIntervalMs: 5_000,
    workerCertificateTtlMs: 3_600_000,
    firstAdmin: undefined,
    logLevel: 'debug',
  };
  const cp = await startControlPlane(config, {
    ...(options.extraRoutes && { extraRoutes: options.extraRoutes }),
    logDestination: {
      write(line: string) {
        logs.push(line);
      },
    },
  });
  if (options.createAdmin !== false) {
    await createFirstAdmin(cp.pool, ADMIN).catch((error: { rawMessage?: string }) => {
      if (!error.rawMessage?.startsWith('an admin already exists')) throw error;
    });
  }
  const agent = new https.Agent({ ca: ca.certPem, keepAlive: false });
  const transports = new Map<string, Transport>();

  function transport(protocol: Protocol = 'connect-h2', interceptors: Interceptor[] = []): Transport {
    const baseUrl = cp.url;
    switch (protocol) {
      case 'connect-h2':
        return createConnectTransport({
          baseUrl,
          httpVersion: '2',
          nodeOptions: { ca: ca.certPem },
          interceptors,
        });
      case 'connect-h1':
        return createConnectTransport({ baseUrl, httpVersion: '1.1', nodeOptions: { agent }, interceptors });
      case 'grpc':
        return createGrpcTransport({ baseUrl, nodeOptions: { ca: ca.certPem }, interceptors });
      case 'grpc-web':
        return createGrpcWebTransport({ baseUrl, httpVersion: '1.1', nodeOptions: { agent }, interceptors });
    }
  }

  function cached(protocol: Protocol, token: string | undefined): Transport {
    const key = `${protocol}|${token ?? ''}`;
    let found = transports.get(key);
    if (!found) {
      const bearer: Interceptor = (next) => (req) => {
        if (token) req.header.set('authorization', `Bearer ${token}`);
        return next(req);
      };
      found = transport(protocol, [bearer]);
      transports.set(key, found);
    }
    return found;
  }

  let adminToken: string | undefined;
  const fixture: TestControlPlane = {
    cp,
    db,
    ca,
    config,
    logs,
    transport: (protocol) => transport(protocol),
    client: (service, token, protocol = 'connect-h2') => createClient(service, cached(protocol, token)),
    async login(username, password, protocol = 'connect-h2') {
      const res = await createClient(AuthService, cached(protocol, undefined)).login({ username, password });
      return res.accessToken;
    },
    async adminToken() {
      adminToken ??= await fixture.login(ADMIN.username, ADMIN.password);
      return adminToken;
    },
    async stop() {
      await cp.stop();
      agent.destroy();
      if (!options.db) await db.drop();
    },
  };
  return fixture;
}

/** Minimal PEM material for datasource tests. */
export async function testPems(): Promise<{ rootCert: string; clientCert: string; clientKey: string }> {
  const ca = await createTestCa('Datasource CA');
  const client = await ca.issueClient('replicator');
  return { rootCert: ca.certPem, clientCert: client.certPem, clientKey: client.keyPem };
}
