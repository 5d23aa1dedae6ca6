// The worker's data path as its own process, so its CPU and peak RSS are its own: Sluice's Pipeline from a
// PostgreSQL slot into a StarRocks (emulator) sink, with the defaults the worker agent uses.
//   node bench/pipeline-worker.ts '<PipelineWorkerConfig as JSON>'
// Prints one JSON line per event on stdout: {"event":"streaming"} once streaming, then, when told to stop
// (`untilLsn` reached, or a line "stop" on stdin), {"event":"done", …PipelineWorkerResult}.
import { createInterface } from 'node:readline';
import {
  type ConnectionOptions,
  createStarRocksSink,
  type Lsn,
  Pipeline,
  PostgresSource,
  parseLsn,
} from '@sluice/cdc';
import { selfPeakRssMiB, sleep, startSelfSpan } from './measure.ts';
import { TABLE } from './workload.ts';

export interface PipelineWorkerConfig {
  job: string;
  connection: ConnectionOptions;
  sink: {
    host: string;
    httpPort: number;
    queryPort: number;
    user: string;
    password: string;
    database: string;
  };
  /** Stop once everything up to this LSN is durable in the sink (text form); else run until "stop". */
  untilLsn?: string;
}

export interface PipelineWorkerResult {
  /** From just before `run()` to the stop condition. */
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** Rows made durable in the sink. */
  rows: number;
  retries: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as PipelineWorkerConfig;
const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

const pipeline = new Pipeline({
  job: config.job,
  epoch: 1n,
  // The slot was created by the bench before the WAL was written; nothing to copy.
  initialSnapshot: false,
  createSource: () => new PostgresSource({ connection: config.connection, job: config.job, tables: [TABLE] }),
  createSink: () =>
    createStarRocksSink({
      datasource: { name: 'bench', ...config.sink },
    }),
  checkpoints: { save: async () => undefined },
  onRetry: (error) => process.stderr.write(`pipeline retry: ${error.message}\n`),
});

let stopRequested = false;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'stop') stopRequested = true;
});

const span = startSelfSpan();
const run = pipeline.run();
let failure: unknown;
run.catch((error: unknown) => {
  failure = error;
});
const until: Lsn | undefined = config.untilLsn ? parseLsn(config.untilLsn) : undefined;
let announced = false;
for (;;) {
  if (failure !== undefined) break;
  if (!announced && pipeline.phase === 'streaming') {
    announced = true;
    emit({ event: 'streaming' });
  }
  if (until !== undefined && pipeline.checkpoint.durableLsn >= until) break;
  if (stopRequested) break;
  await sleep(until !== undefined ? 5 : 20);
}
const measured = span.stop();
pipeline.stop({ drain: false });
await run.catch(() => undefined);
if (failure !== undefined) {
  emit({ event: 'failed', message: failure instanceof Error ? failure.message : String(failure) });
  process.exit(1);
}
const result: PipelineWorkerResult = {
  ...measured,
  peakRssMiB: selfPeakRssMiB(),
  rows: pipeline.totals.rows,
  retries: pipeline.totals.retries,
};
emit({ event: 'done', ...result });
process.exit(0);
