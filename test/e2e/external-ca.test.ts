// A control plane serving a certificate from an external CA (compose, Terraform, a corporate PKI) rather than
// its internal CA, and workers configured with that external CA (SLUICE_CA_FILE). The worker must keep
// trusting the CA it was configured with after Register, across a restart from its saved identity and across
// certificate renewal; the internal CA (which issues worker client certificates) never verifies the server.
// A worker configured with a different CA is refused during the TLS handshake, before its token is spent.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { BootstrapTokenService, type Worker, WorkerAdminService } from '@sluice/proto';
import {
  createTestCa,
  createTestDatabase,
  type ServiceProcess,
  startServiceProcess,
  type TestCa,
  type TestDatabase,
  waitFor,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClients,
  type ClusterSecrets,
  CONTROL_PLANE_ENTRY,
  clusterSecrets,
  freePort,
  PLACEHOLDER_WORKER_ENTRY,
} from './cluster.ts';

const WORKER_CERT_TTL_S = 20;

type Admin = Awaited<ReturnType<typeof adminClients>>;

interface ExternalControlPlane {
  process: ServiceProcess;
  url: string;
  /** The external CA's certificate, as the operator hands it to workers and the CLI. */
  caPem: string;
  caFile: string;
}

/**
 * Waits for `probe` while `process` keeps running: fails at once (with its last lines) if it exits, and
 * otherwise allows `timeoutMs`, which callers derive from when the awaited event is due.
 */
async function whileRunning<T>(
  process: ServiceProcess,
  probe: () => T | Promise<T>,
  timeoutMs: number,
  description: string,
): Promise<Exclude<T, undefined | null | false>> {
  const exited = process.exited.then((code) => {
    throw new Error(`${process.name} exited (${code}) while waiting for ${description}`);
  });
  exited.catch(() => undefined);
  let settled = false; // stops the poll once the race is decided either way
  try {
    return await Promise.race([
      waitFor(() => (settled ? (true as T) : probe()), { timeoutMs, intervalMs: 200, description }),
      exited as Promise<never>,
    ]);
  } catch (error) {
    throw new Error(
      `${(error as Error).message}\n--- last lines of ${process.name} ---\n${process.lines.slice(-25).join('\n')}`,
    );
  } finally {
    settled = true;
  }
}

describe('a control plane with an external server certificate, and workers pinned to that CA', () => {
  let db: TestDatabase;
  let secrets: ClusterSecrets;
  let external: TestCa;
  let cp: ExternalControlPlane;
  let admin: Admin;
  const processes: ServiceProcess[] = [];

  async function newToken(): Promise<string> {
    return (await admin.client(BootstrapTokenService).createBootstrapToken({ ttlSeconds: 600 })).secret;
  }

  async function workers(): Promise<Worker[]> {
    return (await admin.client(WorkerAdminService).listWorkers({})).workers;
  }

  /** The worker's last heartbeat time, once it is later than `after`. */
  async function heartbeatAfter(workerId: string, after: Date): Promise<Date | undefined> {
    const worker = (await workers()).find((candidate) => candidate.id === workerId);
    const at = worker?.lastHeartbeatAt ? timestampDate(worker.lastHeartbeatAt) : undefined;
    return at && at.getTime() > after.getTime() ? at : undefined;
  }

  function startWorker(name: string, options: { caFile: string; stateDir: string; tokenFile?: string }) {
    const worker = startServiceProcess({
      entry: PLACEHOLDER_WORKER_ENTRY,
      name,
      env: {
        SLUICE_CONTROL_PLANE: cp.url,
        SLUICE_CA_FILE: options.caFile,
        SLUICE_STATE_DIR: options.stateDir,
        SLUICE_LOG_LEVEL: 'debug',
        ...(options.tokenFile && { SLUICE_BOOTSTRAP_TOKEN_FILE: options.tokenFile }),
      },
    });
    processes.push(worker);
    return worker;
  }

  async function tokenFile(name: string, token: string): Promise<string> {
    const file = path.join(secrets.dir, `${name}.token`);
    await writeFile(file, token, { mode: 0o600 });
    return file;
  }

  beforeAll(async () => {
    db = await createTestDatabase('e2e_external_ca');
    secrets = await clusterSecrets();
    external = await createTestCa('Sluice External Test CA');
    const served = await external.issueServer(['127.0.0.1', 'localhost']);
    const files = {
      cert: path.join(secrets.dir, 'server.crt'),
      key: path.join(secrets.dir, 'server.key'),
      ca: path.join(secrets.dir, 'external-ca.crt'),
    };
    await writeFile(files.cert, served.certPem);
    await writeFile(files.key, served.keyPem, { mode: 0o600 });
    await writeFile(files.ca, external.certPem);
    const port = await freePort();
    const server = db.server;
    const process = startServiceProcess({
      entry: CONTROL_PLANE_ENTRY,
      name: 'control plane (external certificate)',
      env: {
        DATABASE_URL: `postgres://${server.user}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${db.name}`,
        CONFIG_ENCRYPTION_KEY_FILE: secrets.encryptionKeyFile,
        JWT_SECRET_FILE: secrets.jwtSecretFile,
        SLUICE_ADMIN_USERNAME: 'admin',
        SLUICE_ADMIN_PASSWORD_FILE: secrets.adminPasswordFile,
        SLUICE_LISTEN: `127.0.0.1:${port}`,
        SLUICE_DATA_DIR: path.join(secrets.dir, 'cp'),
        SLUICE_HEARTBEAT_INTERVAL: '300ms',
        SLUICE_WORKER_CERT_TTL: `${WORKER_CERT_TTL_S}s`,
        SLUICE_TLS_CERT: files.cert,
        SLUICE_TLS_KEY: files.key,
        SLUICE_TLS_CA: files.ca,
      },
    });
    processes.push(process);
    await process.waitForLine(/control plane listening/, 120_000);
    cp = { process, url: `https://127.0.0.1:${port}`, caPem: external.certPem, caFile: files.ca };
    admin = await adminClients(cp);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(processes.map((process) => process.stop('SIGKILL')));
    await db?.drop();
  });

  it('registers, heartbeats, restarts from its saved identity and renews its certificate, trusting only the external CA', async () => {
    const stateDir = path.join(secrets.dir, 'pinned');
    const first = startWorker('worker (external CA)', {
      caFile: cp.caFile,
      stateDir,
      tokenFile: await tokenFile('pinned', await newToken()),
    });
    // Registration happens on the anonymous channel; the heartbeat that follows is the first call with the
    // client certificate, on the channel built after Register — where the internal CA used to replace ours.
    await whileRunning(
      first,
      () => first.lines.some((line) => /"to":"running"/.test(line)),
      90_000,
      'running',
    );
    const registered = await whileRunning(
      first,
      async () => (await workers())[0],
      30_000,
      'the worker listed',
    );
    const beforeKill = new Date();
    await whileRunning(first, () => heartbeatAfter(registered.id, beforeKill), 30_000, 'a heartbeat');

    // Killed, not drained: the restart must resume from identity.json with no token.
    await first.stop('SIGKILL');
    const restartedAt = new Date();
    const second = startWorker('worker (external CA, restarted)', { caFile: cp.caFile, stateDir });
    await whileRunning(
      second,
      () => second.lines.some((line) => /"to":"running"/.test(line)),
      90_000,
      'running again',
    );
    await whileRunning(
      second,
      () => heartbeatAfter(registered.id, restartedAt),
      30_000,
      'a heartbeat after restart',
    );
    expect((await workers()).map((worker) => worker.id)).toEqual([registered.id]);

    // Renewal is due at about half the certificate's 20 s life (the saved one's, issued before the kill).
    const renewed = await whileRunning(
      second,
      () => second.lines.find((line) => /client certificate renewed/.test(line)),
      (WORKER_CERT_TTL_S + 60) * 1000,
      'the certificate renewal',
    );
    const renewedAt = new Date();
    expect(renewed).toContain('expiresAt');
    // The renewed certificate goes onto a new channel: its heartbeats must still verify the server.
    await whileRunning(
      second,
      () => heartbeatAfter(registered.id, renewedAt),
      30_000,
      'a heartbeat after renewal',
    );
    expect(second.output()).not.toMatch(/heartbeat failed/);
  }, 300_000);

  it('refuses a worker configured with a different CA during the TLS handshake, before the token is spent', async () => {
    const other = await createTestCa('Some Other CA');
    const otherFile = path.join(secrets.dir, 'other-ca.crt');
    await writeFile(otherFile, other.certPem);
    const token = await newToken();
    const known = new Set((await workers()).map((worker) => worker.id));
    const refused = startWorker('worker (wrong CA)', {
      caFile: otherFile,
      stateDir: path.join(secrets.dir, 'wrong-ca'),
      tokenFile: await tokenFile('wrong-ca', token),
    });
    const failure = await waitFor(() => refused.lines.find((line) => /register failed/.test(line)), {
      timeoutMs: 90_000,
      intervalMs: 200,
      description: 'the refused registration',
    });
    expect(failure).toMatch(/certificate|self.signed|unable to verify|handshake/i);
    await refused.stop('SIGKILL');
    expect((await workers()).filter((worker) => !known.has(worker.id))).toEqual([]);

    // The token was never presented: a worker with the right CA can still use it.
    const rightful = startWorker('worker (same token, external CA)', {
      caFile: cp.caFile,
      stateDir: path.join(secrets.dir, 'rightful'),
      tokenFile: await tokenFile('rightful', token),
    });
    await whileRunning(
      rightful,
      () => rightful.lines.some((line) => /"to":"running"/.test(line)),
      90_000,
      'running',
    );
  }, 240_000);
});
