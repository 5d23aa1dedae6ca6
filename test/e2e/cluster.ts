// End-to-end support: control planes and workers as real processes over real TLS 1.3, on a catalog database
// of the run's shared PostgreSQL, with every log line kept for canary scans.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { status } from '@grpc/grpc-js';
import { generateEncryptionKey } from '@sluice/crypto';
import { AuthService } from '@sluice/proto';
import { type ServiceProcess, startServiceProcess, type TestDatabase } from '@sluice/testkit';
import { grpcCode } from '@sluice/worker';
import { expect } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CONTROL_PLANE_ENTRY = path.join(root, 'packages/control-plane/main.ts');
export const WORKER_ENTRY = path.join(root, 'packages/worker/main.ts');
/** A worker running the placeholder runner, for protocol tests whose datasources don't exist. */
export const PLACEHOLDER_WORKER_ENTRY = path.join(root, 'test/e2e/placeholder-worker.ts');

export const ADMIN = { username: 'admin', password: `admin-${randomBytes(6).toString('hex')}` };

export interface ClusterSecrets {
  dir: string;
  encryptionKeyFile: string;
  jwtSecretFile: string;
  adminPasswordFile: string;
  /** The hex key itself, for canary scans. */
  encryptionKey: string;
}

export async function clusterSecrets(): Promise<ClusterSecrets> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-e2e-'));
  const encryptionKey = generateEncryptionKey();
  const files = {
    encryptionKeyFile: path.join(dir, 'encryption.key'),
    jwtSecretFile: path.join(dir, 'jwt.secret'),
    adminPasswordFile: path.join(dir, 'admin.password'),
  };
  await writeFile(files.encryptionKeyFile, encryptionKey, { mode: 0o600 });
  await writeFile(files.jwtSecretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  await writeFile(files.adminPasswordFile, ADMIN.password, { mode: 0o600 });
  return { dir, encryptionKey, ...files };
}

export interface ControlPlaneProcess {
  process: ServiceProcess;
  port: number;
  url: string;
  dataDir: string;
  caPem: string;
  caFile: string;
  env: Record<string, string>;
}

export async function startControlPlaneProcess(
  db: TestDatabase,
  secrets: ClusterSecrets,
  options: { dataDir?: string; port?: number; name?: string; env?: Record<string, string> } = {},
): Promise<ControlPlaneProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(secrets.dir, 'cp-')));
  const port = options.port ?? (await freePort());
  const server = db.server;
  const env: Record<string, string> = {
    DATABASE_URL: `postgres://${server.user}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${db.name}`,
    CONFIG_ENCRYPTION_KEY_FILE: secrets.encryptionKeyFile,
    JWT_SECRET_FILE: secrets.jwtSecretFile,
    SLUICE_ADMIN_USERNAME: ADMIN.username,
    SLUICE_ADMIN_PASSWORD_FILE: secrets.adminPasswordFile,
    SLUICE_LISTEN: `127.0.0.1:${port}`,
    SLUICE_DATA_DIR: dataDir,
    SLUICE_HEARTBEAT_INTERVAL: '300ms',
    ...options.env,
  };
  const process = startServiceProcess({
    entry: CONTROL_PLANE_ENTRY,
    env,
    name: options.name ?? 'control plane',
  });
  await process.waitForLine(/control plane listening/, 90_000);
  const caFile = path.join(dataDir, 'tls', 'ca.crt');
  return {
    process,
    port,
    url: `https://127.0.0.1:${port}`,
    dataDir,
    caPem: await readFile(caFile, 'utf8'),
    caFile,
    env,
  };
}

export async function startWorkerProcess(
  cp: { url: string; caFile: string },
  options: {
    token?: string;
    stateDir: string;
    name?: string;
    entry?: string;
    env?: Record<string, string>;
  },
): Promise<ServiceProcess> {
  const env: Record<string, string> = {
    SLUICE_CONTROL_PLANE: cp.url,
    SLUICE_CA_FILE: cp.caFile,
    SLUICE_STATE_DIR: options.stateDir,
    SLUICE_LOG_LEVEL: 'debug',
    ...options.env,
  };
  if (options.token) {
    const file = path.join(options.stateDir, '..', `token-${randomBytes(4).toString('hex')}`);
    await writeFile(file, options.token, { mode: 0o600 });
    env.SLUICE_BOOTSTRAP_TOKEN_FILE = file;
  }
  const worker = startServiceProcess({
    entry: options.entry ?? WORKER_ENTRY,
    env,
    name: options.name ?? 'worker',
  });
  await worker.waitForLine(/agent state.*"to":"running"|"to":"running".*agent state/, 60_000);
  return worker;
}

/** A Connect client over HTTP/2 that trusts the control plane's CA, logged in as the admin. */
export async function adminClients(cp: { url: string; caPem: string }) {
  const transport = createConnectTransport({
    baseUrl: cp.url,
    httpVersion: '2',
    nodeOptions: { ca: cp.caPem, minVersion: 'TLSv1.3' },
  });
  const login = await createClient(AuthService, transport).login(ADMIN);
  const headers = { Authorization: `Bearer ${login.accessToken}` };
  return {
    client<S extends DescService>(service: S): Client<S> {
      return createClient(
        service,
        createConnectTransport({
          baseUrl: cp.url,
          httpVersion: '2',
          nodeOptions: { ca: cp.caPem, minVersion: 'TLSv1.3' },
          interceptors: [
            (next) => (req) => {
              for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
              return next(req);
            },
          ],
        }),
      );
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

/** Awaits a worker-API call that must fail with exactly this gRPC status. */
export async function expectCode(call: Promise<unknown>, code: status): Promise<void> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, `expected gRPC status ${status[code]}`).toBeDefined();
  expect(status[grpcCode(error) ?? -1]).toBe(status[code]);
}
