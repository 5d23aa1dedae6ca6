// `sluice job …`: define, start, pause, resume, stop and delete replication jobs, and follow their status.
import { create } from '@bufbuild/protobuf';
import {
  ColumnRefSchema,
  type Job,
  JobSchema,
  JobService,
  JobState,
  type JobStatus,
  JobStatusSchema,
  TableRefSchema,
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
import { renderJobStatus, stateWord, statusLine } from '../job-status-view.ts';
import { findDatasource, findJob } from '../lookup.ts';
import { messageJson, printJson, println, table, when } from '../output.ts';

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
        context.stdout.write(`${lines.join('\n')}\n`);
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
            ...(batchMaxRows !== undefined && { batchMaxRows }),
            ...(flushIntervalMs !== undefined && { flushIntervalMs }),
            ...(snapshotParallelism !== undefined && { snapshotParallelism }),
          },
        });
        printJob(context, answer.job!, 'created');
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
