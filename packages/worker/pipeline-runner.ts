// Runs a leased job: builds the source and sink from the lease's specification and the sealed
// credentials (opened at the moment of connecting, then wiped), runs the replication pipeline, saves its
// checkpoints through ReportProgress, reports phase, counters and lag about once a second, and turns a
// failure that needs an operator into a failed job with a one-line solution. Other jobs are not affected.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import {
  type Checkpoint,
  type ClassifiedError,
  type ColumnChoice,
  type ConnectionOptions,
  createStarRocksSink,
  Pipeline,
  PipelineError,
  PostgresSource,
  RetryableError,
  type SnapshotRange,
  type TablePhase,
  type TableStats,
} from '@sluice/cdc';
import { scrubSecrets } from '@sluice/crypto';
import {
  type ColumnOption,
  ColumnTarget,
  type Datasource,
  ErrorKind,
  type JobCheckpoint,
  JobCheckpointSchema,
  JobErrorSchema,
  JobPhase,
  JobState,
  type TableProgressSchema,
  TableState,
  UnrepresentablePolicy,
  type SnapshotRange as WireSnapshotRange,
} from '@sluice/proto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { JobCredentials } from './credentials.ts';
import { sinkDatasource, sourceConnection } from './datasource-options.ts';
import { type JobContext, type JobRunner, type ProgressReport, StaleLeaseError } from './job-runner.ts';

export interface PipelineRunnerOptions {
  /** The worker's Prometheus registry: per-job metrics are registered there. */
  registry?: Registry;
  /** How often progress is reported (default 1,000 ms). */
  reportEveryMs?: number;
}

const tableStates: Record<TablePhase, TableState> = {
  init: TableState.INIT,
  copying: TableState.COPYING,
  copied: TableState.COPIED,
  streaming: TableState.STREAMING,
};

const errorKinds: Record<ClassifiedError['kind'], ErrorKind> = {
  transient: ErrorKind.TRANSIENT,
  operator: ErrorKind.OPERATOR,
  fatal: ErrorKind.FATAL,
};

export function createPipelineRunner(options: PipelineRunnerOptions = {}): JobRunner {
  const metrics = options.registry ? jobMetrics(options.registry) : undefined;
  const reportEveryMs = options.reportEveryMs ?? 1_000;
  return (context) => {
    let pipeline: Pipeline | undefined;
    let stopRequest: { drain: boolean } | undefined;
    const stop = (request: { drain: boolean }) => {
      stopRequest = request;
      pipeline?.stop(request);
    };
    context.signal.addEventListener('abort', () => stop({ drain: false }), { once: true });
    const done = runJob(context, reportEveryMs, metrics, (created) => {
      pipeline = created;
      if (stopRequest) created.stop(stopRequest);
    });
    return {
      stop: (request) => stop({ drain: request.drain }),
      done,
    };
  };
}

async function runJob(
  context: JobContext,
  reportEveryMs: number,
  metrics: JobMetrics | undefined,
  started: (pipeline: Pipeline) => void,
): Promise<void> {
  const spec = context.lease.spec;
  const job = spec?.job;
  if (!spec || !job || !spec.source || !spec.sink) throw new Error('the lease carries no job specification');
  const sourceDs = spec.source;
  const sinkDs = spec.sink;
  const jobOptions = job.options;
  const log = context.logger;
  const labels = { job: job.id };

  let hmacKey: Uint8Array | undefined;
  if (jobOptions?.keyedHashing) {
    const credentials = await context.credentials();
    try {
      hmacKey = credentials.piiKey?.use((secrets) => Uint8Array.from(secrets.hmacKey));
    } finally {
      wipeAll(credentials);
    }
    if (!hmacKey?.length) throw new Error('the job hashes with a key but the control plane sent none');
  }

  // Opened per attempt when the source connects; the sink's half is kept for the sink built next.
  let sinkSecrets: { password: string; caCert: string } | undefined;

  const phaseOf = (p: Pipeline) =>
    p.phase === 'snapshot'
      ? JobPhase.SNAPSHOT
      : p.phase === 'streaming'
        ? JobPhase.STREAMING
        : JobPhase.UNSPECIFIED;

  // Every report carries the latest measured rates: the control plane stores each report whole, so a
  // checkpoint save without them would show 0 rows/s between periodic reports.
  let latestRates = { rows: 0, bytes: 0 };
  const report = (
    p: Pipeline,
    extra: Partial<ProgressReport> = {},
    rates: { rows: number; bytes: number } = latestRates,
  ) => {
    latestRates = rates;
    const lag = p.lag();
    return context.report({
      phase: phaseOf(p),
      checkpoint: toWireCheckpoint(p.checkpoint),
      tables: p.tables.map(toWireTable),
      lagBytes: BigInt(lag.bytes),
      lagSeconds: lag.seconds,
      rowsPerSecond: rates.rows,
      bytesPerSecond: rates.bytes,
      ...extra,
    });
  };

  const pipeline: Pipeline = new Pipeline({
    job: job.id,
    epoch: context.lease.epoch,
    checkpoint: fromWireCheckpoint(spec.checkpoint),
    initialSnapshot: jobOptions?.initialSnapshot ?? true,
    transforms: {
      excludeColumns: (jobOptions?.excludeColumns ?? []).flatMap((ref) =>
        ref.table ? [{ table: { schema: ref.table.schema, name: ref.table.name }, column: ref.column }] : [],
      ),
      hashColumns: (jobOptions?.hashColumns ?? []).flatMap((ref) =>
        ref.table ? [{ table: { schema: ref.table.schema, name: ref.table.name }, column: ref.column }] : [],
      ),
      ...(hmacKey && { hmacKey }),
    },
    batch: {
      ...(jobOptions?.batchMaxRows && { maxRows: jobOptions.batchMaxRows }),
      ...(jobOptions?.batchMaxBytes && { maxBytes: Number(jobOptions.batchMaxBytes) }),
      ...(jobOptions?.flushIntervalMs && { flushIntervalMs: jobOptions.flushIntervalMs }),
    },
    ...(jobOptions?.maxInFlightBytes && { maxInFlightBytes: Number(jobOptions.maxInFlightBytes) }),
    ...(jobOptions?.snapshotParallelism && { snapshotParallelism: jobOptions.snapshotParallelism }),
    ...(jobOptions?.snapshotRangePages && { snapshotRangePages: jobOptions.snapshotRangePages }),
    createSource: async () => {
      const credentials = await context.credentials();
      let connection: ConnectionOptions;
      try {
        connection = credentials.source.use((secrets) => sourceConnection(sourceDs, secrets));
        sinkSecrets = credentials.sink.use((secrets) => ({
          password: secrets.password,
          caCert: secrets.caCert,
        }));
      } finally {
        wipeAll(credentials);
      }
      return new PostgresSource({
        connection,
        job: job.id,
        tables: job.tables.map((table) => ({ schema: table.schema, name: table.name })),
      });
    },
    createSink: () => {
      const secrets = sinkSecrets;
      sinkSecrets = undefined;
      if (!secrets) throw new RetryableError('sink credentials were not opened');
      return createStarRocksSink({
        datasource: sinkDatasource(sinkDs, secrets),
        columnChoices: toColumnChoices(jobOptions?.columnOptions ?? []),
      });
    },
    checkpoints: {
      save: async (checkpoint) => {
        for (let attempt = 1; ; attempt++) {
          try {
            await report(pipeline, { checkpoint: toWireCheckpoint(checkpoint) });
            return;
          } catch (error) {
            if (error instanceof StaleLeaseError || context.signal.aborted) throw error;
            if (attempt >= 5) throw new RetryableError(`saving the checkpoint failed: ${describe(error)}`);
            await sleep(200 * attempt);
          }
        }
      },
    },
    onRetry: (error, attempt, delayMs) => {
      metrics?.retries.inc(labels);
      log.warn(
        { attempt, delayMs: Math.round(delayMs), kind: error.kind },
        `retrying after: ${nameDatasource(error, sourceDs, sinkDs)}`,
      );
    },
    onLoad: (_table, rows, bytes) => {
      metrics?.rows.inc(labels, rows);
      metrics?.bytes.inc(labels, bytes);
      metrics?.batchRows.observe(labels, rows);
    },
  });
  started(pipeline);

  const adjusted = adjustedValues(job.id, metrics);
  let last = { at: Date.now(), ...pipeline.totals };
  let reportedRetries = 0;
  let reporting: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (reporting || pipeline.phase === 'stopped') return;
    const now = Date.now();
    const totals = pipeline.totals;
    const seconds = Math.max(0.001, (now - last.at) / 1000);
    const rates = { rows: (totals.rows - last.rows) / seconds, bytes: (totals.bytes - last.bytes) / seconds };
    last = { at: now, ...totals };
    const lag = pipeline.lag(now);
    adjusted.count(pipeline.tables);
    metrics?.rowsPerSecond.set(labels, rates.rows);
    metrics?.bytesPerSecond.set(labels, rates.bytes);
    metrics?.lagBytes.set(labels, lag.bytes);
    metrics?.lagSeconds.set(labels, lag.seconds);
    const retried = totals.retries > reportedRetries ? pipeline.lastError : undefined;
    reportedRetries = totals.retries;
    reporting = report(pipeline, retried ? { error: toWireError(retried, sourceDs, sinkDs) } : {}, rates)
      .then((answer) => {
        if (answer.desiredState !== JobState.RUNNING) pipeline.stop({ drain: true });
      })
      .catch((error: unknown) => {
        if (!(error instanceof StaleLeaseError)) log.warn(`progress report failed: ${describe(error)}`);
      })
      .finally(() => {
        reporting = undefined;
      });
  }, reportEveryMs);
  timer.unref();

  // The last report (released or failed) must not be overtaken by a periodic one.
  const settled = async () => {
    clearInterval(timer);
    await reporting;
    adjusted.count(pipeline.tables);
  };
  try {
    await pipeline.run();
    await settled();
    if (!context.signal.aborted) await report(pipeline, { released: true });
  } catch (error) {
    await settled();
    if (context.signal.aborted) return;
    if (!(error instanceof PipelineError)) throw new Error(describe(error));
    const wire = toWireError(error.classified, sourceDs, sinkDs);
    log.error({ kind: error.classified.kind, solution: wire.solution }, `job failed: ${wire.message}`);
    await report(pipeline, { failed: true, error: wire }).catch((reportError: unknown) =>
      log.warn(`could not report the failure: ${describe(reportError)}`),
    );
    throw new Error(wire.message);
  } finally {
    clearInterval(timer);
    hmacKey?.fill(0);
    sinkSecrets = undefined;
    if (metrics) for (const metric of metrics.perJob) metric.remove(labels);
    adjusted.remove();
  }
}

/** The job's per-column choices as the sink takes them. */
export function toColumnChoices(options: readonly ColumnOption[]): ColumnChoice[] {
  return options.flatMap((option) => {
    const ref = option.column;
    if (!ref?.table) return [];
    const choice: ColumnChoice = {
      table: { schema: ref.table.schema, name: ref.table.name },
      column: ref.column,
      target: option.target === ColumnTarget.TEXT ? 'text' : 'default',
    };
    const policy = policies[option.onUnrepresentable];
    if (policy) choice.onUnrepresentable = policy;
    return [choice];
  });
}

const policies: Partial<Record<UnrepresentablePolicy, ColumnChoice['onUnrepresentable']>> = {
  [UnrepresentablePolicy.FAIL]: 'fail',
  [UnrepresentablePolicy.NULL]: 'null',
  [UnrepresentablePolicy.CLAMP]: 'clamp',
};

/**
 * `sluice_values_adjusted_total{job, table, action}` from the pipeline's cumulative per-table counts: each
 * call adds what grew since the last one (a new run of the pipeline starts its counts again from 0).
 */
function adjustedValues(job: string, metrics: JobMetrics | undefined) {
  const seen = new Map<string, { labels: AdjustedLabels; value: number }>();
  const add = (table: string, action: 'null' | 'clamp', value: number) => {
    if (!metrics) return;
    const key = JSON.stringify([table, action]);
    let entry = seen.get(key);
    if (!entry) {
      if (value === 0) return;
      entry = { labels: { job, table, action }, value: 0 };
      seen.set(key, entry);
    }
    const delta = value >= entry.value ? value - entry.value : value;
    entry.value = value;
    if (delta > 0) metrics.valuesAdjusted.inc(entry.labels, delta);
  };
  return {
    count(tables: readonly TableStats[]) {
      for (const stats of tables) {
        const table = `${stats.table.schema}.${stats.table.name}`;
        add(table, 'null', stats.valuesNulled ?? 0);
        add(table, 'clamp', stats.valuesClamped ?? 0);
      }
    },
    remove() {
      for (const { labels } of seen.values()) metrics?.valuesAdjusted.remove(labels);
      seen.clear();
    },
  };
}

/** The classified message with the datasource it concerns named, as the job status shows it. */
function nameDatasource(error: ClassifiedError, source: Datasource, sink: Datasource): string {
  if (error.side === 'source') {
    const pg = source.config.case === 'postgres' ? source.config.value : undefined;
    const where = pg ? ` (user ${JSON.stringify(pg.username)} at ${pg.host}:${pg.port}/${pg.database})` : '';
    return `PostgreSQL datasource ${JSON.stringify(source.name)}${where}: ${error.message}`;
  }
  if (error.side === 'sink' && !error.message.includes(JSON.stringify(sink.name)))
    return `StarRocks datasource ${JSON.stringify(sink.name)}: ${error.message}`;
  return error.message;
}

function toWireError(error: ClassifiedError, source: Datasource, sink: Datasource) {
  return create(JobErrorSchema, {
    kind: errorKinds[error.kind],
    message: nameDatasource(error, source, sink),
    solution: error.solution ?? '',
    at: timestampNow(),
  });
}

function toWireTable(stats: TableStats): MessageInitShape<typeof TableProgressSchema> {
  return {
    table: stats.table,
    state: tableStates[stats.state],
    snapshotRows: BigInt(stats.snapshotRows),
    snapshotBytes: BigInt(stats.snapshotBytes),
    snapshotRowsEstimate: BigInt(Math.max(0, Math.round(stats.snapshotRowsEstimate))),
    rangesDone: stats.rangesDone,
    rangesTotal: stats.rangesTotal,
    inserts: BigInt(stats.inserts),
    updates: BigInt(stats.updates),
    deletes: BigInt(stats.deletes),
    truncates: BigInt(stats.truncates),
    valuesNulled: BigInt(stats.valuesNulled ?? 0),
    valuesClamped: BigInt(stats.valuesClamped ?? 0),
  };
}

function toWireCheckpoint(checkpoint: Readonly<Checkpoint>): JobCheckpoint {
  const range = (r: SnapshotRange) => ({
    table: r.table,
    index: r.index,
    startPage: BigInt(r.startPage),
    endPage: BigInt(r.endPage),
  });
  return create(JobCheckpointSchema, {
    consistentPointLsn: checkpoint.consistentPoint,
    durableLsn: checkpoint.durableLsn,
    plannedRanges: checkpoint.planned.map(range),
    completedRanges: checkpoint.completed.map(range),
    snapshotComplete: checkpoint.snapshotComplete,
    resyncTables: (checkpoint.resync ?? []).map((table) => ({ schema: table.schema, name: table.name })),
  });
}

function fromWireCheckpoint(checkpoint: JobCheckpoint | undefined): Checkpoint | undefined {
  if (!checkpoint) return undefined;
  const range = (r: WireSnapshotRange): SnapshotRange => ({
    table: { schema: r.table?.schema ?? '', name: r.table?.name ?? '' },
    index: r.index,
    startPage: Number(r.startPage),
    endPage: Number(r.endPage),
  });
  return {
    consistentPoint: checkpoint.consistentPointLsn,
    durableLsn: checkpoint.durableLsn,
    planned: checkpoint.plannedRanges.map(range),
    completed: checkpoint.completedRanges.map(range),
    snapshotComplete: checkpoint.snapshotComplete,
    resync: checkpoint.resyncTables.map((table) => ({ schema: table.schema, name: table.name })),
  };
}

interface JobMetrics {
  rows: Counter<'job'>;
  bytes: Counter<'job'>;
  retries: Counter<'job'>;
  rowsPerSecond: Gauge<'job'>;
  bytesPerSecond: Gauge<'job'>;
  lagBytes: Gauge<'job'>;
  lagSeconds: Gauge<'job'>;
  batchRows: Histogram<'job'>;
  valuesAdjusted: Counter<'job' | 'table' | 'action'>;
  perJob: { remove(labels: { job: string }): void }[];
}

type AdjustedLabels = { job: string; table: string; action: 'null' | 'clamp' };

const registered = new WeakMap<Registry, JobMetrics>();

function jobMetrics(registry: Registry): JobMetrics {
  const existing = registered.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const labelNames = ['job'] as const;
  const rows = new Counter({
    name: 'sluice_job_rows_total',
    help: 'Rows made durable in the sink',
    labelNames,
    registers,
  });
  const bytes = new Counter({
    name: 'sluice_job_bytes_total',
    help: 'Source bytes made durable in the sink',
    labelNames,
    registers,
  });
  const retries = new Counter({
    name: 'sluice_job_retries_total',
    help: 'Automatic retries after transient errors',
    labelNames,
    registers,
  });
  const rowsPerSecond = new Gauge({
    name: 'sluice_job_rows_per_second',
    help: 'Rows per second over the last report interval',
    labelNames,
    registers,
  });
  const bytesPerSecond = new Gauge({
    name: 'sluice_job_bytes_per_second',
    help: 'Bytes per second over the last report interval',
    labelNames,
    registers,
  });
  const lagBytes = new Gauge({
    name: 'sluice_job_lag_bytes',
    help: 'WAL bytes received but not yet durable',
    labelNames,
    registers,
  });
  const lagSeconds = new Gauge({
    name: 'sluice_job_lag_seconds',
    help: 'Seconds since the oldest commit not yet durable',
    labelNames,
    registers,
  });
  const batchRows = new Histogram({
    name: 'sluice_job_batch_rows',
    help: 'Rows per load',
    labelNames,
    buckets: [10, 100, 1_000, 10_000, 50_000, 100_000],
    registers,
  });
  const valuesAdjusted = new Counter({
    name: 'sluice_values_adjusted_total',
    help: "Values the sink could not hold exactly, loaded as NULL or clamped by the job's column choices",
    labelNames: ['job', 'table', 'action'] as const,
    registers,
  });
  const metrics: JobMetrics = {
    rows,
    bytes,
    retries,
    rowsPerSecond,
    bytesPerSecond,
    lagBytes,
    lagSeconds,
    batchRows,
    valuesAdjusted,
    perJob: [rows, bytes, retries, rowsPerSecond, bytesPerSecond, lagBytes, lagSeconds, batchRows],
  };
  registered.set(registry, metrics);
  return metrics;
}

function wipeAll(credentials: JobCredentials): void {
  credentials.source.wipe();
  credentials.sink.wipe();
  credentials.piiKey?.wipe();
}

function describe(error: unknown): string {
  const details = (error as { details?: unknown } | null)?.details;
  const text =
    typeof details === 'string' && details ? details : error instanceof Error ? error.message : String(error);
  return scrubSecrets(text).slice(0, 500);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
