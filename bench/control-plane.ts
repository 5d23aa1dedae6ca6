// Scenario 5, control plane: the real control plane as a child process (`node packages/control-plane/main.ts`,
// catalog on the bench's PostgreSQL) and N simulated workers in this process. Each worker registers with
// its own bootstrap token and CSR, then holds its own mTLS connection (grpc-js, as the worker agent does —
// a worker's identity is its client certificate, so connections cannot be shared between workers), sends
// a Heartbeat every 5 s and keeps a PullJob long poll open, like the agent. A few workers hold the few jobs.
// Phases, each measured on its own:
//   1. envelope issuance alone: the lease holders call FetchCredentials in a closed loop (a fixed number
//      of calls in flight) — the highest rate the control plane sustains;
//   2. every worker heartbeating, no long polls;
//   3. heartbeats plus a long poll open for every idle worker (the agent's steady state);
//   4. 3 plus the issuance of 1.
// The control plane's CPU and RSS come from /proc/<pid>; its catalog's PostgreSQL (the bench's server)
// is measured apart, from its processes' /proc entries.
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
  postgresCpuSeconds,
  processPeakRssMiB,
  processRssMiB,
  round,
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
/** FetchCredentials calls in flight while issuing. */
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
    const durations = context.quick
      ? { issue: 1.5, heartbeats: 2, steady: 2 }
      : { issue: 15, heartbeats: 15, steady: 30 };
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

      // Leases for the JOBS jobs, held by the first workers (their heartbeats keep them alive from now on).
      const holders = workers.slice(0, JOBS);
      const heartbeat = new Map<string, Recorder>();
      let phase = 'leasing';
      const recorderFor = () => {
        const recorder = heartbeat.get(phase) ?? new Recorder();
        heartbeat.set(phase, recorder);
        return recorder;
      };
      for (const holder of holders) {
        for (let attempt = 0; attempt < 5 && !holder.lease; attempt++) {
          const answer = await holder.client.pullJob({ waitMs: 2_000, freeSlots: 1 });
          if (answer.work.case === 'lease')
            holder.lease = { jobId: answer.work.value.jobId, epoch: answer.work.value.epoch };
        }
        if (!holder.lease) throw new Error('a job was not leased');
        loops.push(heartbeatLoop(holder, recorderFor, stop.signal));
      }
      const others = workers.slice(JOBS);
      const pulls = { answered: 0, errors: 0 };
      const catalogPid = await catalogBackendPid(db.client);

      const measurePhase = async (name: string, seconds: number, during?: () => Promise<void>) => {
        phase = name;
        context.log(`control plane: ${name} for ${seconds} s`);
        const cp = startProcessSpan(pid);
        const client = startSelfSpan();
        const catalogStart = postgresCpuSeconds(catalogPid);
        await Promise.all([sleep(seconds * 1000), during?.()]);
        return {
          cp: cp.stop(),
          client: client.stop(),
          catalogCpuSeconds: postgresCpuSeconds(catalogPid) - catalogStart,
          rssMiB: processRssMiB(pid),
        };
      };
      const issuance = (seconds: number, recorder: Recorder, count: { envelopes: number }) => async () => {
        const deadline = performance.now() + seconds * 1000;
        await Promise.all(
          Array.from({ length: ISSUE_CONCURRENCY }, async (_, slot) => {
            const holder = holders[slot % holders.length]!;
            while (performance.now() < deadline) {
              const lease = holder.lease!;
              const sealed = await recorder.time(() =>
                holder.client.fetchCredentials({ jobId: lease.jobId, epoch: lease.epoch }),
              );
              if (sealed)
                count.envelopes += [sealed.source, sealed.sink, sealed.piiKey].filter(Boolean).length;
            }
          }),
        );
      };

      // 1. Envelope issuance alone: the highest rate the control plane sustains with nothing else to do.
      const issueAlone = new Recorder();
      const aloneCount = { envelopes: 0 };
      const alone = await measurePhase(
        'issuance alone',
        durations.issue,
        issuance(durations.issue, issueAlone, aloneCount),
      );
      // 2. Every worker heartbeating, no long polls.
      for (const worker of others) loops.push(heartbeatLoop(worker, recorderFor, stop.signal));
      const beats = await measurePhase('heartbeats only', durations.heartbeats);
      // 3. Heartbeats and every idle worker holding a PullJob long poll open, as the agent does.
      for (const worker of others) loops.push(pullLoop(worker, pulls, stop.signal));
      const steady = await measurePhase('heartbeats + long polls', durations.steady);
      // 4. All of it together.
      const issueLoaded = new Recorder();
      const loadedCount = { envelopes: 0 };
      const loaded = await measurePhase(
        'heartbeats + long polls + issuance',
        durations.issue,
        issuance(durations.issue, issueLoaded, loadedCount),
      );
      const peakRss = processPeakRssMiB(pid);

      const label = `${workers.length.toLocaleString('en-US')} workers`;
      const latencyRow = (
        subject: string,
        recorder: Recorder | undefined,
        extra: Record<string, number> = {},
      ) => {
        const p = percentiles(recorder?.samples ?? []);
        return {
          case: label,
          subject,
          metric: 'ms p50',
          value: round(p.p50),
          details: {
            p99Ms: round(p.p99),
            maxMs: round(p.max),
            calls: p.count,
            errors: recorder?.errors ?? 0,
            ...extra,
          },
        } satisfies ResultRow;
      };
      const cpuRow = (subject: string, measured: Awaited<ReturnType<typeof measurePhase>>): ResultRow => ({
        case: label,
        subject,
        metric: 'CPU %',
        value: round((measured.cp.cpuSeconds / measured.cp.seconds) * 100),
        details: {
          rssMiB: round(measured.rssMiB),
          catalogPgCpuPercent: round((measured.catalogCpuSeconds / measured.cp.seconds) * 100),
          benchClientCpuPercent: round((measured.client.cpuSeconds / measured.client.seconds) * 100),
        },
      });
      const issueRow = (
        subject: string,
        recorder: Recorder,
        count: { envelopes: number },
        seconds: number,
      ) => {
        const p = percentiles(recorder.samples);
        return {
          case: label,
          subject,
          metric: 'envelopes/s',
          value: round(count.envelopes / seconds),
          details: {
            p50Ms: round(p.p50),
            p99Ms: round(p.p99),
            calls: p.count,
            errors: recorder.errors,
            inFlight: ISSUE_CONCURRENCY,
          },
        } satisfies ResultRow;
      };
      return {
        status: 'ok',
        parameters: {
          workers: workers.length,
          connections: workers.length,
          heartbeatMs: HEARTBEAT_MS,
          pullWaitMs: PULL_WAIT_MS,
          ...Object.fromEntries(Object.entries(durations).map(([key, value]) => [`${key}Seconds`, value])),
          jobs: JOBS,
        },
        rows: [
          latencyRow('Register (CSR → certificate)', register, {
            perSecond: round(workers.length / registered.seconds),
            cpCpuMsEach: round((cpRegistered.cpuSeconds * 1000) / workers.length),
          }),
          issueRow('1. FetchCredentials alone', issueAlone, aloneCount, alone.cp.seconds),
          cpuRow('1. control plane process', alone),
          latencyRow('2. Heartbeat (heartbeats only)', heartbeat.get('heartbeats only')),
          cpuRow('2. control plane process', beats),
          latencyRow('3. Heartbeat (with long polls)', heartbeat.get('heartbeats + long polls'), {
            pullsAnswered: pulls.answered,
            pullErrors: pulls.errors,
          }),
          cpuRow('3. control plane process', steady),
          issueRow('4. FetchCredentials under load', issueLoaded, loadedCount, loaded.cp.seconds),
          latencyRow('4. Heartbeat (under load)', heartbeat.get('heartbeats + long polls + issuance')),
          {
            ...cpuRow('4. control plane process', loaded),
            details: { ...cpuRow('', loaded).details, peakRssMiB: round(peakRss) },
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

async function catalogBackendPid(client: { query(sql: string): Promise<{ rows: { pid: number }[] }> }) {
  const { rows } = await client.query('select pg_backend_pid() as pid');
  return rows[0]!.pid;
}
