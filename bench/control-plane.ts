// Scenario 5, control plane: the real control plane as a child process (`node packages/control-plane/main.ts`,
// catalog on the bench's PostgreSQL) and N simulated workers in this process. Each worker registers with
// its own bootstrap token and CSR, then holds its own mTLS connection (grpc-js, as the worker agent does —
// a worker's identity is its client certificate, so connections cannot be shared between workers), sends
// a Heartbeat every 5 s and keeps a PullJob long poll open, like the agent.
//   Phase 1 (steady): heartbeats and long polls only.
//   Phase 2 (issuance): the same, plus the workers that hold the few jobs calling FetchCredentials in a
//   closed loop (a fixed number of calls in flight), the highest rate the control plane sustains.
// The control plane's CPU and RSS come from /proc/<pid>; its catalog's PostgreSQL is not counted.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { createWorkerCsr, generateEncryptionKey, generateEnvelopeKeyPair } from '@sluice/crypto';
import {
  AgentState,
  AuthService,
  BootstrapTokenService,
  DatasourceService,
  JobService,
  SslMode,
} from '@sluice/proto';
import { startServiceProcess } from '@sluice/testkit';
import { type ControlClient, createControlClient } from '@sluice/worker';
import {
  percentiles,
  processPeakRssMiB,
  processRssMiB,
  round,
  type Span,
  sleep,
  startProcessSpan,
  startSelfSpan,
} from './measure.ts';
import type { ResultRow } from './report.ts';
import type { Scenario, ScenarioOutcome } from './scenario.ts';
import { createDatabase } from './workload.ts';

const ENTRY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../packages/control-plane/main.ts');
const HEARTBEAT_MS = 5_000;
/** The worker agent's own long-poll wait. */
const PULL_WAIT_MS = 25_000;
const JOBS = 4;
/** FetchCredentials calls in flight during phase 2. */
const ISSUE_CONCURRENCY = 8;
const ADMIN = { username: 'admin', password: `admin-${randomBytes(8).toString('hex')}` };

interface SimulatedWorker {
  id: string;
  client: ControlClient;
  lease?: { jobId: string; epoch: bigint };
}

/** Latency samples (ms) and errors per phase. */
class Recorder {
  samples: number[] = [];
  errors = 0;
  async time<T>(call: () => Promise<T>): Promise<T | undefined> {
    const started = performance.now();
    try {
      const result = await call();
      this.samples.push(performance.now() - started);
      return result;
    } catch {
      this.errors++;
      return undefined;
    }
  }
}

export const controlPlane: Scenario = {
  name: 'control-plane',
  title: '5. Control plane (workers heartbeating every 5 s with PullJob long polls; envelope issuance)',
  async run(context): Promise<ScenarioOutcome> {
    const workerCount = context.quick ? 50 : 1_000;
    const steadySeconds = context.quick ? 3 : 30;
    const issueSeconds = context.quick ? 3 : 20;
    const db = await createDatabase(context.postgres, 'catalog');
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-cp-'));
    const files = {
      key: path.join(dir, 'encryption.key'),
      jwt: path.join(dir, 'jwt.secret'),
      admin: path.join(dir, 'admin.password'),
    };
    await writeFile(files.key, generateEncryptionKey(), { mode: 0o600 });
    await writeFile(files.jwt, randomBytes(32).toString('hex'), { mode: 0o600 });
    await writeFile(files.admin, ADMIN.password, { mode: 0o600 });
    const port = await freePort();
    const server = context.postgres;
    const cp = startServiceProcess({
      entry: ENTRY,
      name: 'control plane',
      env: {
        DATABASE_URL: `postgres://${server.user}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${db.name}`,
        CONFIG_ENCRYPTION_KEY_FILE: files.key,
        JWT_SECRET_FILE: files.jwt,
        SLUICE_ADMIN_USERNAME: ADMIN.username,
        SLUICE_ADMIN_PASSWORD_FILE: files.admin,
        SLUICE_LISTEN: `127.0.0.1:${port}`,
        SLUICE_DATA_DIR: path.join(dir, 'data'),
        SLUICE_HEARTBEAT_INTERVAL: `${HEARTBEAT_MS / 1000}s`,
        SLUICE_LOG_LEVEL: 'info',
      },
    });
    const workers: SimulatedWorker[] = [];
    const stop = new AbortController();
    const loops: Promise<void>[] = [];
    try {
      await cp.waitForLine(/control plane listening/, 60_000);
      const pid = cp.pid!;
      const caPem = await readFile(path.join(dir, 'data', 'tls', 'ca.crt'), 'utf8');
      const address = `127.0.0.1:${port}`;
      const admin = await adminClient(`https://${address}`, caPem);
      await createJobs(admin, server.port);

      context.log(`control plane: registering ${workerCount} workers`);
      const tokens = await mapLimit(workerCount, 8, async () => {
        const created = await admin(BootstrapTokenService).createBootstrapToken({ ttlSeconds: 3600 });
        return created.secret;
      });
      const register = new Recorder();
      const anonymous = createControlClient({ address, caPem });
      const registration = startSelfSpan();
      const cpRegistration = startProcessSpan(pid);
      await mapLimit(workerCount, 8, async (index) => {
        const keys = await generateEnvelopeKeyPair();
        const { csrPem, keyPem } = await createWorkerCsr();
        const registered = await register.time(() =>
          anonymous.register({
            bootstrapToken: tokens[index]!,
            csrPem,
            envelopePublicKey: keys.publicKey,
            hostname: `bench-${index}`,
            version: 'bench',
          }),
        );
        if (!registered) return;
        const client = createControlClient({ address, caPem, certPem: registered.certificatePem, keyPem });
        // The first heartbeat opens the worker's own TLS connection.
        await client.heartbeat({ agentState: AgentState.RUNNING });
        workers.push({ id: registered.workerId, client });
      });
      anonymous.close();
      const registered = registration.stop();
      const cpRegistered = cpRegistration.stop();
      if (workers.length === 0) throw new Error('no worker could register');

      // Phase 1: heartbeats and long polls.
      const heartbeats = [new Recorder(), new Recorder()];
      let phase = 0;
      const pulls = { answered: 0, errors: 0 };
      for (const worker of workers) {
        loops.push(heartbeatLoop(worker, () => heartbeats[phase]!, stop.signal));
        loops.push(pullLoop(worker, pulls, stop.signal));
      }
      context.log(`control plane: steady load for ${steadySeconds} s`);
      const cpSteady = startProcessSpan(pid);
      const clientSteady = startSelfSpan();
      await sleep(steadySeconds * 1000);
      const steady = cpSteady.stop();
      const clientSteadySpan = clientSteady.stop();
      const steadyRss = processRssMiB(pid);

      // Phase 2: envelope issuance by the lease holders, on top of the steady load.
      phase = 1;
      const holders = workers.filter((worker) => worker.lease);
      const issue = new Recorder();
      let envelopes = 0;
      context.log(`control plane: issuing envelopes for ${issueSeconds} s (${holders.length} lease holders)`);
      const cpIssue = startProcessSpan(pid);
      const issueDeadline = performance.now() + issueSeconds * 1000;
      await Promise.all(
        Array.from({ length: holders.length ? ISSUE_CONCURRENCY : 0 }, async (_, slot) => {
          const holder = holders[slot % holders.length]!;
          while (performance.now() < issueDeadline) {
            const lease = holder.lease!;
            const sealed = await issue.time(() =>
              holder.client.fetchCredentials({ jobId: lease.jobId, epoch: lease.epoch }),
            );
            if (sealed) envelopes += [sealed.source, sealed.sink, sealed.piiKey].filter(Boolean).length;
          }
        }),
      );
      const issued = cpIssue.stop();
      const peakRss = processPeakRssMiB(pid);

      const label = `${workers.length.toLocaleString('en-US')} workers, ${workers.length} mTLS connections`;
      const latencyRow = (subject: string, recorder: Recorder, extra: Record<string, number> = {}) => {
        const p = percentiles(recorder.samples);
        return {
          case: label,
          subject,
          metric: 'ms p50',
          value: round(p.p50),
          details: {
            p99Ms: round(p.p99),
            maxMs: round(p.max),
            calls: p.count,
            errors: recorder.errors,
            ...extra,
          },
        } satisfies ResultRow;
      };
      const cpuRow = (subject: string, span: Span, rssMiB: number): ResultRow => ({
        case: label,
        subject,
        metric: 'CPU %',
        value: round((span.cpuSeconds / span.seconds) * 100),
        details: { rssMiB: round(rssMiB), peakRssMiB: round(peakRss) },
      });
      return {
        status: 'ok',
        parameters: {
          workers: workers.length,
          heartbeatMs: HEARTBEAT_MS,
          pullWaitMs: PULL_WAIT_MS,
          steadySeconds,
          issueSeconds,
          jobs: JOBS,
          issueConcurrency: ISSUE_CONCURRENCY,
        },
        rows: [
          latencyRow('Register (CSR → certificate)', register, {
            perSecond: round(workers.length / registered.seconds),
            cpCpuMsEach: round((cpRegistered.cpuSeconds * 1000) / workers.length),
          }),
          latencyRow('Heartbeat, steady', heartbeats[0]!, {
            perSecond: round(heartbeats[0]!.samples.length / steady.seconds),
          }),
          cpuRow('control plane process, steady', steady, steadyRss),
          {
            case: label,
            subject: 'bench client process (all workers), steady',
            metric: 'CPU %',
            value: round((clientSteadySpan.cpuSeconds / clientSteadySpan.seconds) * 100),
          },
          {
            ...latencyRow('FetchCredentials (sealed envelopes)', issue),
            metric: 'envelopes/s',
            value: round(envelopes / issued.seconds),
            details: {
              p50Ms: round(percentiles(issue.samples).p50),
              ...latencyRow('', issue).details,
              concurrency: ISSUE_CONCURRENCY,
            },
          },
          latencyRow('Heartbeat, during issuance', heartbeats[1]!),
          cpuRow('control plane process, issuing', issued, processRssMiB(pid)),
          {
            case: label,
            subject: 'PullJob long polls answered',
            metric: 'polls',
            value: pulls.answered,
            details: { errors: pulls.errors, leasesHeld: holders.length },
          },
        ],
      };
    } finally {
      stop.abort();
      for (const worker of workers) worker.client.close();
      await Promise.allSettled(loops);
      await cp.stop('SIGTERM', 10_000);
      await db.drop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  },
};

async function heartbeatLoop(
  worker: SimulatedWorker,
  recorder: () => Recorder,
  signal: AbortSignal,
): Promise<void> {
  // Spread over the interval, as workers started at different times are.
  await sleep(Math.random() * HEARTBEAT_MS);
  while (!signal.aborted) {
    const started = performance.now();
    const leases = worker.lease ? [worker.lease] : [];
    await recorder().time(() => worker.client.heartbeat({ agentState: AgentState.RUNNING, leases }));
    await sleep(Math.max(0, HEARTBEAT_MS - (performance.now() - started)));
  }
}

async function pullLoop(
  worker: SimulatedWorker,
  pulls: { answered: number; errors: number },
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted && !worker.lease) {
    try {
      const answer = await worker.client.pullJob(
        { waitMs: PULL_WAIT_MS, freeSlots: 1 },
        { timeoutMs: PULL_WAIT_MS + 10_000, signal },
      );
      pulls.answered++;
      if (answer.work.case === 'lease')
        worker.lease = { jobId: answer.work.value.jobId, epoch: answer.work.value.epoch };
    } catch {
      if (!signal.aborted) {
        pulls.errors++;
        await sleep(1_000);
      }
    }
  }
}

type AdminClient = <S extends Parameters<typeof createClient>[0]>(
  service: S,
) => ReturnType<typeof createClient<S>>;

async function adminClient(baseUrl: string, caPem: string): Promise<AdminClient> {
  const nodeOptions = { ca: caPem, minVersion: 'TLSv1.3' as const };
  const login = await createClient(
    AuthService,
    createConnectTransport({ baseUrl, httpVersion: '2', nodeOptions }),
  ).login(ADMIN);
  const bearer: Interceptor = (next) => (request) => {
    request.header.set('Authorization', `Bearer ${login.accessToken}`);
    return next(request);
  };
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: '2',
    nodeOptions,
    interceptors: [bearer],
  });
  return (service) => createClient(service, transport);
}

/** A source and a sink (never contacted: the control plane only seals their secrets), and JOBS jobs. */
async function createJobs(admin: AdminClient, port: number): Promise<void> {
  const datasources = admin(DatasourceService);
  const source = await datasources.createDatasource({
    name: 'bench-src',
    spec: {
      case: 'postgres',
      value: {
        host: '127.0.0.1',
        port,
        database: 'bench',
        username: 'replicator',
        sslMode: SslMode.DISABLE,
        password: randomBytes(12).toString('hex'),
      },
    },
  });
  const sink = await datasources.createDatasource({
    name: 'bench-sink',
    spec: {
      case: 'starrocks',
      value: {
        feHost: '127.0.0.1',
        httpPort: 8030,
        mysqlPort: 9030,
        username: 'root',
        database: 'bench',
        password: randomBytes(12).toString('hex'),
      },
    },
  });
  for (let index = 0; index < JOBS; index++) {
    await admin(JobService).createJob({
      name: `bench-${index}`,
      sourceId: source.datasource!.id,
      sinkId: sink.datasource!.id,
      tables: [{ schema: 'public', name: `t${index}` }],
      start: true,
    });
  }
}

/** Runs `task(0..count-1)` with at most `limit` at once; results in order. */
async function mapLimit<T>(count: number, limit: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}
