// `sluice job …`: define, start, pause, resume, stop and delete replication jobs, and follow their status.
import { create } from '@bufbuild/protobuf';
import {
  type ColumnOption,
  ColumnOptionSchema,
  type ColumnRef,
  ColumnRefSchema,
  ColumnTarget,
  DatasourceService,
  type Job,
  JobSchema,
  JobService,
  JobState,
  type JobStatus,
  JobStatusSchema,
  TableRefSchema,
  UnrepresentablePolicy,
} from '@sluice/proto';
import { usageError } from '../cli-error.ts';
import { type Connection, connect } from '../client.ts';
import {
  type CommandContext,
  type CommandSpec,
  integerFlag,
  listFlag,
  stringFlag,
} from '../command-table.ts';
import { describeColumnOptions, renderJobStatus, stateWord, statusLine } from '../job-status-view.ts';
import { findDatasource, findJob } from '../lookup.ts';
import { messageJson, printJson, println, table, visible, when } from '../output.ts';

/** `schema.table`, or `table` meaning `public.table`. */
export function parseTable(text: string) {
  const parts = text.split('.');
  if (parts.length > 2 || parts.some((part) => part === ''))
    throw usageError(`--table ${JSON.stringify(text)} must be schema.table`);
  const [schema, name] = parts.length === 2 ? parts : ['public', parts[0]];
  return create(TableRefSchema, { schema: schema!, name: name! });
}

function parseColumn(flag: string, text: string) {
  const parts = text.split('.');
  if (parts.length !== 3 || parts.some((part) => part === ''))
    throw usageError(`--${flag} ${JSON.stringify(text)} must be schema.table.column`);
  return create(ColumnRefSchema, {
    table: { schema: parts[0]!, name: parts[1]! },
    column: parts[2]!,
  });
}

const TARGETS: Record<string, ColumnTarget> = { text: ColumnTarget.TEXT, default: ColumnTarget.UNSPECIFIED };
const POLICIES: Record<string, UnrepresentablePolicy> = {
  fail: UnrepresentablePolicy.FAIL,
  null: UnrepresentablePolicy.NULL,
  clamp: UnrepresentablePolicy.CLAMP,
};

/** `schema.table.column=value` of `--column-as` / `--on-unrepresentable`, the value one of `allowed`. */
function parseChoice<T>(flag: string, text: string, allowed: Record<string, T>) {
  const names = Object.keys(allowed);
  const at = text.lastIndexOf('=');
  const shape = `schema.table.column=${names.join('|')}`;
  if (at < 0) throw usageError(`--${flag} ${JSON.stringify(text)} must be ${shape}`);
  const column = text.slice(0, at);
  const word = text.slice(at + 1);
  if (!Object.hasOwn(allowed, word))
    throw usageError(
      `--${flag} ${JSON.stringify(text)}: ${JSON.stringify(word)} is not one of ${names.join(', ')} (${shape})`,
    );
  const parts = column.split('.');
  if (parts.length !== 3 || parts.some((part) => part === ''))
    throw usageError(`--${flag} ${JSON.stringify(text)} must be ${shape}`);
  return { ref: parseColumn(flag, column), value: allowed[word] as T };
}

function columnKey(ref: ColumnRef): string {
  return JSON.stringify([ref.table?.schema, ref.table?.name, ref.column]);
}

/**
 * `--column-as` and `--on-unrepresentable` as the job's column options: one entry per column holding both its
 * choices. A column given twice in one flag, or also excluded, is a usage error.
 */
export function parseColumnOptions(
  columnAs: readonly string[],
  onUnrepresentable: readonly string[],
  excluded: readonly ColumnRef[],
): ColumnOption[] {
  const options = new Map<string, ColumnOption>();
  const entry = (ref: ColumnRef) => {
    const key = columnKey(ref);
    let option = options.get(key);
    if (!option) {
      option = create(ColumnOptionSchema, { column: ref });
      options.set(key, option);
    }
    return option;
  };
  const seen = { 'column-as': new Set<string>(), 'on-unrepresentable': new Set<string>() };
  const once = (flag: keyof typeof seen, text: string, ref: ColumnRef) => {
    const key = columnKey(ref);
    if (seen[flag].has(key))
      throw usageError(`--${flag} ${JSON.stringify(text)}: the column is given twice; give it once`);
    seen[flag].add(key);
  };
  for (const text of columnAs) {
    const { ref, value } = parseChoice('column-as', text, TARGETS);
    once('column-as', text, ref);
    entry(ref).target = value;
  }
  for (const text of onUnrepresentable) {
    const { ref, value } = parseChoice('on-unrepresentable', text, POLICIES);
    once('on-unrepresentable', text, ref);
    entry(ref).onUnrepresentable = value;
  }
  for (const ref of excluded) {
    if (options.has(columnKey(ref))) {
      const name = `${ref.table?.schema}.${ref.table?.name}.${ref.column}`;
      throw usageError(
        `--exclude-column ${name} never reaches the sink, so it can't also have --column-as or --on-unrepresentable; choose one`,
      );
    }
  }
  return [...options.values()];
}

const JOB_ARG = [{ name: 'job', description: 'name or id' }];

function printJob(context: CommandContext, job: Job, verb: string): void {
  if (context.json) printJson(context, messageJson(JobSchema, job));
  else println(context, `job ${job.name} ${verb}: ${stateWord(job.state)}`);
}

function transition(name: 'start' | 'pause' | 'resume' | 'stop', summary: string, verb: string): CommandSpec {
  return {
    name,
    summary,
    args: JOB_ARG,
    async run(context) {
      const connection = await connect(context);
      const job = await findJob(connection, context.args[0]!);
      const jobs = connection.client(JobService);
      const call = { start: jobs.startJob, pause: jobs.pauseJob, resume: jobs.resumeJob, stop: jobs.stopJob }[
        name
      ];
      const answer = await call({ id: job.id });
      printJob(context, answer.job!, verb);
      return 0;
    },
  };
}

async function watch(context: CommandContext, connection: Connection, job: Job): Promise<number> {
  const tty = context.stdout.isTTY === true && !context.json;
  let drawn = 0;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  try {
    for await (const update of connection
      .client(JobService)
      .watchJobStatus({ id: job.id }, { signal: stop.signal })) {
      const status = update.status!;
      if (context.json) context.stdout.write(`${JSON.stringify(messageJson(JobStatusSchema, status))}\n`);
      else if (tty) {
        const lines = renderJobStatus(job, status, { bars: true });
        if (drawn) context.stdout.write(`\x1b[${drawn}A\x1b[J`);
        context.stdout.write(`${visible(lines.join('\n'), { multiline: true })}\n`);
        drawn = lines.length;
      } else println(context, statusLine(job, status));
    }
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
  return 0;
}

export const jobCommand: CommandSpec = {
  name: 'job',
  summary: 'Replication jobs: define, start, pause, resume, stop, delete, follow',
  subcommands: [
    {
      name: 'create',
      summary: 'Define a job from a PostgreSQL source to a StarRocks sink (operator)',
      flags: {
        name: { type: 'string', value: 'NAME', required: true, description: 'unique job name' },
        source: {
          type: 'string',
          value: 'DATASOURCE',
          required: true,
          description: 'PostgreSQL datasource, name or id',
        },
        sink: {
          type: 'string',
          value: 'DATASOURCE',
          required: true,
          description: 'StarRocks datasource, name or id',
        },
        table: {
          type: 'string',
          value: 'SCHEMA.TABLE',
          multiple: true,
          required: true,
          description: 'table to replicate',
        },
        start: { type: 'boolean', description: 'start it right away' },
        'no-snapshot': { type: 'boolean', description: 'skip the initial copy; stream changes only' },
        'hash-column': {
          type: 'string',
          value: 'SCHEMA.TABLE.COLUMN',
          multiple: true,
          description: 'replace the column by its PII hash before it leaves the worker',
        },
        'keyed-hashing': {
          type: 'boolean',
          description: 'HMAC-SHA256 with a per-job key instead of SHA-256',
        },
        'exclude-column': {
          type: 'string',
          value: 'SCHEMA.TABLE.COLUMN',
          multiple: true,
          description: 'never send this column to the sink',
        },
        'column-as': {
          type: 'string',
          value: 'SCHEMA.TABLE.COLUMN=TYPE',
          multiple: true,
          description:
            "text: land the column as VARCHAR holding PostgreSQL's own text of each value (exact for any type); default: the type map's choice",
        },
        'on-unrepresentable': {
          type: 'string',
          value: 'SCHEMA.TABLE.COLUMN=POLICY',
          multiple: true,
          description:
            "for values the column's StarRocks type can't hold exactly: fail (default) stops the job, null loads NULL, clamp loads the nearest value (both counted)",
        },
        'batch-max-rows': {
          type: 'string',
          value: 'N',
          default: '50000',
          description: 'flush a batch at N rows',
        },
        'flush-interval-ms': {
          type: 'string',
          value: 'MS',
          default: '1000',
          description: 'flush a batch after MS',
        },
        'snapshot-parallelism': {
          type: 'string',
          value: 'N',
          default: '4',
          description: 'snapshot connections',
        },
      },
      examples: [
        'sluice job create --name orders --source app --sink warehouse --table public.orders --start',
      ],
      async run(context) {
        const tables = listFlag(context.flags, 'table').map(parseTable);
        const hashColumns = listFlag(context.flags, 'hash-column').map((c) => parseColumn('hash-column', c));
        const excludeColumns = listFlag(context.flags, 'exclude-column').map((c) =>
          parseColumn('exclude-column', c),
        );
        const columnOptions = parseColumnOptions(
          listFlag(context.flags, 'column-as'),
          listFlag(context.flags, 'on-unrepresentable'),
          excludeColumns,
        );
        const batchMaxRows = integerFlag(context.flags, 'batch-max-rows', { min: 1, max: 10_000_000 });
        const flushIntervalMs = integerFlag(context.flags, 'flush-interval-ms', { min: 10, max: 3_600_000 });
        const snapshotParallelism = integerFlag(context.flags, 'snapshot-parallelism', { min: 1, max: 64 });
        const connection = await connect(context);
        const [source, sink] = await Promise.all([
          findDatasource(connection, stringFlag(context.flags, 'source')!),
          findDatasource(connection, stringFlag(context.flags, 'sink')!),
        ]);
        const answer = await connection.client(JobService).createJob({
          name: stringFlag(context.flags, 'name')!,
          sourceId: source.id,
          sinkId: sink.id,
          tables,
          start: context.flags.start === true,
          options: {
            ...(context.flags['no-snapshot'] === true && { initialSnapshot: false }),
            hashColumns,
            excludeColumns,
            keyedHashing: context.flags['keyed-hashing'] === true,
            columnOptions,
            ...(batchMaxRows !== undefined && { batchMaxRows }),
            ...(flushIntervalMs !== undefined && { flushIntervalMs }),
            ...(snapshotParallelism !== undefined && { snapshotParallelism }),
          },
        });
        const job = answer.job!;
        const tableCheck = answer.tableCheck;
        if (context.json)
          printJson(context, {
            ...(messageJson(JobSchema, job) as object),
            ...(tableCheck && { tableCheck: { checked: tableCheck.checked, note: tableCheck.note } }),
          });
        else {
          println(context, `job ${job.name} created: ${stateWord(job.state)}`);
          if (tableCheck?.checked) println(context, '  tables checked on a worker: replicable');
          else if (tableCheck?.note) println(context, `  tables not checked yet: ${tableCheck.note}`);
        }
        return 0;
      },
    },
    {
      name: 'list',
      summary: 'List jobs with their state and table count',
      flags: {
        state: {
          type: 'string',
          value: 'STATE',
          description: 'only created, pending, running, paused, failed or stopped',
        },
      },
      async run(context) {
        const stateName = stringFlag(context.flags, 'state');
        let state: JobState = JobState.UNSPECIFIED;
        if (stateName !== undefined) {
          const found = (JobState as unknown as Record<string, JobState>)[stateName.toUpperCase()];
          if (found === undefined || found === JobState.UNSPECIFIED)
            throw usageError('--state must be created, pending, running, paused, failed or stopped');
          state = found;
        }
        const connection = await connect(context);
        const { jobs } = await connection.client(JobService).listJobs({ state });
        if (context.json) printJson(context, { jobs: jobs.map((job) => messageJson(JobSchema, job)) });
        else if (jobs.length === 0) println(context, 'no jobs');
        else
          println(
            context,
            table([
              ['NAME', 'STATE', 'TABLES', 'UPDATED', 'ID'],
              ...jobs.map((job) => [
                job.name,
                stateWord(job.state),
                String(job.tables.length),
                when(job.updatedAt),
                job.id,
              ]),
            ]),
          );
        return 0;
      },
    },
    {
      name: 'show',
      summary: 'Show a job: source, sink, tables and options (column choices among them)',
      args: JOB_ARG,
      async run(context) {
        const connection = await connect(context);
        const job = await findJob(connection, context.args[0]!);
        if (context.json) {
          printJson(context, messageJson(JobSchema, job));
          return 0;
        }
        const { datasources } = await connection.client(DatasourceService).listDatasources({});
        const nameOf = (id: string) => datasources.find((d) => d.id === id)?.name ?? id;
        const o = job.options;
        const lines = [
          `job ${job.name} (${job.id})`,
          `  state ${stateWord(job.state)}, created ${when(job.createdAt)}, updated ${when(job.updatedAt)}`,
          `  source ${nameOf(job.sourceId)}, sink ${nameOf(job.sinkId)}`,
          `  tables ${job.tables.map((t) => `${t.schema}.${t.name}`).join(', ')}`,
        ];
        if (o) {
          const columns = (refs: ColumnRef[]) =>
            refs.map((r) => `${r.table?.schema}.${r.table?.name}.${r.column}`).join(', ');
          lines.push(
            `  initial snapshot ${o.initialSnapshot === false ? 'no' : 'yes'}, batch ${o.batchMaxRows} rows, flush ${o.flushIntervalMs} ms, snapshot parallelism ${o.snapshotParallelism}`,
          );
          if (o.hashColumns.length)
            lines.push(`  hashed columns${o.keyedHashing ? ' (keyed)' : ''}: ${columns(o.hashColumns)}`);
          if (o.excludeColumns.length) lines.push(`  excluded columns: ${columns(o.excludeColumns)}`);
        }
        lines.push(...describeColumnOptions(job));
        println(context, lines.join('\n'));
        return 0;
      },
    },
    {
      name: 'status',
      summary: 'Show phase, per-table snapshot progress, rows/s, lag and the last error',
      description:
        'With --watch, follows the status as the worker reports (one JSON object per line with --json).',
      args: JOB_ARG,
      flags: { watch: { type: 'boolean', short: 'w', description: 'keep following until Ctrl-C' } },
      async run(context) {
        const connection = await connect(context);
        const job = await findJob(connection, context.args[0]!);
        if (context.flags.watch) return watch(context, connection, job);
        const { status } = await connection.client(JobService).getJobStatus({ id: job.id });
        if (context.json) printJson(context, messageJson(JobStatusSchema, status!));
        else
          println(
            context,
            renderJobStatus(job, status as JobStatus, { bars: context.stdout.isTTY === true }).join('\n'),
          );
        return 0;
      },
    },
    transition('start', 'Start a created or stopped job (operator)', 'started'),
    transition('pause', 'Pause a job; its slot keeps WAL (operator)', 'paused'),
    transition('resume', 'Resume a paused or failed job (operator)', 'resumed'),
    transition('stop', 'Stop a job (operator)', 'stopped'),
    {
      name: 'rm',
      summary: 'Delete a stopped, failed, paused or created job (operator)',
      args: JOB_ARG,
      flags: {
        'drop-slot': {
          type: 'boolean',
          description: 'also drop its replication slot and publication (by a worker)',
        },
      },
      async run(context) {
        const connection = await connect(context);
        const job = await findJob(connection, context.args[0]!);
        await connection
          .client(JobService)
          .deleteJob({ id: job.id, dropReplicationSlot: context.flags['drop-slot'] === true });
        if (context.json) printJson(context, { deleted: job.id });
        else println(context, `job ${job.name} deleted`);
        return 0;
      },
    },
  ],
};
