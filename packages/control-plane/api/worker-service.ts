// WorkerService: registration with a single-use bootstrap token, then every call authenticated by the
// worker's client certificate (verified by TLS against the internal CA, its SPIFFE id looked up on every
// call so a revocation takes effect at once), leases fenced by epochs, and credentials sealed to the
// worker's in-memory envelope key. Worker calls audit themselves: the JWT interceptor only passes them on.
import { createHmac, hkdfSync, randomUUID, timingSafeEqual, verify, X509Certificate } from 'node:crypto';
import { create, type JsonValue, toBinary, toJson } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter, HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type EnvelopeBinding,
  envelopeKeyRotationMessage,
  normaliseSerial,
  PkiError,
  sealEnvelope,
  toSealedEnvelope,
  wipe,
  workerIdFromCertificate,
} from '@sluice/crypto';
import {
  AgentState,
  ConnectionTestSchema,
  type DatasourceSecrets,
  DatasourceSecretsSchema,
  type Instruction,
  InstructionSchema,
  JobCheckpointSchema,
  JobErrorSchema,
  JobLeaseSchema,
  JobPhase,
  JobState,
  JobStatusSchema,
  ReplicationCleanupSchema,
  type SealedEnvelope,
  WorkerService,
} from '@sluice/proto';
import type pg from 'pg';
import { peerKey } from '../call-context.ts';
import { decryptDatasourceSecrets, wipePlaintexts } from '../catalog/datasource-secrets.ts';
import { decryptField } from '../catalog/secret-columns.ts';
import type { ControlPlaneCore } from '../control-plane.ts';
import {
  failedPrecondition,
  invalidArgument,
  notFound,
  permissionDenied,
  unauthenticated,
} from '../errors.ts';
import {
  type ClaimedConnectionTest,
  claimConnectionTest,
  claimReplicationCleanup,
  grantJob,
  heldJob,
  type LeaseRow,
  markSilentWorkersOffline,
  releaseLease,
  renewLeases,
  workerMayTakeJobs,
} from '../scheduler/job-leases.ts';
import { JOB_STATE_VALUES, type JobStateName } from '../scheduler/job-transitions.ts';
import { createWorkSignal } from '../scheduler/work-signal.ts';
import { bootstrapTokenHash } from './bootstrap-token-service.ts';
import { loadDatasource } from './datasource-service.ts';
import { loadJob } from './job-service.ts';
import { isUuid, requireLabels, requireMaxLength } from './validation.ts';

export interface WorkerServiceOptions {
  /** How often workers heartbeat (default 5 s). */
  heartbeatIntervalMs?: number;
  /** A lease lives this long without a heartbeat (default 3 heartbeats). */
  leaseTtlMs?: number;
  /** Worker client certificate lifetime (default 1 h). */
  certificateTtlSeconds?: number;
  /** How long a sealed envelope may be opened (TOKEN_TTL, default 60 s). */
  envelopeTtlMs?: number;
  /**
   * A waiting PullJob is woken by catalog notifications; it also re-checks after about this long (jittered
   * ±50%), which is what finds expired leases (default 2,000 ms).
   */
  pullFallbackMs?: number;
}

interface Resolved {
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  certificateTtlSeconds: number;
  envelopeTtlMs: number;
  pullFallbackMs: number;
}

const MAX_PULL_WAIT_MS = 30_000;
const AGENT_STATES: Record<number, string> = {
  [AgentState.INITIALIZED]: 'initialized',
  [AgentState.RUNNING]: 'running',
  [AgentState.DRAINING]: 'draining',
  [AgentState.STOPPING]: 'stopping',
  [AgentState.STOPPED]: 'stopped',
  [AgentState.FAILED]: 'failed',
};
const PHASE_NAMES: Record<number, string> = {
  [JobPhase.UNSPECIFIED]: 'unspecified',
  [JobPhase.SNAPSHOT]: 'snapshot',
  [JobPhase.STREAMING]: 'streaming',
};

interface WorkerRow {
  id: string;
  state: string;
  envelope_public_key: Buffer | null;
  cert_serial: string | null;
  /** The serial of the certificate this call presented (normalised), checked equal to `cert_serial`. */
  presentedSerial: string;
}

/** How long an envelope key rotation challenge stays valid, by the control plane's clock. */
const ROTATION_WINDOW_MS = 60_000;
const ROTATION_LABEL = 'sluice.envelope-key-rotation.v1';

/** Registers WorkerService on the control plane's router (pass as `extraRoutes`). */
export function workerRoutes(options: WorkerServiceOptions = {}) {
  return (router: ConnectRouter, core: ControlPlaneCore) => {
    router.service(WorkerService, createWorkerService(core, options));
  };
}

export function createWorkerService(
  core: ControlPlaneCore,
  options: WorkerServiceOptions = {},
): ServiceImpl<typeof WorkerService> {
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000;
  const settings: Resolved = {
    heartbeatIntervalMs,
    leaseTtlMs: options.leaseTtlMs ?? heartbeatIntervalMs * 3,
    certificateTtlSeconds: options.certificateTtlSeconds ?? 3_600,
    envelopeTtlMs: options.envelopeTtlMs ?? core.config.envelopeTtlMs,
    pullFallbackMs: options.pullFallbackMs ?? 2_000,
  };
  const { pool, logger } = core;
  // Rotation challenges are MACs, not stored state, so any control plane sharing the catalog (and JWT secret)
  // can check one another issued.
  const rotationKey = Buffer.from(
    hkdfSync('sha256', core.config.jwtSecret, new Uint8Array(0), ROTATION_LABEL, 32),
  );
  const rotationChallenge = (workerId: string, serial: string, newKey: Uint8Array, issuedAtMs: number) =>
    createHmac('sha256', rotationKey)
      .update(
        envelopeKeyRotationMessage({ workerId, serial, issuedAtMs, newKey, challenge: new Uint8Array(0) }),
      )
      .digest();
  const workSignal = createWorkSignal(pool, logger, core.shutdownSignal);
  const sweep = setInterval(() => {
    markSilentWorkersOffline(pool, settings.leaseTtlMs).catch(() => undefined);
  }, settings.leaseTtlMs);
  sweep.unref();
  core.shutdownSignal.addEventListener('abort', () => clearInterval(sweep), { once: true });

  const audit = (
    ctx: HandlerContext,
    action: string,
    outcome: 'success' | 'denied' | 'error',
    ids: AuditIds,
  ) =>
    core
      .audit({ action, outcome, ipAddress: ctx.values.get(peerKey).remoteAddress, ...ids })
      .catch((error: unknown) =>
        logger.error({ action, errorType: (error as Error).name }, 'audit append failed'),
      );

  // Parsing a certificate costs milliseconds of CPU, and every worker call (200 heartbeats a second for 1,000
  // workers) presents one: TLS has verified it, so its SPIFFE id is kept by fingerprint. Revocation stays
  // immediate — the worker's row is read on every call.
  const identities = new Map<string, string>();

  /**
   * The calling worker, from its verified certificate; refused when unknown, revoked, or when the certificate
   * is not the one last issued to it (a superseded certificate, e.g. a copy taken before a renewal).
   */
  async function authenticate(ctx: HandlerContext): Promise<WorkerRow> {
    const peer = ctx.values.get(peerKey);
    const certificate = peer.peerCertificate;
    if (!peer.authorized || !certificate?.raw) {
      throw unauthenticated('a client certificate issued by this control plane is required');
    }
    let workerId = identities.get(certificate.fingerprint256);
    try {
      if (!workerId) {
        workerId = workerIdFromCertificate(certificate, core.config.trustDomain);
        if (identities.size >= 10_000) identities.clear();
        identities.set(certificate.fingerprint256, workerId);
      }
    } catch (error) {
      if (error instanceof PkiError)
        throw unauthenticated(`client certificate is not a worker identity: ${error.message}`);
      throw error;
    }
    const result = await pool.query<Omit<WorkerRow, 'presentedSerial'>>(
      'select id, state, envelope_public_key, cert_serial from workers where id = $1',
      [workerId],
    );
    const row = result.rows[0];
    if (!row) throw unauthenticated(`worker ${workerId} is not registered`);
    if (row.state === 'revoked') {
      core.workerSerials?.revoked(workerId);
      await audit(ctx, 'worker.call', 'denied', { workerId, resourceId: workerId });
      throw permissionDenied(`worker ${workerId} is revoked`);
    }
    const presentedSerial = normaliseSerial(certificate.serialNumber ?? '');
    if (!row.cert_serial || !presentedSerial || normaliseSerial(row.cert_serial) !== presentedSerial) {
      await audit(ctx, 'worker.superseded_certificate', 'denied', { workerId, resourceId: workerId });
      throw permissionDenied(
        `this certificate of worker ${workerId} has been superseded by a newer one: use the current certificate`,
      );
    }
    return { ...row, presentedSerial };
  }

  /** One datasource's secrets, sealed to `worker` for (job or test id, epoch, role) until the envelope TTL. */
  async function sealDatasource(
    worker: WorkerRow,
    datasourceId: string,
    bound: { jobId: string; epoch: bigint; role: string },
  ): Promise<SealedEnvelope> {
    const issuedAt = new Date();
    return sealSecrets(
      envelopeKeyOf(worker),
      await datasourceSecrets(pool, core, datasourceId),
      {
        workerId: worker.id,
        ...bound,
        datasourceId,
        expiresAt: new Date(issuedAt.getTime() + settings.envelopeTtlMs),
      },
      issuedAt,
    );
  }

  /** A claimed test with the datasource's secrets sealed to the worker, bound to the test id and epoch 0. */
  async function connectionTest(test: ClaimedConnectionTest, worker: WorkerRow) {
    const datasource = await loadDatasource(pool, test.datasource_id);
    const role = datasource.config.case === 'starrocks' ? 'sink' : 'source';
    const credentials = await sealDatasource(worker, test.datasource_id, {
      jobId: test.id,
      epoch: 0n,
      role,
    });
    logger.info({ testId: test.id, workerId: worker.id }, 'connection test assigned');
    return create(ConnectionTestSchema, {
      testId: test.id,
      datasource,
      credentials,
      tables: test.tables.map((table) => ({ schema: table.schema, name: table.name })),
    });
  }

  /** A claimed cleanup with the source's secrets sealed to the worker, bound to the deleted job and epoch 0. */
  async function replicationCleanup(
    cleanup: { job_id: string; source_id: string; slot_name: string; publication_name: string },
    worker: WorkerRow,
  ) {
    const source = await loadDatasource(pool, cleanup.source_id);
    const credentials = await sealDatasource(worker, cleanup.source_id, {
      jobId: cleanup.job_id,
      epoch: 0n,
      role: 'source',
    });
    logger.info({ jobId: cleanup.job_id, workerId: worker.id }, 'replication cleanup assigned');
    return create(ReplicationCleanupSchema, {
      jobId: cleanup.job_id,
      source,
      credentials,
      slotName: cleanup.slot_name,
      publicationName: cleanup.publication_name,
    });
  }

  return {
    async register(req, ctx) {
      const token = req.bootstrapToken;
      if (!token || token.length > 512)
        throw invalidArgument('bootstrap_token is required (at most 512 characters)');
      if (!req.csrPem || req.csrPem.length > 16_384)
        throw invalidArgument('csr_pem is required (at most 16 KiB)');
      if (req.envelopePublicKey.length !== 32) {
        throw invalidArgument(
          `envelope_public_key must be 32 bytes (X25519), got ${req.envelopePublicKey.length}`,
        );
      }
      const hostname = requireMaxLength('hostname', req.hostname, 253);
      const version = requireMaxLength('version', req.version, 64);
      const ownLabels = requireLabels('labels', req.labels);
      const workerId = randomUUID();
      const client = await pool.connect();
      try {
        await client.query('begin');
        // Single use under concurrency: the update that marks the token used is also the check.
        const used = await client.query<{ id: string; labels: Record<string, string> }>(
          `update bootstrap_tokens set used_at = now(), used_by_worker_id = $2
            where token_hash = $1 and used_at is null and revoked_at is null and expires_at > now()
            returning id, labels`,
          [bootstrapTokenHash(token), workerId],
        );
        const tokenRow = used.rows[0];
        if (!tokenRow) {
          await client.query('rollback');
          await audit(ctx, 'worker.register', 'denied', {});
          throw unauthenticated('bootstrap token is unknown, expired, revoked or already used');
        }
        let issued: { certPem: string; notAfter: Date; serial: string };
        try {
          issued = await core.internalCa.issueWorkerCertificate({
            csrPem: req.csrPem,
            workerId,
            ttlSeconds: settings.certificateTtlSeconds,
          });
        } catch (error) {
          await client.query('rollback');
          if (error instanceof PkiError) throw invalidArgument(`csr_pem: ${error.message}`);
          throw error;
        }
        await client.query(
          `insert into workers (id, hostname, version, labels, state, agent_state, envelope_public_key,
                                cert_serial, cert_expires_at, bootstrap_token_id, last_heartbeat_at)
           values ($1, $2, $3, $4, 'active', 'initialized', $5, $6, $7, $8, now())`,
          [
            workerId,
            hostname,
            version,
            JSON.stringify({ ...tokenRow.labels, ...ownLabels }),
            Buffer.from(req.envelopePublicKey),
            issued.serial,
            issued.notAfter,
            tokenRow.id,
          ],
        );
        await client.query('commit');
        core.workerSerials?.issued(workerId, issued.serial, issued.notAfter);
        await audit(ctx, 'worker.register', 'success', { workerId, resourceId: workerId });
        logger.info({ workerId, hostname }, 'worker registered');
        return {
          workerId,
          certificatePem: issued.certPem,
          caCertificatePem: core.internalCa.certPem,
          certificateExpiresAt: timestampFromDate(issued.notAfter),
          heartbeatIntervalMs: settings.heartbeatIntervalMs,
          leaseTtlMs: settings.leaseTtlMs,
        };
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    async heartbeat(req, ctx) {
      const worker = await authenticate(ctx);
      const envelopeKey = req.envelopePublicKey.length ? req.envelopePublicKey : undefined;
      if (envelopeKey && envelopeKey.length !== 32) {
        throw invalidArgument(`envelope_public_key must be 32 bytes (X25519), got ${envelopeKey.length}`);
      }
      // A heartbeat never changes the envelope key: anyone holding a copy of the worker's certificate and key
      // could otherwise redirect every later credential to a key of their own. Rotation is signed (below).
      if (envelopeKey && !worker.envelope_public_key?.equals(Buffer.from(envelopeKey))) {
        await audit(ctx, 'worker.envelope_key', 'denied', { workerId: worker.id, resourceId: worker.id });
        throw permissionDenied(
          'envelope_public_key differs from the registered key: rotate it with BeginEnvelopeKeyRotation and RotateEnvelopeKey',
        );
      }
      const held = req.leases.map((lease) => {
        if (!isUuid(lease.jobId))
          throw invalidArgument(`leases: job id ${JSON.stringify(lease.jobId.slice(0, 40))} is not a UUID`);
        return { jobId: lease.jobId, epoch: lease.epoch };
      });
      await pool.query(
        `update workers
            set last_heartbeat_at = now(), agent_state = $2,
                state = case when state = 'offline' then 'active' else state end
          where id = $1`,
        [worker.id, AGENT_STATES[req.agentState] ?? 'initialized'],
      );
      // A worker announcing a drain must get its open long poll answered now, so it grants nothing more.
      if (req.agentState !== AgentState.RUNNING && req.agentState !== AgentState.INITIALIZED) {
        workSignal.wake(worker.id);
      }
      const renewed = await renewLeases(pool, worker.id, held, settings.leaseTtlMs);
      const renewedIds = new Set(renewed.map((row) => row.id));
      const instructions: Instruction[] = held
        .filter((lease) => !renewedIds.has(lease.jobId))
        .map((lease) =>
          create(InstructionSchema, {
            kind: {
              case: 'stopJob',
              value: {
                jobId: lease.jobId,
                epoch: lease.epoch,
                reason: 'the lease is no longer held at this epoch',
              },
            },
          }),
        );
      if (worker.state === 'draining') {
        instructions.push(
          create(InstructionSchema, {
            kind: { case: 'drain', value: { reason: 'drain requested by an admin' } },
          }),
        );
      }
      return {
        renewed: renewed.map((row) => ({
          jobId: row.id,
          epoch: BigInt(row.lease_epoch),
          expiresAt: timestampFromDate(row.lease_expires_at),
        })),
        instructions,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
      };
    },

    async pullJob(req, ctx) {
      const worker = await authenticate(ctx);
      if (worker.state !== 'active' || req.freeSlots === 0) return {};
      const deadline = Date.now() + Math.min(req.waitMs, MAX_PULL_WAIT_MS);
      for (;;) {
        const test = await claimConnectionTest(pool, worker.id);
        if (test) return { work: { case: 'connectionTest', value: await connectionTest(test, worker) } };
        const cleanup = await claimReplicationCleanup(pool, worker.id);
        if (cleanup)
          return { work: { case: 'replicationCleanup', value: await replicationCleanup(cleanup, worker) } };
        const lease = await grantJob(pool, worker.id, settings.leaseTtlMs);
        if (lease && ctx.signal.aborted) {
          // The worker gave up on this call (it is draining or gone): nobody will run the job, so hand it back
          // now rather than leave it stranded until the lease expires.
          await releaseLease(pool, lease);
          return {};
        }
        if (lease) {
          await audit(ctx, 'job.lease', 'success', { workerId: worker.id, resourceId: lease.id });
          logger.info({ jobId: lease.id, workerId: worker.id, epoch: lease.lease_epoch }, 'job leased');
          return { work: { case: 'lease', value: await leaseMessage(pool, lease) } };
        }
        if (Date.now() >= deadline || ctx.signal.aborted || core.shutdownSignal.aborted) return {};
        // A worker that announced a drain (or was drained or revoked) gets its answer now, not at the deadline.
        if (!(await workerMayTakeJobs(pool, worker.id))) return {};
        const fallback = settings.pullFallbackMs * (0.5 + Math.random());
        await workSignal.wait(Math.min(fallback, Math.max(0, deadline - Date.now())), worker.id, ctx.signal);
      }
    },

    async beginEnvelopeKeyRotation(req, ctx) {
      const worker = await authenticate(ctx);
      const newKey = req.newEnvelopePublicKey;
      if (newKey.length !== 32)
        throw invalidArgument(`new_envelope_public_key must be 32 bytes (X25519), got ${newKey.length}`);
      const issuedAt = new Date();
      const challenge = rotationChallenge(worker.id, worker.presentedSerial, newKey, issuedAt.getTime());
      try {
        // Sealed to the new key: only a holder of its private half can answer.
        const sealed = toSealedEnvelope(
          await sealEnvelope(newKey, challenge, {
            workerId: worker.id,
            jobId: worker.id,
            epoch: 0n,
            role: 'envelope_key_challenge',
            datasourceId: worker.id,
            expiresAt: new Date(issuedAt.getTime() + ROTATION_WINDOW_MS),
          }),
        );
        return { issuedAt: timestampFromDate(issuedAt), challenge: sealed };
      } catch (error) {
        if ((error as Error).name === 'EnvelopeError')
          throw invalidArgument('new_envelope_public_key is not a usable X25519 key');
        throw error;
      } finally {
        wipe(challenge);
      }
    },

    async rotateEnvelopeKey(req, ctx) {
      const worker = await authenticate(ctx);
      const ids = { workerId: worker.id, resourceId: worker.id };
      const newKey = req.newEnvelopePublicKey;
      if (newKey.length !== 32)
        throw invalidArgument(`new_envelope_public_key must be 32 bytes (X25519), got ${newKey.length}`);
      if (!req.issuedAt) throw invalidArgument('issued_at is required');
      const issuedAtMs = timestampDate(req.issuedAt).getTime();
      const refuse = async (why: string) => {
        await audit(ctx, 'worker.envelope_key', 'denied', ids);
        return permissionDenied(`envelope key rotation refused: ${why}`);
      };
      const age = Date.now() - issuedAtMs;
      if (!(age >= 0 && age <= ROTATION_WINDOW_MS)) throw await refuse('the challenge is stale');
      const expected = rotationChallenge(worker.id, worker.presentedSerial, newKey, issuedAtMs);
      if (req.challenge.length !== expected.length || !timingSafeEqual(expected, req.challenge))
        throw await refuse('the challenge answer is wrong (no proof of possession of the new key)');
      const raw = ctx.values.get(peerKey).peerCertificate?.raw;
      let signed = false;
      try {
        const message = envelopeKeyRotationMessage({
          workerId: worker.id,
          serial: worker.presentedSerial,
          issuedAtMs,
          newKey,
          challenge: req.challenge,
        });
        signed = !!raw && verify('sha256', message, new X509Certificate(raw).publicKey, req.signature);
      } catch {
        signed = false;
      }
      if (!signed) throw await refuse('the signature does not verify with the presented certificate key');
      await pool.query('update workers set envelope_public_key = $2 where id = $1', [
        worker.id,
        Buffer.from(newKey),
      ]);
      await audit(ctx, 'worker.envelope_key', 'success', ids);
      logger.info({ workerId: worker.id }, 'worker envelope key rotated');
      return {};
    },

    async fetchCredentials(req, ctx) {
      const worker = await authenticate(ctx);
      if (!isUuid(req.jobId)) throw invalidArgument('job_id must be a UUID');
      const ids = { workerId: worker.id, resourceId: req.jobId };
      const job = await heldJob<{
        source_id: string;
        sink_id: string;
        pii_hmac_key_ciphertext: Buffer | null;
      }>(pool, req.jobId, worker.id, req.epoch, { requireUnexpired: true });
      if (!job) {
        await audit(ctx, 'credentials.issue', 'denied', ids);
        const exists = await pool.query('select 1 from jobs where id = $1', [req.jobId]);
        if (!exists.rowCount) throw notFound('job', req.jobId);
        throw failedPrecondition(`job ${req.jobId} is not leased to this worker at epoch ${req.epoch}`);
      }
      // Only the source and sink of the job held at this epoch: naming any other datasource is refused.
      const foreign = req.datasourceIds.filter((id) => id !== job.source_id && id !== job.sink_id);
      if (foreign.length) {
        await audit(ctx, 'credentials.issue', 'denied', ids);
        throw permissionDenied(
          `datasource ${JSON.stringify(foreign[0]?.slice(0, 40))} is not the source or sink of job ${req.jobId} at epoch ${req.epoch}`,
        );
      }
      const bound = { jobId: req.jobId, epoch: req.epoch };
      const source = await sealDatasource(worker, job.source_id, { ...bound, role: 'source' });
      const sink = await sealDatasource(worker, job.sink_id, { ...bound, role: 'sink' });
      let piiKey: SealedEnvelope | undefined;
      if (job.pii_hmac_key_ciphertext) {
        const key = decryptField(
          core.keyring,
          'jobs',
          req.jobId,
          'pii_hmac_key',
          job.pii_hmac_key_ciphertext,
        );
        const issuedAt = new Date();
        try {
          piiKey = await sealSecrets(
            envelopeKeyOf(worker),
            create(DatasourceSecretsSchema, { hmacKey: key }),
            {
              workerId: worker.id,
              ...bound,
              role: 'pii_key',
              // The key belongs to the job, not to a datasource; a binding field may not be empty.
              datasourceId: req.jobId,
              expiresAt: new Date(issuedAt.getTime() + settings.envelopeTtlMs),
            },
            issuedAt,
          );
        } finally {
          wipe(key);
        }
      }
      await audit(ctx, 'credentials.issue', 'success', ids);
      return { source, sink, ...(piiKey && { piiKey }) };
    },

    async reportProgress(req, ctx) {
      const worker = await authenticate(ctx);
      if (!isUuid(req.jobId)) throw invalidArgument('job_id must be a UUID');
      const phase = PHASE_NAMES[req.phase];
      if (!phase) throw invalidArgument(`phase ${req.phase} is not a job phase`);
      const client = await pool.connect();
      try {
        await client.query('begin');
        const job = await heldJob<{ state: string; checkpoint: JsonValue | null }>(
          client,
          req.jobId,
          worker.id,
          req.epoch,
          { lock: true },
        );
        if (!job) {
          await client.query('rollback');
          const exists = await pool.query('select 1 from jobs where id = $1', [req.jobId]);
          if (!exists.rowCount) throw notFound('job', req.jobId);
          throw failedPrecondition(
            `job ${req.jobId} is not leased to this worker at epoch ${req.epoch}: stop it`,
          );
        }
        const status = toJson(
          JobStatusSchema,
          create(JobStatusSchema, {
            tables: req.tables,
            lagBytes: req.lagBytes,
            lagSeconds: req.lagSeconds,
            rowsPerSecond: req.rowsPerSecond,
            bytesPerSecond: req.bytesPerSecond,
          }),
        );
        const checkpoint =
          req.checkpoint && movesForward(job.checkpoint, req.checkpoint.durableLsn)
            ? toJson(JobCheckpointSchema, req.checkpoint)
            : job.checkpoint;
        const failed = req.failed;
        const release = failed || req.released;
        const nextState = failed ? 'failed' : req.released && job.state === 'running' ? 'pending' : job.state;
        await client.query(
          `update jobs
              set phase = $2, status = $3, checkpoint = $4, reported_at = now(), updated_at = now(),
                  last_error = coalesce($5, last_error), state = $6
                  ${release ? ', lease_worker_id = null, lease_expires_at = null' : ''}
            where id = $1`,
          [
            req.jobId,
            phase,
            JSON.stringify(status),
            checkpoint === null ? null : JSON.stringify(checkpoint),
            req.error ? JSON.stringify(toJson(JobErrorSchema, req.error)) : null,
            nextState,
          ],
        );
        await client.query('commit');
        if (failed || req.released) {
          await audit(ctx, failed ? 'job.fail' : 'job.release', 'success', {
            workerId: worker.id,
            resourceId: req.jobId,
          });
        }
        return { desiredState: JOB_STATE_VALUES[nextState as JobStateName] ?? JobState.UNSPECIFIED };
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    async renewCertificate(req, ctx) {
      const worker = await authenticate(ctx);
      if (!req.csrPem || req.csrPem.length > 16_384)
        throw invalidArgument('csr_pem is required (at most 16 KiB)');
      let issued: { certPem: string; notAfter: Date; serial: string };
      try {
        issued = await core.internalCa.issueWorkerCertificate({
          csrPem: req.csrPem,
          workerId: worker.id,
          ttlSeconds: settings.certificateTtlSeconds,
        });
      } catch (error) {
        if (error instanceof PkiError) throw invalidArgument(`csr_pem: ${error.message}`);
        throw error;
      }
      await pool.query('update workers set cert_serial = $2, cert_expires_at = $3 where id = $1', [
        worker.id,
        issued.serial,
        issued.notAfter,
      ]);
      // The superseded certificate is refused at the TLS layer from now on, not only per RPC.
      core.workerSerials?.issued(worker.id, issued.serial, issued.notAfter);
      await audit(ctx, 'worker.renew_certificate', 'success', { workerId: worker.id, resourceId: worker.id });
      return {
        certificatePem: issued.certPem,
        caCertificatePem: core.internalCa.certPem,
        certificateExpiresAt: timestampFromDate(issued.notAfter),
      };
    },

    async completeReplicationCleanup(req, ctx) {
      const worker = await authenticate(ctx);
      if (!isUuid(req.jobId)) throw invalidArgument('job_id must be a UUID');
      const message = requireMaxLength('message', req.message, 1_000);
      const result = await pool.query(
        // A failed attempt keeps its claim until it expires, so an unreachable source is retried every
        // claim period, not in a tight loop.
        `update job_cleanups
            set done_at = case when $3 then now() else null end,
                last_error = case when $3 then null else $4 end
          where job_id = $1 and claimed_by = $2 and done_at is null`,
        [req.jobId, worker.id, req.ok, message],
      );
      if (!result.rowCount)
        throw failedPrecondition(`replication cleanup ${req.jobId} is not assigned to this worker`);
      await audit(ctx, 'job.cleanup', req.ok ? 'success' : 'error', {
        workerId: worker.id,
        resourceId: req.jobId,
      });
      return {};
    },

    async completeConnectionTest(req, ctx) {
      const worker = await authenticate(ctx);
      if (!isUuid(req.testId)) throw invalidArgument('test_id must be a UUID');
      const result = await pool.query(
        `update connection_tests
            set state = 'done', ok = $3, message = $4, server_version = $5, latency_ms = $6, completed_at = now()
          where id = $1 and worker_id = $2 and state = 'assigned'`,
        [
          req.testId,
          worker.id,
          req.ok,
          requireMaxLength('message', req.message, 1_000),
          requireMaxLength('server_version', req.serverVersion, 200),
          req.latencyMs,
        ],
      );
      if (!result.rowCount)
        throw failedPrecondition(`connection test ${req.testId} is not assigned to this worker`);
      return {};
    },
  };
}

interface AuditIds {
  workerId?: string;
  resourceId?: string;
}

/** The full lease: job definition, both datasources without secrets, and the last checkpoint. */
async function leaseMessage(pool: pg.Pool, lease: LeaseRow) {
  const job = await loadJob(pool, lease.id);
  const [source, sink] = await Promise.all([
    loadDatasource(pool, job.job.sourceId),
    loadDatasource(pool, job.job.sinkId),
  ]);
  return create(JobLeaseSchema, {
    jobId: lease.id,
    epoch: BigInt(lease.lease_epoch),
    expiresAt: timestampFromDate(lease.lease_expires_at),
    spec: { job: job.job, source, sink, ...(job.checkpoint && { checkpoint: job.checkpoint }) },
  });
}

const SECRET_FIELDS = [
  ['password_ciphertext', 'password', 'password'],
  ['ssl_root_cert_ciphertext', 'ssl_root_cert', 'sslRootCert'],
  ['ssl_client_cert_ciphertext', 'ssl_client_cert', 'sslClientCert'],
  ['ssl_client_key_ciphertext', 'ssl_client_key', 'sslClientKey'],
  ['ca_cert_ciphertext', 'ca_cert', 'caCert'],
] as const;

/** The key a worker's envelopes are sealed to; a worker that never sent one can't be given secrets. */
function envelopeKeyOf(worker: WorkerRow): Uint8Array {
  if (!worker.envelope_public_key)
    throw failedPrecondition('this worker has not sent an envelope public key');
  return worker.envelope_public_key;
}

/** Seals a secrets message to one worker's envelope key, wiping the serialised plaintext afterwards. */
async function sealSecrets(
  publicKey: Uint8Array,
  secrets: DatasourceSecrets,
  binding: EnvelopeBinding,
  issuedAt: Date,
): Promise<SealedEnvelope> {
  const plaintext = toBinary(DatasourceSecretsSchema, secrets);
  try {
    // issued_at is the control plane's clock at sealing: the worker measures the envelope's age from it with
    // its own monotonic clock, never its wall clock (see worker.proto, FetchCredentialsResponse).
    return {
      ...toSealedEnvelope(await sealEnvelope(publicKey, plaintext, binding)),
      issuedAt: timestampFromDate(issuedAt),
    };
  } finally {
    wipe(plaintext);
  }
}

/**
 * Decrypts one datasource's secret columns into the message that travels sealed; the password only if the
 * row still names the connection target it was entered for (DatasourceTargetMismatchError otherwise).
 */
async function datasourceSecrets(
  client: pg.Pool,
  core: ControlPlaneCore,
  id: string,
): Promise<DatasourceSecrets> {
  const opened = await decryptDatasourceSecrets(client, core.keyring, id);
  if (!opened) throw failedPrecondition(`datasource ${id} of this job no longer exists`);
  try {
    const secrets = create(DatasourceSecretsSchema);
    for (const [, field, property] of SECRET_FIELDS) {
      const plaintext = opened[field];
      if (plaintext) secrets[property] = plaintext.toString('utf8');
    }
    return secrets;
  } finally {
    wipePlaintexts(opened);
  }
}

/** A checkpoint is accepted only if its durable LSN does not go backwards. */
function movesForward(stored: JsonValue | null, durableLsn: bigint): boolean {
  const previous = (stored as { durableLsn?: string } | null)?.durableLsn;
  return previous === undefined || durableLsn >= BigInt(previous);
}
