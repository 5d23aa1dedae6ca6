import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import {
  createWorkerCsr,
  type EnvelopeKeyPair,
  generateEnvelopeKeyPair,
  openEnvelope,
  randomToken,
  toEnvelope,
} from '@sluice/crypto';
import {
  BootstrapTokenService,
  DatasourceService,
  JobPhase,
  JobService,
  SslMode,
  WorkerAdminService,
} from '@sluice/proto';
import {
  createTestCa,
  createTestDatabase,
  plantCanary,
  type ServiceProcess,
  startStarRocksEmulator,
  type TestDatabase,
  waitFor,
} from '@sluice/testkit';
import { type ControlClient, createControlClient, type WorkerIdentity } from '@sluice/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClients,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  expectCode,
  PLACEHOLDER_WORKER_ENTRY,
  startControlPlaneProcess,
  startWorkerProcess,
} from './cluster.ts';

const CANARY_SOURCE = plantCanary(`canary-source-pw-${randomToken(16)}`, 'worker-protocol source password');
const CANARY_SINK = plantCanary(`canary-sink-pw-${randomToken(16)}`, 'worker-protocol sink password');

type Admin = Awaited<ReturnType<typeof adminClients>>;

interface RawWorker {
  id: string;
  keys: EnvelopeKeyPair;
  client: ControlClient;
  certPem: string;
  keyPem: string;
}

async function newToken(admin: Admin, ttlSeconds = 300): Promise<{ id: string; secret: string }> {
  const created = await admin.client(BootstrapTokenService).createBootstrapToken({ ttlSeconds });
  return { id: created.token!.id, secret: created.secret };
}

/** Registers a worker from the test process: real TLS and certificates, no agent. */
async function registerRawWorker(cp: ControlPlaneProcess, token: string): Promise<RawWorker> {
  const keys = await generateEnvelopeKeyPair();
  const { csrPem, keyPem } = await createWorkerCsr();
  const address = `127.0.0.1:${cp.port}`;
  const anonymous = createControlClient({ address, caPem: cp.caPem });
  try {
    const registered = await anonymous.register({
      bootstrapToken: token,
      csrPem,
      envelopePublicKey: keys.publicKey,
      hostname: 'raw-worker',
      version: 'test',
    });
    const client = createControlClient({
      address,
      caPem: cp.caPem,
      certPem: registered.certificatePem,
      keyPem,
    });
    return { id: registered.workerId, keys, client, certPem: registered.certificatePem, keyPem };
  } finally {
    anonymous.close();
  }
}

async function createJob(
  admin: Admin,
  db: TestDatabase,
  name: string,
  options: { keyedHashing?: boolean } = {},
): Promise<string> {
  const datasources = admin.client(DatasourceService);
  const source = await datasources.createDatasource({
    name: `${name}-src`,
    spec: {
      case: 'postgres',
      value: {
        host: '127.0.0.1',
        port: db.server.port,
        database: db.name,
        username: 'replicator',
        sslMode: SslMode.VERIFY_FULL,
        password: CANARY_SOURCE,
        sslRootCert: db.server.caPem!,
      },
    },
  });
  const sink = await datasources.createDatasource({
    name: `${name}-sink`,
    spec: {
      case: 'starrocks',
      value: {
        feHost: '127.0.0.1',
        httpPort: 8030,
        mysqlPort: 9030,
        username: 'root',
        database: 'demo',
        password: CANARY_SINK,
      },
    },
  });
  const job = await admin.client(JobService).createJob({
    name,
    sourceId: source.datasource!.id,
    sinkId: sink.datasource!.id,
    tables: [{ schema: 'public', name: 'orders' }],
    start: true,
    ...(options.keyedHashing && {
      options: {
        keyedHashing: true,
        hashColumns: [{ table: { schema: 'public', name: 'orders' }, column: 'email' }],
      },
    }),
  });
  return job.job!.id;
}

async function identityOf(stateDir: string): Promise<WorkerIdentity> {
  return JSON.parse(await readFile(path.join(stateDir, 'identity.json'), 'utf8')) as WorkerIdentity;
}

function jobStatus(admin: Admin, id: string) {
  return admin
    .client(JobService)
    .getJobStatus({ id })
    .then((answer) => answer.status!);
}

describe('workers and one control plane, as real processes over TLS 1.3', () => {
  let db: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let admin: Admin;
  const processes: ServiceProcess[] = [];
  const tokensUsed: string[] = [];
  const workerKeys: string[] = [];
  const stateDir = (name: string) => path.join(secrets.dir, name);

  beforeAll(async () => {
    db = await createTestDatabase('e2e_workers');
    secrets = await clusterSecrets();
    cp = await startControlPlaneProcess(db, secrets);
    processes.push(cp.process);
    admin = await adminClients(cp);
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await db?.drop();
  });

  it('registers a worker that leases a job and opens its sealed credentials, which no other worker can open', async () => {
    // Keyed PII hashing: the job's HMAC key travels as a third envelope.
    const jobId = await createJob(admin, db, 'envelopes', { keyedHashing: true });
    const token = await newToken(admin);
    tokensUsed.push(token.secret);
    const worker = await startWorkerProcess(cp, {
      token: token.secret,
      stateDir: stateDir('w1'),
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(worker);
    const identity = await identityOf(stateDir('w1'));
    workerKeys.push(identity.keyPem);

    // The placeholder runner reports STREAMING only after it opened both envelopes.
    const leased = await waitFor(
      async () => {
        const s = await jobStatus(admin, jobId);
        return s.phase === JobPhase.STREAMING && s.workerId === identity.workerId && s;
      },
      { description: 'the job to be leased and reported by the worker' },
    );
    expect(leased.epoch).toBeGreaterThan(0n);

    // The same envelopes, fetched with that worker's certificate, open only with that worker's key.
    const asWorker = createControlClient({
      address: `127.0.0.1:${cp.port}`,
      caPem: cp.caPem,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
    });
    const sealed = await asWorker.fetchCredentials({ jobId, epoch: leased.epoch });
    asWorker.close();
    expect(sealed.piiKey, 'the job has keyed hashing: its HMAC key is sealed too').toBeDefined();
    const envelope = toEnvelope(sealed.source!);
    const otherKeys = await generateEnvelopeKeyPair();
    const holder = { workerId: identity.workerId, jobId, epoch: leased.epoch, role: 'source' };
    await expect(openEnvelope(otherKeys.privateKey, envelope, holder)).rejects.toMatchObject({
      code: 'TAMPERED',
    });
    await expect(
      openEnvelope(otherKeys.privateKey, envelope, { ...holder, workerId: 'another-worker' }),
    ).rejects.toMatchObject({ code: 'FOREIGN' });

    // Another registered worker is refused the job's credentials outright.
    const other = await registerRawWorker(cp, (await newToken(admin)).secret);
    await expectCode(
      other.client.fetchCredentials({ jobId, epoch: leased.epoch }),
      status.FAILED_PRECONDITION,
    );
    other.client.close();
  });

  it('refuses a reused, an expired and an unknown bootstrap token', async () => {
    const reused = tokensUsed[0]!;
    const keys = await generateEnvelopeKeyPair();
    const { csrPem } = await createWorkerCsr();
    const anonymous = createControlClient({ address: `127.0.0.1:${cp.port}`, caPem: cp.caPem });
    const register = (bootstrapToken: string) =>
      anonymous.register({
        bootstrapToken,
        csrPem,
        envelopePublicKey: keys.publicKey,
        hostname: 'h',
        version: 'v',
      });

    await expectCode(register(reused), status.UNAUTHENTICATED);
    await expectCode(register(`sluice_bt_${randomToken(24)}`), status.UNAUTHENTICATED);
    const expiring = await newToken(admin, 60);
    await db.client.query(
      "update bootstrap_tokens set expires_at = now() - interval '1 second' where id = $1",
      [expiring.id],
    );
    await expectCode(register(expiring.secret), status.UNAUTHENTICATED);
    // A bad request never consumes a good token: it still registers afterwards.
    const good = await newToken(admin);
    await expectCode(
      anonymous.register({ bootstrapToken: good.secret, csrPem, envelopePublicKey: new Uint8Array(5) }),
      status.INVALID_ARGUMENT,
    );
    expect((await register(good.secret)).workerId).toMatch(/^[0-9a-f-]{36}$/);
    anonymous.close();
  });

  it('refuses Heartbeat without a certificate, with one from another CA, and from a revoked worker', async () => {
    const address = `127.0.0.1:${cp.port}`;
    const anonymous = createControlClient({ address, caPem: cp.caPem });
    await expectCode(anonymous.heartbeat({}), status.UNAUTHENTICATED);
    anonymous.close();

    const foreignCa = await createTestCa('Foreign CA');
    const foreign = await foreignCa.issueClient('spiffe-impostor');
    const impostor = createControlClient({
      address,
      caPem: cp.caPem,
      certPem: foreign.certPem,
      keyPem: foreign.keyPem,
    });
    await expectCode(impostor.heartbeat({}), status.UNAUTHENTICATED);
    impostor.close();

    const worker = await registerRawWorker(cp, (await newToken(admin)).secret);
    await worker.client.heartbeat({ envelopePublicKey: worker.keys.publicKey });
    await admin.client(WorkerAdminService).revokeWorker({ id: worker.id });
    await expectCode(worker.client.heartbeat({}), status.PERMISSION_DENIED);
    worker.client.close();
  });

  it('grants a killed worker’s job to another worker with a higher epoch and refuses the old epoch', async () => {
    const jobId = await createJob(admin, db, 'failover');
    const tokenA = await newToken(admin);
    const first = await startWorkerProcess(cp, {
      token: tokenA.secret,
      stateDir: stateDir('wa'),
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(first);
    const identityA = await identityOf(stateDir('wa'));
    workerKeys.push(identityA.keyPem);
    tokensUsed.push(tokenA.secret);
    // Another worker already runs; pause until this job sits with the new one, whichever got it first.
    const held = await waitFor(
      async () => {
        const s = await jobStatus(admin, jobId);
        return s.phase === JobPhase.STREAMING && s.workerId !== '' && s;
      },
      { description: 'the failover job to be leased' },
    );

    const holderDir = held.workerId === identityA.workerId ? stateDir('wa') : stateDir('w1');
    const holder = held.workerId === identityA.workerId ? first : processes[1]!;
    expect(await holder.stop('SIGKILL')).toBe('SIGKILL');
    const tokenB = await newToken(admin);
    tokensUsed.push(tokenB.secret);
    processes.push(
      await startWorkerProcess(cp, {
        token: tokenB.secret,
        stateDir: stateDir('wb'),
        entry: PLACEHOLDER_WORKER_ENTRY,
      }),
    );
    workerKeys.push((await identityOf(stateDir('wb'))).keyPem);

    const moved = await waitFor(
      async () => {
        const s = await jobStatus(admin, jobId);
        return s.workerId !== held.workerId && s.workerId !== '' && s.epoch > held.epoch && s;
      },
      { description: 'the job to move to a live worker with a higher epoch' },
    );
    expect(moved.epoch).toBeGreaterThan(held.epoch);

    const dead = await identityOf(holderDir);
    const stale = createControlClient({
      address: `127.0.0.1:${cp.port}`,
      caPem: cp.caPem,
      certPem: dead.certPem,
      keyPem: dead.keyPem,
    });
    await expectCode(
      stale.reportProgress({ jobId, epoch: held.epoch, phase: JobPhase.STREAMING }),
      status.FAILED_PRECONDITION,
    );
    await expectCode(stale.fetchCredentials({ jobId, epoch: held.epoch }), status.FAILED_PRECONDITION);
    stale.close();
  });

  it('keeps its workers through a control-plane restart without a second registration', async () => {
    const registrations = async () =>
      Number(
        (await db.client.query("select count(*) from audit_events where action = 'worker.register'")).rows[0]
          .count,
      );
    const before = await registrations();
    const live = processes
      .slice(1)
      .filter((p) => p.lines.length && !p.lines.some((l) => /"to":"(stopped|failed)"/.test(l)));
    const stopped = await cp.process.stop('SIGTERM');
    expect(stopped, cp.process.lines.slice(-8).join('\n')).toBe(0);
    const restartedAt = new Date();
    cp = await startControlPlaneProcess(db, secrets, {
      dataDir: cp.dataDir,
      port: cp.port,
      name: 'control plane 2',
    });
    processes.push(cp.process);
    admin = await adminClients(cp);

    await waitFor(
      async () => {
        const { rows } = await db.client.query<{ n: string }>(
          "select count(*) as n from workers where state = 'active' and last_heartbeat_at > $1",
          [restartedAt],
        );
        return Number(rows[0]!.n) >= 2;
      },
      { description: 'the surviving workers to heartbeat to the restarted control plane' },
    );
    expect(await registrations()).toBe(before);
    for (const worker of live) {
      if (worker.lines.some((line) => /"signal"|SIGKILL/.test(line))) continue;
      expect(worker.lines.some((line) => /"to":"(stopped|failed)"/.test(line))).toBe(false);
    }
  });

  it('leaks no envelope content, certificate key or token into any log', () => {
    const logs = processes.map((p) => p.output()).join('\n');
    expect(logs.length).toBeGreaterThan(1_000);
    const secretsToFind = [
      CANARY_SOURCE,
      CANARY_SINK,
      secrets.encryptionKey,
      ...tokensUsed,
      ...workerKeys.map((pem) => pem.split('\n')[1]!),
    ];
    for (const secret of secretsToFind) expect(logs, 'a secret reached a log').not.toContain(secret);
  });
});

describe('two control planes on one catalog', () => {
  let db: TestDatabase;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('e2e_two_cps');
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await db?.drop();
  });

  it('never lease one job to two of five workers at once, over many grants', async () => {
    const secrets = await clusterSecrets();
    const [cpA, cpB] = await Promise.all([
      startControlPlaneProcess(db, secrets, { name: 'control plane A' }),
      startControlPlaneProcess(db, secrets, { name: 'control plane B' }),
    ]);
    processes.push(cpA.process, cpB.process);
    const admin = await adminClients(cpA);
    const jobs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => createJob(admin, db, `contended-${i}`)),
    );
    const workers = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const cp = i % 2 ? cpB : cpA;
        const worker = await registerRawWorker(cp, (await newToken(admin)).secret);
        // Each worker calls both control planes, alternating.
        const other = createControlClient({
          address: `127.0.0.1:${(i % 2 ? cpA : cpB).port}`,
          caPem: cpA.caPem,
          certPem: worker.certPem,
          keyPem: worker.keyPem,
        });
        return { worker, clients: [worker.client, other] };
      }),
    );

    const holder = new Map<string, string>();
    const lastEpoch = new Map<string, bigint>();
    const violations: string[] = [];
    let grants = 0;
    const target = 120;
    await Promise.all(
      workers.map(async ({ worker, clients }, index) => {
        for (let round = 0; grants < target; round++) {
          const client = clients[(round + index) % 2]!;
          // Like a real agent: liveness comes from heartbeats; a silent worker is marked offline and gets nothing.
          await client.heartbeat({ envelopePublicKey: worker.keys.publicKey });
          const answer = await client.pullJob({ waitMs: 200, freeSlots: 1 });
          if (answer.work.case !== 'lease') continue;
          const { jobId, epoch } = answer.work.value;
          grants += 1;
          if (holder.has(jobId))
            violations.push(`${jobId} granted to ${worker.id} while ${holder.get(jobId)} held it`);
          if (epoch <= (lastEpoch.get(jobId) ?? 0n)) violations.push(`${jobId} epoch ${epoch} did not grow`);
          holder.set(jobId, worker.id);
          lastEpoch.set(jobId, epoch);
          await new Promise((resolve) => setImmediate(resolve));
          holder.delete(jobId);
          await client.reportProgress({ jobId, epoch, phase: JobPhase.SNAPSHOT, released: true });
        }
      }),
    );
    expect(violations).toEqual([]);
    expect(grants).toBeGreaterThanOrEqual(target);
    expect(new Set([...lastEpoch.keys()]).size).toBe(jobs.length);
    for (const { clients } of workers) for (const client of clients) client.close();
  });
});

describe('a worker’s life cycle', () => {
  let db: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let admin: Admin;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('e2e_lifecycle');
    secrets = await clusterSecrets();
    cp = await startControlPlaneProcess(db, secrets, { env: { SLUICE_WORKER_CERT_TTL: '10s' } });
    processes.push(cp.process);
    admin = await adminClients(cp);
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await db?.drop();
  });

  const leaseRow = async (jobId: string) =>
    (
      await db.client.query<{ state: string; lease_worker_id: string | null }>(
        'select state, lease_worker_id from jobs where id = $1',
        [jobId],
      )
    ).rows[0]!;

  it('renews its client certificate at half-life and keeps heartbeating past the first one’s expiry', async () => {
    const dir = path.join(secrets.dir, 'renewing');
    const worker = await startWorkerProcess(cp, {
      token: (await newToken(admin)).secret,
      stateDir: dir,
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(worker);
    const first = await identityOf(dir);
    await worker.waitForLine(/client certificate renewed/, 30_000);
    const renewed = await identityOf(dir);
    expect(renewed.certPem).not.toBe(first.certPem);
    expect(renewed.workerId).toBe(first.workerId);
    await waitFor(
      async () => {
        const { rows } = await db.client.query<{ last_heartbeat_at: Date }>(
          'select last_heartbeat_at from workers where id = $1',
          [first.workerId],
        );
        return rows[0]!.last_heartbeat_at > new Date(first.expiresAt);
      },
      { timeoutMs: 30_000, description: 'a heartbeat after the first certificate expired' },
    );
    expect(await worker.stop('SIGTERM')).toBe(0);
  });

  it('drains on SIGTERM: releases its lease after a last report and exits 0', async () => {
    const jobId = await createJob(admin, db, 'drain-sigterm');
    const dir = path.join(secrets.dir, 'sigterm');
    const worker = await startWorkerProcess(cp, {
      token: (await newToken(admin)).secret,
      stateDir: dir,
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(worker);
    const { workerId } = await identityOf(dir);
    await waitFor(async () => (await jobStatus(admin, jobId)).workerId === workerId, {
      description: 'the job to be leased',
    });
    expect(await worker.stop('SIGTERM')).toBe(0);
    expect(await leaseRow(jobId), worker.lines.filter((l) => /job|state|drain/.test(l)).join('\n')).toEqual({
      state: 'pending',
      lease_worker_id: null,
    });
    const released = await db.client.query(
      "select 1 from audit_events where action = 'job.release' and resource_id = $1 and worker_id = $2",
      [jobId, workerId],
    );
    expect(released.rowCount).toBe(1);
    expect(worker.output()).toMatch(/"to":"draining"[\s\S]*"to":"stopped"/);
  });

  it('runs connection tests on a worker: a reachable source and sink pass, a wrong password fails without leaking it', async () => {
    const sinkPassword = `sink-${randomToken(16)}`;
    const emulator = await startStarRocksEmulator({ password: sinkPassword, version: '3.9.9-probe' });
    const dir = path.join(secrets.dir, 'tester');
    const worker = await startWorkerProcess(cp, { token: (await newToken(admin)).secret, stateDir: dir });
    processes.push(worker);
    try {
      const datasources = admin.client(DatasourceService);
      const source = (wrongPassword?: string) => ({
        host: '127.0.0.1',
        port: db.server.port,
        database: db.name,
        username: db.server.user,
        sslMode: SslMode.VERIFY_FULL,
        password: wrongPassword ?? db.server.password,
        sslRootCert: db.server.caPem!,
      });
      const good = await datasources.createDatasource({
        name: 'probe-good',
        spec: { case: 'postgres', value: source() },
      });
      const wrong = `wrong-${randomToken(16)}`;
      const bad = await datasources.createDatasource({
        name: 'probe-bad',
        spec: { case: 'postgres', value: source(wrong) },
      });
      const sink = await datasources.createDatasource({
        name: 'probe-sink',
        spec: {
          case: 'starrocks',
          value: {
            feHost: '127.0.0.1',
            httpPort: emulator.fePort,
            mysqlPort: emulator.mysqlPort,
            username: emulator.user,
            database: 'probe',
            password: sinkPassword,
          },
        },
      });
      const test = (id: string) => datasources.testDatasource({ id, waitMs: 20_000 });

      const passed = await test(good.datasource!.id);
      expect(passed).toMatchObject({ ok: true, workerId: (await identityOf(dir)).workerId });
      expect(passed.serverVersion).toMatch(/^18/);
      const failed = await test(bad.datasource!.id);
      expect(failed.ok).toBe(false);
      expect(failed.message).toMatch(/probe-bad/);
      expect(JSON.stringify(failed)).not.toContain(wrong);
      expect(await test(sink.datasource!.id)).toMatchObject({ ok: true, serverVersion: '3.9.9-probe' });
      for (const secret of [wrong, sinkPassword, db.server.password]) {
        expect(worker.output()).not.toContain(secret);
        expect(cp.process.output()).not.toContain(secret);
      }
    } finally {
      await emulator.stop();
      // The next test's job must go to its own worker.
      await worker.stop('SIGTERM');
    }
  });

  it('drops a deleted job’s replication slot and publication on its source, through a worker', async () => {
    const datasources = admin.client(DatasourceService);
    const source = await datasources.createDatasource({
      name: 'cleanup-src',
      spec: {
        case: 'postgres',
        value: {
          host: '127.0.0.1',
          port: db.server.port,
          database: db.name,
          username: db.server.user,
          sslMode: SslMode.VERIFY_FULL,
          password: db.server.password,
          sslRootCert: db.server.caPem!,
        },
      },
    });
    const sink = await datasources.createDatasource({
      name: 'cleanup-sink',
      spec: {
        case: 'starrocks',
        value: { feHost: '127.0.0.1', username: 'root', database: 'demo', password: 'x' },
      },
    });
    const job = await admin.client(JobService).createJob({
      name: 'cleanup',
      sourceId: source.datasource!.id,
      sinkId: sink.datasource!.id,
      tables: [{ schema: 'public', name: 'orders' }],
    });
    // What a job that ran leaves behind on its source.
    const name = `sluice_${job.job!.id.replaceAll('-', '_')}`;
    await db.client.query(`create publication "${name}"`);
    await db.client.query("select pg_create_logical_replication_slot($1, 'pgoutput')", [name]);

    const dir = path.join(secrets.dir, 'cleaner');
    const worker = await startWorkerProcess(cp, { token: (await newToken(admin)).secret, stateDir: dir });
    processes.push(worker);
    try {
      await admin.client(JobService).deleteJob({ id: job.job!.id, dropReplicationSlot: true });
      // Gone from the source, and the worker's report recorded (it lands just after the drop).
      await waitFor(
        async () => {
          const slots = await db.client.query('select 1 from pg_replication_slots where slot_name = $1', [
            name,
          ]);
          const publications = await db.client.query('select 1 from pg_publication where pubname = $1', [
            name,
          ]);
          const done = await db.client.query(
            'select 1 from job_cleanups where job_id = $1 and done_at is not null',
            [job.job!.id],
          );
          return slots.rowCount === 0 && publications.rowCount === 0 && done.rowCount === 1;
        },
        { description: 'the slot and publication to be dropped and the cleanup recorded as done' },
      );
    } finally {
      await worker.stop('SIGTERM');
    }
  });

  it('drains and exits by itself when an admin drains it', async () => {
    const jobId = await createJob(admin, db, 'drain-admin');
    const dir = path.join(secrets.dir, 'admin-drain');
    const worker = await startWorkerProcess(cp, {
      token: (await newToken(admin)).secret,
      stateDir: dir,
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(worker);
    const { workerId } = await identityOf(dir);
    await waitFor(async () => (await jobStatus(admin, jobId)).workerId === workerId, {
      description: 'the job to be leased',
    });
    await admin.client(WorkerAdminService).drainWorker({ id: workerId });
    expect(await worker.exited).toBe(0);
    expect((await leaseRow(jobId)).lease_worker_id).toBeNull();
  });
});
