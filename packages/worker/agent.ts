// The worker agent: registers once, then heartbeats (renewing its leases), long-polls for jobs, runs each
// under its lease, renews its certificate at half-life, and drains on request. It only ever calls the
// control plane; nothing dials the worker.
import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { status } from '@grpc/grpc-js';
import {
  createWorkerCsr,
  type EnvelopeKeyPair,
  envelopeKeyRotationMessage,
  generateEnvelopeKeyPair,
  openEnvelope,
  type Secret,
  scrubSecrets,
  toEnvelope,
} from '@sluice/crypto';
import {
  type ConnectionTest,
  type DatasourceSecrets,
  type JobLease,
  type ReplicationCleanup,
  type SealedEnvelope,
  AgentState as WireAgentState,
} from '@sluice/proto';
import type { Logger } from 'pino';
import { type AgentState, AgentStateMachine } from './agent-state.ts';
import { type ConnectionTester, type ConnectionTestResult, testConnection } from './connection-tester.ts';
import { type ControlClient, createControlClient, grpcCode } from './control-client.ts';
import {
  openDatasourceSecrets,
  openJobCredentials,
  type Receipt,
  receivedNow,
  serverNow,
} from './credentials.ts';
import { type JobRun, type JobRunner, type ProgressReport, StaleLeaseError } from './job-runner.ts';
import { dropReplication } from './replication-cleanup.ts';
import { type IdentityStore, identityFromRegistration, type WorkerIdentity } from './worker-identity.ts';

export interface WorkerAgentOptions {
  /** `host:port` of the control plane. */
  controlPlane: string;
  /**
   * The CA the control plane's server certificate chains to (PEM): the only root trusted for the control
   * plane, before registration and after it, across restarts and renewals.
   */
  caPem: string;
  /** Single-use bootstrap token; needed only when the identity store holds no identity. */
  bootstrapToken?: Secret<string>;
  /** Where the TLS identity survives restarts (never the envelope key). */
  identityStore: IdentityStore;
  /** Runs each leased job. */
  runner: JobRunner;
  logger: Logger;
  hostname?: string;
  version?: string;
  labels?: Record<string, string>;
  /** Jobs run at once (default 4). */
  maxJobs?: number;
  /** Long-poll wait per PullJob call in milliseconds (default 25,000). */
  pullWaitMs?: number;
  /** How long a drain may take before jobs are abandoned (default 60,000 ms). */
  drainTimeoutMs?: number;
  /** Runs connection tests the control plane hands out (default: a real connect). */
  connectionTester?: ConnectionTester;
}

interface RunningJob {
  lease: JobLease;
  run: JobRun;
  abort: AbortController;
  /** Local time after which the lease is presumed lost unless renewed. */
  expiresAt: number;
}

const retryable = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.INTERNAL,
]);
const wireState: Record<AgentState, WireAgentState> = {
  initialized: WireAgentState.INITIALIZED,
  running: WireAgentState.RUNNING,
  draining: WireAgentState.DRAINING,
  stopping: WireAgentState.STOPPING,
  stopped: WireAgentState.STOPPED,
  failed: WireAgentState.FAILED,
};

export class WorkerAgent {
  readonly #options: WorkerAgentOptions;
  readonly #log: Logger;
  readonly #state: AgentStateMachine;
  readonly #jobs = new Map<string, RunningJob>();
  readonly #stopping = new AbortController();
  /** Cancels an open long poll: on stop, or when a drain cannot wait for it to answer. */
  readonly #pulling = new AbortController();
  #keys: EnvelopeKeyPair | undefined;
  #identity: WorkerIdentity | undefined;
  #client: ControlClient | undefined;
  #heartbeatMs = 5_000;
  #leaseTtlMs = 30_000;
  #jobEnded: () => void = () => undefined;
  #loops: Promise<void>[] = [];
  #pollLoop: Promise<void> = Promise.resolve();

  constructor(options: WorkerAgentOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#state = new AgentStateMachine(options.logger);
  }

  get state(): AgentState {
    return this.#state.state;
  }

  get workerId(): string | undefined {
    return this.#identity?.workerId;
  }

  /** Job ids currently running, with their epochs. */
  get jobs(): ReadonlyMap<string, bigint> {
    return new Map([...this.#jobs].map(([id, job]) => [id, job.lease.epoch]));
  }

  /** Resolves with the final state (`stopped` or `failed`); `failed` carries `error`. */
  get done(): Promise<AgentState> {
    return this.#state.until('stopped', 'failed');
  }

  get error(): Error | undefined {
    return this.#state.error;
  }

  /** Registers (or loads the saved identity), connects, and starts heartbeating and pulling. */
  async start(): Promise<void> {
    try {
      // The envelope key exists only in this process's memory; a restart makes a new one.
      this.#keys = await generateEnvelopeKeyPair();
      const saved = await this.#options.identityStore.load();
      this.#identity = saved ?? (await this.#register());
      this.#log.info({ workerId: this.#identity.workerId }, 'worker identity ready');
      this.#client = this.#connect(this.#identity);
      if (saved) {
        // A restarted process. Renewing first supersedes the saved certificate, so a copy of identity.json
        // taken before now stops working; then the new envelope key is announced the only way the control
        // plane accepts: signed with the (new) TLS key, with proof of possession of the envelope key.
        await this.#renewCertificate();
        await this.#rotateEnvelopeKey();
      }
      await this.#heartbeat();
      this.#state.set('running', 'connected to the control plane');
      this.#pollLoop = this.#pullLoop();
      this.#loops = [this.#heartbeatLoop(), this.#pollLoop, this.#renewLoop()];
    } catch (error) {
      this.#state.fail(asError(error));
      this.#client?.close();
      throw this.#state.error;
    }
  }

  /** Finishes in-flight work, saves checkpoints, releases leases, then stops. */
  async drain(reason: string): Promise<void> {
    if (this.state !== 'running') return;
    this.#state.set('draining', reason);
    // Tell the control plane first: it grants a draining worker nothing more and ends its open long poll. Let
    // that poll answer rather than cancel it — a lease granted just before would otherwise be lost until it
    // expires; one that arrives is started and drained with the rest.
    await this.#heartbeat().catch((error: unknown) =>
      this.#log.warn(`could not announce the drain: ${describe(error)}`),
    );
    const pollEnded = await Promise.race([
      this.#pollLoop.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
    ]);
    if (!pollEnded) this.#pulling.abort();
    const runs = [...this.#jobs.values()];
    for (const job of runs) job.run.stop({ drain: true, reason });
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), this.#options.drainTimeoutMs ?? 60_000).unref(),
    );
    const settled = Promise.allSettled(runs.map((job) => job.run.done));
    if ((await Promise.race([settled, timeout])) === 'timeout') {
      this.#log.warn({ jobs: [...this.#jobs.keys()] }, 'drain timed out; abandoning remaining jobs');
    }
    await this.stop(reason);
  }

  /** Stops now: jobs are aborted without saving; their leases expire on the control plane. */
  async stop(reason: string): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed' || this.state === 'stopping') return;
    this.#state.set('stopping', reason);
    this.#stopping.abort();
    this.#pulling.abort();
    for (const job of this.#jobs.values()) this.#abortJob(job, reason);
    await Promise.allSettled([...this.#jobs.values()].map((job) => job.run.done));
    await Promise.allSettled(this.#loops);
    this.#client?.close();
    this.#state.set('stopped', reason);
  }

  async #register(): Promise<WorkerIdentity> {
    const token = this.#options.bootstrapToken;
    if (!token)
      throw new Error('no saved worker identity and no bootstrap token: set SLUICE_BOOTSTRAP_TOKEN_FILE');
    const { csrPem, keyPem } = await createWorkerCsr();
    const client = createControlClient({ address: this.#options.controlPlane, caPem: this.#options.caPem });
    try {
      const response = await this.#retrying('register', () =>
        client.register({
          bootstrapToken: token.use((value: string) => value),
          csrPem,
          envelopePublicKey: this.#keys!.publicKey,
          hostname: this.#options.hostname ?? osHostname(),
          version: this.#options.version ?? '0.1.0',
          labels: this.#options.labels ?? {},
        }),
      );
      token.wipe();
      this.#applyTimings(response.heartbeatIntervalMs, response.leaseTtlMs);
      const identity = identityFromRegistration(response, keyPem);
      await this.#options.identityStore.save(identity);
      return identity;
    } finally {
      client.close();
    }
  }

  #connect(identity: WorkerIdentity): ControlClient {
    // The configured CA, never the internal one from the registration answer (see worker-identity.ts).
    return createControlClient({
      address: this.#options.controlPlane,
      caPem: this.#options.caPem,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
    });
  }

  async #heartbeat(): Promise<void> {
    // Only the leases sent are judged by the answer: a job granted while the heartbeat was in flight is not.
    const sent = [...this.#jobs.values()];
    const response = await this.#client!.heartbeat({
      agentState: wireState[this.state],
      leases: sent.map(({ lease }) => ({ jobId: lease.jobId, epoch: lease.epoch })),
      envelopePublicKey: this.#keys!.publicKey,
    });
    this.#applyTimings(response.heartbeatIntervalMs, 0);
    const renewed = new Map(response.renewed.map((lease) => [lease.jobId, lease]));
    for (const job of sent) {
      const lease = renewed.get(job.lease.jobId);
      if (lease && lease.epoch === job.lease.epoch) job.expiresAt = Date.now() + this.#leaseTtlMs;
      else this.#abortJob(job, 'the control plane did not renew the lease');
    }
    for (const instruction of response.instructions) {
      if (instruction.kind.case === 'stopJob') {
        const { jobId, epoch, reason } = instruction.kind.value;
        const job = this.#jobs.get(jobId);
        if (job && job.lease.epoch <= epoch) this.#abortJob(job, reason || 'stopped by the control plane');
      } else if (instruction.kind.case === 'drain') {
        void this.drain(instruction.kind.value.reason || 'drain requested by the control plane');
      }
    }
  }

  async #heartbeatLoop(): Promise<void> {
    let failures = 0;
    while (this.#live()) {
      await this.#sleep(failures ? backoff(failures) : this.#heartbeatMs);
      if (!this.#live()) return;
      const identity = this.#identity;
      try {
        await this.#heartbeat();
        if (failures) this.#log.info('heartbeat restored');
        failures = 0;
      } catch (error) {
        failures += 1;
        if (this.#fatal(error, identity)) return;
        this.#log.warn({ code: grpcCode(error), failures }, `heartbeat failed: ${describe(error)}`);
      }
      // A job whose lease could not be renewed in time may already belong to another worker.
      for (const job of this.#jobs.values()) {
        if (Date.now() > job.expiresAt) this.#abortJob(job, 'lease expired before it could be renewed');
      }
    }
  }

  async #pullLoop(): Promise<void> {
    let failures = 0;
    const maxJobs = this.#options.maxJobs ?? 4;
    const waitMs = this.#options.pullWaitMs ?? 25_000;
    while (this.state === 'running') {
      if (this.#jobs.size >= maxJobs) {
        await new Promise<void>((resolve) => {
          this.#jobEnded = resolve;
          this.#stopping.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        continue;
      }
      const identity = this.#identity;
      try {
        const response = await this.#client!.pullJob(
          { waitMs, freeSlots: maxJobs - this.#jobs.size },
          { timeoutMs: waitMs + 10_000, signal: this.#pulling.signal },
        );
        const receipt = receivedNow();
        failures = 0;
        if (response.work.case === 'lease') this.#startJob(response.work.value);
        else if (response.work.case === 'connectionTest')
          void this.#runConnectionTest(response.work.value, receipt);
        else if (response.work.case === 'replicationCleanup')
          void this.#runCleanup(response.work.value, receipt);
      } catch (error) {
        if (!this.#live() || this.state !== 'running') return;
        failures += 1;
        if (this.#fatal(error, identity)) return;
        this.#log.warn({ code: grpcCode(error), failures }, `pull failed: ${describe(error)}`);
        await this.#sleep(backoff(failures));
      }
    }
  }

  async #renewLoop(): Promise<void> {
    while (this.#live()) {
      const identity = this.#identity!;
      const lifetime = identity.expiresAt.getTime() - identity.issuedAt.getTime();
      // Half-life with jitter, so a fleet registered together does not renew together.
      const due = identity.issuedAt.getTime() + lifetime * (0.45 + Math.random() * 0.1);
      await this.#sleep(Math.max(1_000, due - Date.now()));
      if (!this.#live()) return;
      try {
        await this.#renewCertificate();
      } catch (error) {
        if (this.#fatal(error, identity)) return;
        this.#log.warn({ code: grpcCode(error) }, `certificate renewal failed: ${describe(error)}`);
        await this.#sleep(backoff(3));
      }
    }
  }

  /**
   * Replaces the client certificate with one for a new TLS key. The control plane refuses the old one from
   * then on, so the new client is swapped in before anything else (saving the identity) is awaited.
   */
  async #renewCertificate(): Promise<void> {
    const identity = this.#identity!;
    const { csrPem, keyPem } = await createWorkerCsr();
    const response = await this.#client!.renewCertificate({ csrPem });
    const renewed: WorkerIdentity = {
      ...identity,
      certPem: response.certificatePem,
      keyPem,
      issuerCaPem: response.caCertificatePem || identity.issuerCaPem,
      issuedAt: new Date(),
      expiresAt: response.certificateExpiresAt
        ? new Date(Number(response.certificateExpiresAt.seconds) * 1000)
        : identity.expiresAt,
    };
    const previous = this.#client!;
    this.#identity = renewed;
    this.#client = this.#connect(renewed);
    // Calls already in flight finish on the old channel.
    setTimeout(() => previous.close(), 60_000).unref();
    await this.#options.identityStore.save(renewed);
    this.#log.info({ expiresAt: renewed.expiresAt.toISOString() }, 'client certificate renewed');
  }

  /** Makes this process's envelope key the worker's: signed by the TLS key, with proof of possession. */
  async #rotateEnvelopeKey(): Promise<void> {
    const identity = this.#identity!;
    const newKey = this.#keys!.publicKey;
    const begun = await this.#client!.beginEnvelopeKeyRotation({ newEnvelopePublicKey: newKey });
    if (!begun.challenge || !begun.issuedAt) throw new Error('the control plane sent no rotation challenge');
    const receipt = receivedNow();
    const challenge = await openEnvelope(this.#keys!.privateKey, toEnvelope(begun.challenge), {
      workerId: identity.workerId,
      jobId: identity.workerId,
      epoch: 0n,
      role: 'envelope_key_challenge',
      now: serverNow({ ...begun.challenge, issuedAt: begun.issuedAt }, receipt),
    });
    const issuedAtMs = Number(begun.issuedAt.seconds) * 1000 + Math.floor(begun.issuedAt.nanos / 1_000_000);
    const message = envelopeKeyRotationMessage({
      workerId: identity.workerId,
      serial: new X509Certificate(identity.certPem).serialNumber,
      issuedAtMs,
      newKey,
      challenge,
    });
    const signature = sign('sha256', message, createPrivateKey(identity.keyPem));
    await this.#client!.rotateEnvelopeKey({
      newEnvelopePublicKey: newKey,
      issuedAt: begun.issuedAt,
      challenge,
      signature,
    });
    this.#log.info('envelope key rotated');
  }

  #startJob(lease: JobLease): void {
    const { jobId, epoch } = lease;
    const logger = this.#log.child({ jobId, epoch: epoch.toString() });
    const existing = this.#jobs.get(jobId);
    if (existing) this.#abortJob(existing, 'granted again with a new epoch');
    const abort = new AbortController();
    const context = {
      lease,
      signal: abort.signal,
      logger,
      credentials: async () => {
        const datasourceIds = [lease.spec?.source?.id, lease.spec?.sink?.id].filter(
          (id): id is string => !!id,
        );
        const response = await this.#client!.fetchCredentials({ jobId, epoch, datasourceIds });
        const receipt = receivedNow();
        return openJobCredentials(
          this.#keys!,
          response,
          { workerId: this.#identity!.workerId, jobId, epoch },
          receipt,
        );
      },
      report: async (progress: ProgressReport) => {
        try {
          return await this.#client!.reportProgress({ ...progress, jobId, epoch });
        } catch (error) {
          if (grpcCode(error) === status.FAILED_PRECONDITION) {
            abort.abort();
            throw new StaleLeaseError(`job ${jobId} epoch ${epoch} is no longer current: ${describe(error)}`);
          }
          throw error;
        }
      },
    };
    const job: RunningJob = {
      lease,
      abort,
      run: this.#options.runner(context),
      expiresAt: Date.now() + this.#leaseTtlMs,
    };
    this.#jobs.set(jobId, job);
    logger.info('job started');
    job.run.done
      .then(
        () => logger.info('job ended'),
        (error: unknown) =>
          error instanceof StaleLeaseError || abort.signal.aborted
            ? logger.info(`job stopped: ${describe(error)}`)
            : logger.error(`job failed: ${describe(error)}`),
      )
      .finally(() => {
        if (this.#jobs.get(jobId) === job) this.#jobs.delete(jobId);
        this.#jobEnded();
      });
  }

  async #runConnectionTest(test: ConnectionTest, receipt: Receipt): Promise<void> {
    const { testId } = test;
    const role = test.datasource?.config.case === 'starrocks' ? 'sink' : 'source';
    let result: ConnectionTestResult;
    try {
      result = await this.#withSealedSecrets(test.credentials, testId, role, receipt, (secrets) =>
        (this.#options.connectionTester ?? testConnection)(test, secrets),
      );
    } catch (error) {
      result = { ok: false, message: describe(error), serverVersion: '', latencyMs: 0 };
    }
    try {
      await this.#client!.completeConnectionTest({ testId, ...result });
      this.#log.info({ testId, ok: result.ok }, 'connection test done');
    } catch (error) {
      this.#log.warn({ testId }, `could not report a connection test: ${describe(error)}`);
    }
  }

  /** Drops a deleted job's slot and publication on its source; a failure is reported and retried later. */
  async #runCleanup(cleanup: ReplicationCleanup, receipt: Receipt): Promise<void> {
    const { jobId } = cleanup;
    let outcome = { ok: true, message: '' };
    try {
      await this.#withSealedSecrets(cleanup.credentials, jobId, 'source', receipt, (secrets) =>
        dropReplication(cleanup, secrets),
      );
      this.#log.info({ jobId }, 'replication slot and publication dropped');
    } catch (error) {
      outcome = { ok: false, message: describe(error) };
      this.#log.warn({ jobId }, `replication cleanup failed: ${outcome.message}`);
    }
    await this.#client!.completeReplicationCleanup({ jobId, ...outcome }).catch((error: unknown) =>
      this.#log.warn({ jobId }, `could not report a replication cleanup: ${describe(error)}`),
    );
  }

  /** Opens one envelope sealed for (id, epoch 0, role), hands its secrets to `use`, and wipes them after. */
  async #withSealedSecrets<T>(
    sealed: SealedEnvelope | undefined,
    id: string,
    role: 'source' | 'sink',
    receipt: Receipt,
    use: (secrets: DatasourceSecrets) => Promise<T>,
  ): Promise<T> {
    if (!sealed) throw new Error(`the work item ${id} carries no credentials`);
    const holder = { workerId: this.#identity!.workerId, jobId: id, epoch: 0n };
    const secrets = await openDatasourceSecrets(this.#keys!, sealed, holder, role, receipt);
    try {
      return await secrets.use(use);
    } finally {
      secrets.wipe();
    }
  }

  #abortJob(job: RunningJob, reason: string): void {
    if (job.abort.signal.aborted) return;
    this.#log.warn({ jobId: job.lease.jobId, epoch: job.lease.epoch.toString() }, `stopping job: ${reason}`);
    job.abort.abort(new Error(reason));
    job.run.stop({ drain: false, reason });
  }

  /**
   * Errors no retry can fix end the agent: a revoked or unknown worker. A refusal of a call made with a
   * certificate this agent has renewed since (`usedIdentity`) is only the race with that renewal: retry.
   */
  #fatal(error: unknown, usedIdentity?: WorkerIdentity): boolean {
    const code = grpcCode(error);
    if (code !== status.UNAUTHENTICATED && code !== status.PERMISSION_DENIED) return false;
    if (usedIdentity && usedIdentity !== this.#identity) return false;
    this.#log.error({ code }, `the control plane refused this worker: ${describe(error)}`);
    for (const job of this.#jobs.values()) this.#abortJob(job, 'worker refused by the control plane');
    this.#stopping.abort();
    this.#client?.close();
    this.#state.fail(new Error(`the control plane refused this worker: ${describe(error)}`));
    return true;
  }

  async #retrying<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const code = grpcCode(error);
        if (code === undefined || !retryable.has(code) || attempt >= 8 || !this.#live()) throw error;
        this.#log.warn({ code, attempt }, `${what} failed, retrying: ${describe(error)}`);
        await this.#sleep(backoff(attempt));
      }
    }
  }

  #applyTimings(heartbeatMs: number, leaseTtlMs: number): void {
    if (heartbeatMs > 0) this.#heartbeatMs = heartbeatMs;
    if (leaseTtlMs > 0) this.#leaseTtlMs = leaseTtlMs;
  }

  #live(): boolean {
    return (
      !this.#stopping.signal.aborted &&
      (this.state === 'initialized' || this.state === 'running' || this.state === 'draining')
    );
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#stopping.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }
}

/** Exponential backoff with full jitter: up to 250 ms × 2^attempt, capped at 30 s. */
export function backoff(attempt: number): number {
  return Math.random() * Math.min(30_000, 250 * 2 ** Math.min(attempt, 10));
}

function asError(error: unknown): Error {
  return error instanceof Error
    ? new Error(scrubSecrets(error.message))
    : new Error(scrubSecrets(String(error)));
}

/** A log-safe description: gRPC details or message, scrubbed of anything secret-looking. */
function describe(error: unknown): string {
  const details = (error as { details?: unknown } | null)?.details;
  const text =
    typeof details === 'string' && details ? details : error instanceof Error ? error.message : String(error);
  return scrubSecrets(text);
}
