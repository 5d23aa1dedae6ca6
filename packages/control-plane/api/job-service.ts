// JobService: job definitions, their operator-driven life cycle (scheduler/job-transitions.ts) and status as
// workers report it. Options are validated once here and stored with their defaults resolved, so workers
// read final values.
import { randomBytes, randomUUID } from 'node:crypto';
import { create, equals, fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { wipe } from '@sluice/crypto';
import {
  type ColumnOption,
  ColumnOptionSchema,
  type ColumnRef,
  ColumnTarget,
  type Job,
  type JobCheckpoint,
  JobCheckpointSchema,
  JobErrorSchema,
  type JobOptions,
  JobOptionsSchema,
  JobPhase,
  JobSchema,
  type JobService,
  JobState,
  type JobStatus,
  JobStatusSchema,
  type TableRef,
  TableRefSchema,
  UnrepresentablePolicy,
} from '@sluice/proto';
import type pg from 'pg';
import { auditNoteKey } from '../call-context.ts';
import { encryptField } from '../catalog/secret-columns.ts';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  isUniqueViolation,
  notFound,
} from '../errors.ts';
import {
  checkTransition,
  JOB_STATE_VALUES,
  type JobCommand,
  type JobStateName,
  jobStateName,
} from '../scheduler/job-transitions.ts';
import { runConnectionTest, workerOnline } from './connection-tests.ts';
import type { ServiceDeps } from './service-deps.ts';
import { requireId, requireIdentifier, requireName } from './validation.ts';

const MIB = 1024n * 1024n;
const MAX_TABLES = 1000;
const WATCH_POLL_MS = 500;
/** How long CreateJob waits for a worker's table check in all, and for a worker to claim it. */
const TABLE_CHECK_WAIT_MS = 10_000;
const TABLE_CHECK_CLAIM_MS = 3_000;

interface JobRow {
  id: string;
  name: string;
  source_id: string;
  sink_id: string;
  tables: Array<{ schema: string; name: string }>;
  options: JsonValue;
  state: JobStateName;
  phase: 'unspecified' | 'snapshot' | 'streaming';
  lease_worker_id: string | null;
  lease_epoch: string;
  checkpoint: JsonValue | null;
  status: Record<string, JsonValue>;
  last_error: JsonValue | null;
  reported_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const PHASES = {
  unspecified: JobPhase.UNSPECIFIED,
  snapshot: JobPhase.SNAPSHOT,
  streaming: JobPhase.STREAMING,
};

function toJob(row: JobRow): Job {
  return create(JobSchema, {
    id: row.id,
    name: row.name,
    sourceId: row.source_id,
    sinkId: row.sink_id,
    tables: row.tables.map((t) => create(TableRefSchema, t)),
    options: fromJson(JobOptionsSchema, row.options, { ignoreUnknownFields: true }),
    state: JOB_STATE_VALUES[row.state],
    createdAt: timestampFromDate(row.created_at),
    updatedAt: timestampFromDate(row.updated_at),
  });
}

function toStatus(row: JobRow): JobStatus {
  const reported = fromJson(JobStatusSchema, row.status as JsonValue, { ignoreUnknownFields: true });
  return create(JobStatusSchema, {
    ...reported,
    jobId: row.id,
    state: JOB_STATE_VALUES[row.state],
    phase: PHASES[row.phase],
    workerId: row.lease_worker_id ?? '',
    epoch: BigInt(row.lease_epoch),
    ...(row.last_error && {
      lastError: fromJson(JobErrorSchema, row.last_error, { ignoreUnknownFields: true }),
    }),
    ...(row.checkpoint && {
      checkpoint: fromJson(JobCheckpointSchema, row.checkpoint, { ignoreUnknownFields: true }),
    }),
    ...(row.reported_at && { reportedAt: timestampFromDate(row.reported_at) }),
  });
}

async function loadJobRow(db: pg.Pool | pg.PoolClient, id: string, lock = false): Promise<JobRow> {
  const result = await db.query<JobRow>(`select * from jobs where id = $1${lock ? ' for update' : ''}`, [id]);
  const row = result.rows[0];
  if (!row) throw notFound('job', id);
  return row;
}

/**
 * One job as the API and the worker service see it: the definition, its live status, and the last checkpoint
 * (when a worker saved one). NotFound when it doesn't exist.
 */
export async function loadJob(
  db: pg.Pool | pg.PoolClient,
  id: string,
): Promise<{ job: Job; status: JobStatus; checkpoint: JobCheckpoint | undefined }> {
  const row = await loadJobRow(db, id);
  const status = toStatus(row);
  return { job: toJob(row), status, checkpoint: status.checkpoint };
}

function tableKey(t: { schema: string; name: string }): string {
  return JSON.stringify([t.schema, t.name]);
}

function resolveTables(tables: TableRef[]): Array<{ schema: string; name: string }> {
  if (tables.length === 0) throw invalidArgument('tables must name at least one table');
  if (tables.length > MAX_TABLES) throw invalidArgument(`tables has more than ${MAX_TABLES} entries`);
  const seen = new Set<string>();
  return tables.map((table, i) => {
    const schema = requireIdentifier(`tables[${i}].schema`, table.schema);
    const name = requireIdentifier(`tables[${i}].name`, table.name);
    const key = tableKey({ schema, name });
    if (seen.has(key)) throw invalidArgument(`tables[${i}] repeats ${schema}.${name}`);
    seen.add(key);
    return { schema, name };
  });
}

function rangeCheck(field: string, value: number | bigint, min: number | bigint, max: number | bigint): void {
  if (value < min || value > max)
    throw invalidArgument(`options.${field} ${value} is out of range ${min}–${max}`);
}

function resolveColumns(
  field: string,
  columns: ColumnRef[],
  tables: Set<string>,
): Array<{ table: { schema: string; name: string }; column: string }> {
  if (columns.length > 10_000) throw invalidArgument(`options.${field} has more than 10000 entries`);
  const seen = new Set<string>();
  return columns.map((ref, i) => {
    const where = `options.${field}[${i}]`;
    if (!ref.table) throw invalidArgument(`${where}.table is required`);
    const table = {
      schema: requireIdentifier(`${where}.table.schema`, ref.table.schema),
      name: requireIdentifier(`${where}.table.name`, ref.table.name),
    };
    if (!tables.has(tableKey(table)))
      throw invalidArgument(
        `${where} names ${table.schema}.${table.name}, which is not one of the job's tables`,
      );
    const column = requireIdentifier(`${where}.column`, ref.column);
    const key = JSON.stringify([table.schema, table.name, column]);
    if (seen.has(key)) throw invalidArgument(`${where} repeats column ${column}`);
    seen.add(key);
    return { table, column };
  });
}

const TARGET_WORDS: Record<number, string> = {
  [ColumnTarget.UNSPECIFIED]: 'default',
  [ColumnTarget.TEXT]: 'text',
};
const POLICY_WORDS: Record<number, string> = {
  [UnrepresentablePolicy.UNSPECIFIED]: 'fail',
  [UnrepresentablePolicy.FAIL]: 'fail',
  [UnrepresentablePolicy.NULL]: 'null',
  [UnrepresentablePolicy.CLAMP]: 'clamp',
};

/** How the CLI spells a column choice, so an error names what the user typed. */
function cliSpelling(option: ColumnOption, column: string): string {
  const flags: string[] = [];
  const target = TARGET_WORDS[option.target];
  const policy = POLICY_WORDS[option.onUnrepresentable];
  if (
    option.target !== ColumnTarget.UNSPECIFIED ||
    option.onUnrepresentable === UnrepresentablePolicy.UNSPECIFIED
  )
    flags.push(`--column-as ${column}=${target ?? option.target}`);
  if (option.onUnrepresentable !== UnrepresentablePolicy.UNSPECIFIED)
    flags.push(`--on-unrepresentable ${column}=${policy ?? option.onUnrepresentable}`);
  return flags.join(' ');
}

/**
 * Per-column choices: each names a column of one of the job's tables, once, with a known target and policy,
 * and not an excluded column. Policy NULL is stored as chosen (the sink refuses it for key columns at start).
 */
function resolveColumnOptions(
  options: ColumnOption[],
  tables: Set<string>,
  excluded: Set<string>,
): ColumnOption[] {
  if (options.length > 10_000) throw invalidArgument('options.column_options has more than 10000 entries');
  const seen = new Set<string>();
  return options.map((option, i) => {
    const where = `options.column_options[${i}]`;
    const ref = option.column;
    if (!ref?.table) throw invalidArgument(`${where}.column.table is required`);
    const table = {
      schema: requireIdentifier(`${where}.column.table.schema`, ref.table.schema),
      name: requireIdentifier(`${where}.column.table.name`, ref.table.name),
    };
    const column = requireIdentifier(`${where}.column.column`, ref.column);
    const dotted = `${table.schema}.${table.name}.${column}`;
    const spelled = `${where} (${cliSpelling(option, dotted)})`;
    if (TARGET_WORDS[option.target] === undefined)
      throw invalidArgument(
        `${spelled}: target ${option.target} is not a known target; --column-as takes text or default`,
      );
    if (POLICY_WORDS[option.onUnrepresentable] === undefined)
      throw invalidArgument(
        `${spelled}: on_unrepresentable ${option.onUnrepresentable} is not a known policy; --on-unrepresentable takes fail, null or clamp`,
      );
    if (!tables.has(tableKey(table)))
      throw invalidArgument(
        `${spelled} names table ${table.schema}.${table.name}, which is not one of the job's tables (--table)`,
      );
    const key = JSON.stringify([table.schema, table.name, column]);
    if (seen.has(key))
      throw invalidArgument(
        `${spelled} repeats column ${dotted}; give each column one entry with both its target and its policy`,
      );
    seen.add(key);
    if (excluded.has(key))
      throw invalidArgument(
        `${spelled}: column ${dotted} is also excluded (--exclude-column), so it never reaches the sink; choose one`,
      );
    return create(ColumnOptionSchema, {
      column: { table, column },
      target: option.target,
      onUnrepresentable: option.onUnrepresentable,
    });
  });
}

/** Validates options and fills in every default. */
function resolveJobOptions(
  options: JobOptions | undefined,
  tables: Array<{ schema: string; name: string }>,
): JobOptions {
  const o = options ?? create(JobOptionsSchema);
  const batchMaxRows = o.batchMaxRows || 50_000;
  rangeCheck('batch_max_rows', batchMaxRows, 1, 10_000_000);
  const batchMaxBytes = o.batchMaxBytes || 64n * MIB;
  rangeCheck('batch_max_bytes', batchMaxBytes, 1024n, 10n * 1024n * MIB);
  const flushIntervalMs = o.flushIntervalMs || 1000;
  rangeCheck('flush_interval_ms', flushIntervalMs, 100, 3_600_000);
  const snapshotParallelism = o.snapshotParallelism || 4;
  rangeCheck('snapshot_parallelism', snapshotParallelism, 1, 64);
  const snapshotRangePages = o.snapshotRangePages || 16_384;
  rangeCheck('snapshot_range_pages', snapshotRangePages, 1, 16_777_216);
  const maxInFlightBytes = o.maxInFlightBytes || 256n * MIB;
  rangeCheck('max_in_flight_bytes', maxInFlightBytes, batchMaxBytes, 64n * 1024n * MIB);
  const tableKeys = new Set(tables.map(tableKey));
  const hash = resolveColumns('hash_columns', o.hashColumns, tableKeys);
  const exclude = resolveColumns('exclude_columns', o.excludeColumns, tableKeys);
  const hashed = new Set(hash.map((c) => JSON.stringify([c.table.schema, c.table.name, c.column])));
  for (const c of exclude) {
    if (hashed.has(JSON.stringify([c.table.schema, c.table.name, c.column])))
      throw invalidArgument(
        `column ${c.column} of ${c.table.schema}.${c.table.name} can't be both hashed and excluded`,
      );
  }
  if (o.keyedHashing && hash.length === 0)
    throw invalidArgument('options.keyed_hashing needs at least one entry in options.hash_columns');
  const columnOptions = resolveColumnOptions(
    o.columnOptions,
    tableKeys,
    new Set(exclude.map((c) => JSON.stringify([c.table.schema, c.table.name, c.column]))),
  );
  return create(JobOptionsSchema, {
    initialSnapshot: o.initialSnapshot ?? true,
    batchMaxRows,
    batchMaxBytes,
    flushIntervalMs,
    hashColumns: hash.map((c) => ({ table: c.table, column: c.column })),
    excludeColumns: exclude.map((c) => ({ table: c.table, column: c.column })),
    keyedHashing: o.keyedHashing,
    snapshotParallelism,
    snapshotRangePages,
    maxInFlightBytes,
    columnOptions,
  });
}

function noteResource(ctx: HandlerContext, id: string): void {
  const note = ctx.values.get(auditNoteKey);
  if (note) note.resourceId = id;
}

/** Replication slot and publication names of a job: `sluice_<job id>` with the id's dashes as underscores. */
export function replicationNames(jobId: string): { slot: string; publication: string } {
  const name = `sluice_${jobId.replaceAll('-', '_')}`;
  return { slot: name, publication: name };
}

export function createJobService(deps: ServiceDeps): ServiceImpl<typeof JobService> {
  const { pool } = deps;

  async function transition(id: string, command: JobCommand, ctx: HandlerContext): Promise<{ job: Job }> {
    noteResource(ctx, id);
    const client = await pool.connect();
    try {
      await client.query('begin');
      const row = await loadJobRow(client, id, true);
      const check = checkTransition(command, row.state);
      if (!check.ok) throw failedPrecondition(`job ${row.name}: ${check.message}`);
      // Pausing or stopping ends the lease: the worker's next heartbeat doesn't renew it, so it stops the job.
      // The epoch stays, so the next grant is higher than any the old worker holds.
      const endLease = command === 'pause' || command === 'stop';
      await client.query(
        `update jobs set state = $2, updated_at = now()
           ${endLease ? ', lease_worker_id = null, lease_expires_at = null' : ''}
         where id = $1`,
        [id, check.to],
      );
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw error;
    } finally {
      client.release();
    }
    return { job: toJob(await loadJobRow(pool, id)) };
  }

  /**
   * Has a worker check that the source can replicate `tables` (each exists, is readable, has a primary key or
   * a usable replica identity). A refusal is FailedPrecondition with the worker's message. Without an answer —
   * no worker online, none free to claim the test within a few seconds, or the worker could not connect to the
   * source — the job may still be created: the worker that starts it checks the tables again.
   */
  async function checkTables(
    name: string,
    sourceId: string,
    tables: Array<{ schema: string; name: string }>,
    signal: AbortSignal,
  ): Promise<{ checked: boolean; note: string }> {
    const later = 'the tables will be checked when a worker starts the job';
    if (!(await workerOnline(pool))) return { checked: false, note: `no worker is online; ${later}` };
    const outcome = await runConnectionTest(pool, sourceId, tables, {
      waitMs: TABLE_CHECK_WAIT_MS,
      claimMs: TABLE_CHECK_CLAIM_MS,
      signal,
    });
    if (!outcome) return { checked: false, note: `no worker answered the table check in time; ${later}` };
    if (outcome.ok)
      return { checked: true, note: `worker ${outcome.workerId.slice(0, 8)} checked the tables` };
    // A worker that connected reports the server version: its refusal is about the tables.
    if (outcome.serverVersion) throw failedPrecondition(`job ${name} was not created: ${outcome.message}`);
    return {
      checked: false,
      note: `a worker could not connect to the source (${outcome.message}); ${later}`,
    };
  }

  return {
    async createJob(req, ctx) {
      const name = requireName('name', req.name);
      const sourceId = requireId('datasource', req.sourceId, 'source_id');
      const sinkId = requireId('datasource', req.sinkId, 'sink_id');
      const tables = resolveTables(req.tables);
      const options = resolveJobOptions(req.options, tables);
      const kinds = await pool.query<{ id: string; kind: string }>(
        'select id, kind from datasources where id = any($1::uuid[])',
        [[sourceId, sinkId]],
      );
      const kindOf = new Map(kinds.rows.map((r) => [r.id, r.kind]));
      if (!kindOf.has(sourceId)) throw notFound('source datasource', sourceId);
      if (!kindOf.has(sinkId)) throw notFound('sink datasource', sinkId);
      if (kindOf.get(sourceId) !== 'postgres')
        throw invalidArgument(
          `source_id ${sourceId} is a ${kindOf.get(sourceId)} datasource; a source must be PostgreSQL`,
        );
      if (kindOf.get(sinkId) !== 'starrocks')
        throw invalidArgument(
          `sink_id ${sinkId} is a ${kindOf.get(sinkId)} datasource; a sink must be StarRocks`,
        );
      const taken = await pool.query('select 1 from jobs where name = $1', [name]);
      if (taken.rowCount) throw alreadyExists(`job name ${JSON.stringify(name)} is taken`);
      const check = await checkTables(
        name,
        sourceId,
        tables,
        AbortSignal.any([ctx.signal, deps.shutdownSignal]),
      );
      const id = randomUUID();
      noteResource(ctx, id);
      let piiKey: Buffer | null = null;
      if (options.keyedHashing) {
        const key = randomBytes(32);
        piiKey = encryptField(deps.keyring, 'jobs', id, 'pii_hmac_key', key);
        wipe(key);
      }
      try {
        await pool.query(
          `insert into jobs (id, name, source_id, sink_id, tables, options, state, pii_hmac_key_ciphertext)
           values ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            id,
            name,
            sourceId,
            sinkId,
            JSON.stringify(tables),
            JSON.stringify(toJson(JobOptionsSchema, options)),
            req.start ? 'pending' : 'created',
            piiKey,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw alreadyExists(`job name ${JSON.stringify(name)} is taken`);
        throw error;
      }
      return { job: toJob(await loadJobRow(pool, id)), tableCheck: check };
    },

    async getJob(req) {
      return { job: toJob(await loadJobRow(pool, requireId('job', req.id))) };
    },

    async listJobs(req) {
      const state = req.state === JobState.UNSPECIFIED ? undefined : jobStateName(req.state);
      if (req.state !== JobState.UNSPECIFIED && !state)
        throw invalidArgument(`state ${req.state} is not a job state`);
      const result = await pool.query<JobRow>(
        `select * from jobs ${state ? 'where state = $1' : ''} order by name`,
        state ? [state] : [],
      );
      return { jobs: result.rows.map(toJob) };
    },

    startJob: (req, ctx) => transition(requireId('job', req.id), 'start', ctx),
    pauseJob: (req, ctx) => transition(requireId('job', req.id), 'pause', ctx),
    resumeJob: (req, ctx) => transition(requireId('job', req.id), 'resume', ctx),
    stopJob: (req, ctx) => transition(requireId('job', req.id), 'stop', ctx),

    async deleteJob(req, ctx) {
      const id = requireId('job', req.id);
      noteResource(ctx, id);
      const client = await pool.connect();
      try {
        await client.query('begin');
        const row = await loadJobRow(client, id, true);
        const check = checkTransition('delete', row.state);
        if (!check.ok) throw failedPrecondition(`job ${row.name}: ${check.message}`);
        if (req.dropReplicationSlot) {
          const names = replicationNames(id);
          await client.query(
            `insert into job_cleanups (job_id, source_id, slot_name, publication_name) values ($1, $2, $3, $4)
             on conflict (job_id) do nothing`,
            [id, row.source_id, names.slot, names.publication],
          );
        }
        await client.query('delete from jobs where id = $1', [id]);
        await client.query('commit');
      } catch (error) {
        await client.query('rollback');
        throw error;
      } finally {
        client.release();
      }
      return {};
    },

    async getJobStatus(req) {
      return { status: toStatus(await loadJobRow(pool, requireId('job', req.id))) };
    },

    async *watchJobStatus(req, ctx) {
      const id = requireId('job', req.id);
      const signal = AbortSignal.any([ctx.signal, deps.shutdownSignal]);
      let last: JobStatus | undefined;
      while (!signal.aborted) {
        const status = toStatus(await loadJobRow(pool, id));
        if (!last || !equals(JobStatusSchema, last, status)) {
          last = status;
          yield { status };
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, WATCH_POLL_MS);
          function done() {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            resolve();
          }
          signal.addEventListener('abort', done);
        });
      }
    },
  };
}
