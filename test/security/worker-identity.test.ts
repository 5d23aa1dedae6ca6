// Hostile tests of worker identity against real processes over TLS 1.3: a copied identity.json can't redirect
// credentials to a key of its own, superseded and revoked certificates are refused on every call,
// FetchCredentials hands out only the held lease's datasources, and envelope expiry is measured by the
// server's clock, not the worker's wall clock. A new connection presenting a superseded or revoked certificate
// is closed right after the TLS handshake, before any request is read.
import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { status } from '@grpc/grpc-js';
import {
  createWorkerCsr,
  type EnvelopeKeyPair,
  envelopeKeyRotationMessage,
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
  createTestDatabase,
  plantCanary,
  type ServiceProcess,
  type TestDatabase,
  waitFor,
} from '@sluice/testkit';
import {
  type ControlClient,
  createControlClient,
  openJobCredentials,
  receivedNow,
  type WorkerIdentity,
} from '@sluice/worker';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  adminClients,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  expectCode,
  PLACEHOLDER_WORKER_ENTRY,
  startControlPlaneProcess,
  startWorkerProcess,
} from '../e2e/cluster.ts';

type Admin = Awaited<ReturnType<typeof adminClients>>;

interface RawWorker {
  id: string;
  keys: EnvelopeKeyPair;
  client: ControlClient;
  certPem: string;
  keyPem: string;
}

describe('worker identity is bound to keys the worker holds (real processes, TLS 1.3)', () => {
  let db: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let admin: Admin;
  const processes: ServiceProcess[] = [];
  const address = () => `127.0.0.1:${cp.port}`;

  beforeAll(async () => {
    db = await createTestDatabase('security_worker_identity');
    secrets = await clusterSecrets();
    cp = await startControlPlaneProcess(db, secrets, { env: { TOKEN_TTL: '5s' } });
    processes.push(cp.process);
    admin = await adminClients(cp);
  });

  afterAll(async () => {
    if (process.env.SLUICE_TEST_DUMP) await writeFile(process.env.SLUICE_TEST_DUMP, cp.process.output());
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await db?.drop();
  });

  async function token(): Promise<string> {
    return (await admin.client(BootstrapTokenService).createBootstrapToken({ ttlSeconds: 300 })).secret;
  }

  async function registerRaw(): Promise<RawWorker> {
    const keys = await generateEnvelopeKeyPair();
    const { csrPem, keyPem } = await createWorkerCsr();
    const anonymous = createControlClient({ address: address(), caPem: cp.caPem });
    try {
      const answer = await anonymous.register({
        bootstrapToken: await token(),
        csrPem,
        envelopePublicKey: keys.publicKey,
        hostname: 'raw',
        version: 'test',
      });
      const client = createControlClient({
        address: address(),
        caPem: cp.caPem,
        certPem: answer.certificatePem,
        keyPem,
      });
      return { id: answer.workerId, keys, client, certPem: answer.certificatePem, keyPem };
    } finally {
      anonymous.close();
    }
  }

  async function datasources(name: string): Promise<{ sourceId: string; sinkId: string }> {
    const service = admin.client(DatasourceService);
    const source = await service.createDatasource({
      name: `${name}-src`,
      spec: {
        case: 'postgres',
        value: {
          host: '127.0.0.1',
          port: db.server.port,
          database: db.name,
          username: 'replicator',
          sslMode: SslMode.VERIFY_FULL,
          password: plantCanary(`pw-${randomToken(16)}`, 'worker-identity source password'),
          sslRootCert: db.server.caPem!,
        },
      },
    });
    const sink = await service.createDatasource({
      name: `${name}-sink`,
      spec: {
        case: 'starrocks',
        value: {
          feHost: '127.0.0.1',
          httpPort: 8030,
          mysqlPort: 9030,
          username: 'root',
          database: 'demo',
          password: plantCanary(`pw-${randomToken(16)}`, 'worker-identity sink password'),
        },
      },
    });
    return { sourceId: source.datasource!.id, sinkId: sink.datasource!.id };
  }

  async function createJob(name: string): Promise<string> {
    const { sourceId, sinkId } = await datasources(name);
    const job = await admin.client(JobService).createJob({
      name,
      sourceId,
      sinkId,
      tables: [{ schema: 'public', name: 'orders' }],
      start: true,
    });
    return job.job!.id;
  }

  const jobStatus = async (id: string) => (await admin.client(JobService).getJobStatus({ id })).status!;

  const identityOf = async (dir: string) =>
    JSON.parse(await readFile(path.join(dir, 'identity.json'), 'utf8')) as WorkerIdentity;

  async function denials(action: string, workerId: string): Promise<number> {
    const { rows } = await db.client.query<{ n: string }>(
      "select count(*) as n from audit_events where action = $1 and worker_id = $2 and outcome = 'denied'",
      [action, workerId],
    );
    return Number(rows[0]!.n);
  }

  /** Leases the next waiting job to a raw worker. */
  async function pullLease(worker: RawWorker) {
    // Like a real agent: a worker that does not heartbeat is marked offline and gets nothing.
    return waitFor(async () => {
      await worker.client.heartbeat({ envelopePublicKey: worker.keys.publicKey });
      const answer = await worker.client.pullJob({ waitMs: 200, freeSlots: 1 });
      return answer.work.case === 'lease' && answer.work.value;
    });
  }

  it('(b) refuses a superseded certificate on every RPC after a renewal', async () => {
    const worker = await registerRaw();
    const { csrPem, keyPem } = await createWorkerCsr();
    const renewed = await worker.client.renewCertificate({ csrPem });
    const current = createControlClient({
      address: address(),
      caPem: cp.caPem,
      certPem: renewed.certificatePem,
      keyPem,
    });
    await current.heartbeat({ envelopePublicKey: worker.keys.publicKey });

    const old = worker.client;
    const job = '00000000-0000-4000-8000-000000000000';
    const calls: [string, () => Promise<unknown>][] = [
      ['Heartbeat', () => old.heartbeat({})],
      ['PullJob', () => old.pullJob({ waitMs: 0, freeSlots: 1 })],
      ['FetchCredentials', () => old.fetchCredentials({ jobId: job, epoch: 1n })],
      ['ReportProgress', () => old.reportProgress({ jobId: job, epoch: 1n, phase: JobPhase.STREAMING })],
      ['RenewCertificate', async () => old.renewCertificate({ csrPem: (await createWorkerCsr()).csrPem })],
      [
        'BeginEnvelopeKeyRotation',
        () => old.beginEnvelopeKeyRotation({ newEnvelopePublicKey: worker.keys.publicKey }),
      ],
      ['RotateEnvelopeKey', () => old.rotateEnvelopeKey({ newEnvelopePublicKey: worker.keys.publicKey })],
      ['CompleteConnectionTest', () => old.completeConnectionTest({ testId: job, ok: true })],
      ['CompleteReplicationCleanup', () => old.completeReplicationCleanup({ jobId: job, ok: true })],
    ];
    for (const [name, call] of calls) {
      await expectCode(call(), status.PERMISSION_DENIED).catch((error: unknown) => {
        throw new Error(`${name} with the superseded certificate: ${(error as Error).message}`);
      });
    }
    expect(await denials('worker.superseded_certificate', worker.id)).toBeGreaterThan(0);
    // The current certificate still works.
    await current.heartbeat({});
    old.close();
    current.close();
    await admin.client(WorkerAdminService).revokeWorker({ id: worker.id });
  });

  /**
   * Opens a bare TLS 1.3 connection with this client certificate and sends nothing: resolves whether the
   * server closed it within `ms` after the handshake completed.
   */
  async function closedAfterHandshake(certPem: string, keyPem: string, ms: number): Promise<boolean> {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: cp.port,
      // No SNI: the server is addressed by IP (RFC 6066 forbids an IP as server name).
      servername: '',
      ca: cp.caPem,
      cert: certPem,
      key: keyPem,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.3',
    });
    socket.on('error', () => undefined);
    try {
      await once(socket, 'secureConnect');
      expect(socket.getProtocol()).toBe('TLSv1.3');
      const closed = once(socket, 'close').then(() => true);
      const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref());
      return await Promise.race([closed, timeout]);
    } finally {
      socket.destroy();
    }
  }

  it('(f) closes a connection presenting a superseded or revoked certificate right after the TLS handshake', async () => {
    const worker = await registerRaw();
    const { csrPem, keyPem } = await createWorkerCsr();
    const renewed = await worker.client.renewCertificate({ csrPem });
    worker.client.close();
    const current = createControlClient({
      address: address(),
      caPem: cp.caPem,
      certPem: renewed.certificatePem,
      keyPem,
    });
    await current.heartbeat({ envelopePublicKey: worker.keys.publicKey });

    // The superseded certificate: the server closes the connection though the client sent nothing, and a
    // gRPC call over a new connection fails as Unavailable (no RPC ran, so no PERMISSION_DENIED, no audit).
    expect(await closedAfterHandshake(worker.certPem, worker.keyPem, 5_000)).toBe(true);
    const old = createControlClient({
      address: address(),
      caPem: cp.caPem,
      certPem: worker.certPem,
      keyPem: worker.keyPem,
    });
    await expectCode(old.heartbeat({}), status.UNAVAILABLE);
    old.close();
    expect(await denials('worker.superseded_certificate', worker.id)).toBe(0);

    // The current certificate of an active worker still works, over a connection the server keeps open.
    expect(await closedAfterHandshake(renewed.certificatePem, keyPem, 1_000)).toBe(false);
    await current.heartbeat({});
    current.close();

    // A revoked worker's current certificate: likewise.
    const doomed = await registerRaw();
    await doomed.client.heartbeat({ envelopePublicKey: doomed.keys.publicKey });
    doomed.client.close();
    await admin.client(WorkerAdminService).revokeWorker({ id: doomed.id });
    expect(await closedAfterHandshake(doomed.certPem, doomed.keyPem, 5_000)).toBe(true);
    const revoked = createControlClient({
      address: address(),
      caPem: cp.caPem,
      certPem: doomed.certPem,
      keyPem: doomed.keyPem,
    });
    await expectCode(revoked.heartbeat({}), status.UNAVAILABLE);
    revoked.close();
    expect(await denials('worker.call', doomed.id)).toBe(0);

    // Clients without a certificate (CLI, portal, registration) are untouched.
    const anonymous = createControlClient({ address: address(), caPem: cp.caPem });
    await expectCode(anonymous.heartbeat({}), status.UNAUTHENTICATED);
    anonymous.close();
    await admin.client(WorkerAdminService).revokeWorker({ id: worker.id });
  });

  it('(d) refuses FetchCredentials for a datasource not in the held lease, and (e) expires envelopes by the server clock', async () => {
    const worker = await registerRaw();
    const jobId = await createJob('held');
    const lease = await pullLease(worker);
    expect(lease.jobId).toBe(jobId);
    const spec = (await admin.client(JobService).getJob({ id: jobId })).job!;
    const foreign = await datasources('foreign');
    const ids = { workerId: worker.id, jobId, epoch: lease.epoch };

    // (d) Another job's source or sink, or any other datasource, is refused and audited.
    const before = await denials('credentials.issue', worker.id);
    for (const other of [foreign.sourceId, foreign.sinkId]) {
      await expectCode(
        worker.client.fetchCredentials({ jobId, epoch: lease.epoch, datasourceIds: [spec.sourceId, other] }),
        status.PERMISSION_DENIED,
      );
    }
    expect(await denials('credentials.issue', worker.id)).toBe(before + 2);
    const fetched = await worker.client.fetchCredentials({
      jobId,
      epoch: lease.epoch,
      datasourceIds: [spec.sourceId, spec.sinkId],
    });

    // (e) TOKEN_TTL is 5 s. The worker's wall clock is set back an hour (an injected clock, not the
    // system's); its monotonic clock says 6 s passed since receipt: the envelope is refused as EXPIRED.
    let monotonic = 0;
    const receipt = receivedNow(() => monotonic);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(new Date(Date.now() - 3_600_000));
      monotonic = 1_000;
      const opened = await openJobCredentials(worker.keys, fetched, ids, receipt);
      opened.source.wipe();
      opened.sink.wipe();
      monotonic = 6_000;
      await expect(openJobCredentials(worker.keys, fetched, ids, receipt)).rejects.toMatchObject({
        code: 'EXPIRED',
      });
    } finally {
      vi.useRealTimers();
    }
    worker.client.close();
    await admin.client(WorkerAdminService).revokeWorker({ id: worker.id });
  });

  it('(a) a copied identity.json announcing a new envelope key gets no credential; the real worker keeps working', async () => {
    const dir = path.join(secrets.dir, 'victim');
    const victim = await startWorkerProcess(cp, {
      token: await token(),
      stateDir: dir,
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(victim);
    const jobId = await createJob('victim');
    const identity = await identityOf(dir);
    const held = await waitFor(
      async () => {
        const s = await jobStatus(jobId);
        return s.phase === JobPhase.STREAMING && s.workerId === identity.workerId && s;
      },
      { description: 'the victim worker to run its job' },
    );

    // The thief: the copied certificate and key, from this (another) process, with an envelope key of its own.
    const thiefKeys = await generateEnvelopeKeyPair();
    const thief = createControlClient({
      address: address(),
      caPem: cp.caPem,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
    });
    const before = await denials('worker.envelope_key', identity.workerId);
    await expectCode(thief.heartbeat({ envelopePublicKey: thiefKeys.publicKey }), status.PERMISSION_DENIED);
    expect(await denials('worker.envelope_key', identity.workerId)).toBe(before + 1);

    // A rotation needs proof of possession of the new key and a signature by the presented certificate's key.
    const serial = new X509Certificate(identity.certPem).serialNumber;
    const begun = await thief.beginEnvelopeKeyRotation({ newEnvelopePublicKey: thiefKeys.publicKey });
    const challenge = await openEnvelope(thiefKeys.privateKey, toEnvelope(begun.challenge!), {
      workerId: identity.workerId,
      jobId: identity.workerId,
      epoch: 0n,
      role: 'envelope_key_challenge',
    });
    const issuedAtMs = Number(begun.issuedAt!.seconds) * 1000 + Math.floor(begun.issuedAt!.nanos / 1e6);
    const message = (answer: Uint8Array) =>
      envelopeKeyRotationMessage({
        workerId: identity.workerId,
        serial,
        issuedAtMs,
        newKey: thiefKeys.publicKey,
        challenge: answer,
      });
    const otherKey = createPrivateKey((await createWorkerCsr()).keyPem);
    // Signed by a key other than the certificate's: refused.
    await expectCode(
      thief.rotateEnvelopeKey({
        newEnvelopePublicKey: thiefKeys.publicKey,
        issuedAt: begun.issuedAt!,
        challenge,
        signature: sign('sha256', message(challenge), otherKey),
      }),
      status.PERMISSION_DENIED,
    );
    // Without the opened challenge (no proof of possession): refused.
    const guess = new Uint8Array(32);
    await expectCode(
      thief.rotateEnvelopeKey({
        newEnvelopePublicKey: thiefKeys.publicKey,
        issuedAt: begun.issuedAt!,
        challenge: guess,
        signature: sign('sha256', message(guess), createPrivateKey(identity.keyPem)),
      }),
      status.PERMISSION_DENIED,
    );
    expect(await denials('worker.envelope_key', identity.workerId)).toBe(before + 3);

    // Whatever the thief fetches is still sealed to the victim's in-memory key: it opens nothing.
    const sealed = await thief.fetchCredentials({ jobId, epoch: held.epoch });
    await expect(
      openEnvelope(thiefKeys.privateKey, toEnvelope(sealed.source!), {
        workerId: identity.workerId,
        jobId,
        epoch: held.epoch,
        role: 'source',
      }),
    ).rejects.toMatchObject({ code: 'TAMPERED' });
    thief.close();

    // The real worker keeps its lease and keeps reporting.
    const { rows } = await db.client.query<{ reported_at: Date }>(
      'select reported_at from jobs where id = $1',
      [jobId],
    );
    await waitFor(
      async () => {
        const s = await jobStatus(jobId);
        const now = await db.client.query<{ reported_at: Date }>(
          'select reported_at from jobs where id = $1',
          [jobId],
        );
        return (
          s.workerId === identity.workerId &&
          s.epoch === held.epoch &&
          now.rows[0]!.reported_at > rows[0]!.reported_at
        );
      },
      { description: 'the victim worker to keep reporting' },
    );

    // A restart of the real worker renews its certificate and rotates its envelope key by signed request:
    // the copy taken earlier is superseded.
    expect(await victim.stop('SIGTERM')).toBe(0);
    const restarted = await startWorkerProcess(cp, { stateDir: dir, entry: PLACEHOLDER_WORKER_ENTRY });
    processes.push(restarted);
    await restarted.waitForLine(/envelope key rotated/, 30_000);
    const stale = createControlClient({
      address: address(),
      caPem: cp.caPem,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
    });
    // A new connection with the superseded certificate is closed right after the handshake (see (f)).
    await expectCode(stale.heartbeat({}), status.UNAVAILABLE);
    stale.close();
    await waitFor(
      async () => {
        const s = await jobStatus(jobId);
        return s.phase === JobPhase.STREAMING && s.workerId === identity.workerId && s.epoch > held.epoch;
      },
      { description: 'the restarted worker to run its job again with fresh credentials' },
    );
    expect(await restarted.stop('SIGTERM')).toBe(0);
  });

  it('(c) a revoked worker is cut off within one heartbeat and its job goes to another worker with a higher epoch', async () => {
    const dir = path.join(secrets.dir, 'revoked');
    const doomed = await startWorkerProcess(cp, {
      token: await token(),
      stateDir: dir,
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(doomed);
    const identity = await identityOf(dir);
    const jobId = await createJob('revoked');
    const held = await waitFor(
      async () => {
        const s = await jobStatus(jobId);
        return s.phase === JobPhase.STREAMING && s.workerId === identity.workerId && s;
      },
      { description: 'the doomed worker to run its job' },
    );
    const other = await startWorkerProcess(cp, {
      token: await token(),
      stateDir: path.join(secrets.dir, 'successor'),
      entry: PLACEHOLDER_WORKER_ENTRY,
    });
    processes.push(other);

    const revokedAt = Date.now();
    await admin.client(WorkerAdminService).revokeWorker({ id: identity.workerId });
    // Its very next call is refused: no more credentials, not even for the epoch it held. A new connection
    // with its certificate is closed right after the handshake (see (f)), so the call fails as Unavailable.
    const asDoomed = createControlClient({
      address: address(),
      caPem: cp.caPem,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
    });
    await expectCode(asDoomed.fetchCredentials({ jobId, epoch: held.epoch }), status.UNAVAILABLE);
    asDoomed.close();
    // The process learns it on its next heartbeat (300 ms here) and stops.
    await doomed.waitForLine(/the control plane refused this worker/, 10_000);
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
    const regranted = await waitFor(
      async () => {
        const s = await jobStatus(jobId);
        if (s.phase === JobPhase.STREAMING && s.workerId && s.workerId !== identity.workerId) return s;
        throw new Error(`job is at phase ${s.phase} on ${s.workerId || 'no worker'}, epoch ${s.epoch}`);
      },
      { description: 'the job to be re-granted to the other worker' },
    );
    expect(regranted.epoch).toBeGreaterThan(held.epoch);
  });
});
