// Scenario 2, streaming end to end: the WAL of scenario 1 (same sizes, same transaction shapes) written
// while no one reads it, then drained by Sluice's Pipeline — source → transforms → batcher → Stream Load
// into the StarRocks emulator → checkpoint → acknowledge — running as its own process with the worker's
// defaults. Timed from `run()` until the checkpoint covers the last commit; the emulator's row count is
// checked afterwards. The ratio is against scenario 1's pg_recvlogical for the same case, when it ran.
import { defaultBatcherLimits, PostgresSource } from '@sluice/cdc';
import { startStarRocksEmulator } from '@sluice/testkit';
import { round, startSelfSpan } from './measure.ts';
import { startPipelineProcess } from './pipeline-process.ts';
import { type ResultRow, ratio } from './report.ts';
import type { Scenario, ScenarioOutcome } from './scenario.ts';
import { decodeCases } from './streaming-decode.ts';
import {
  CREATE_TABLE,
  createDatabase,
  currentLsn,
  insertRange,
  insertTransactions,
  TABLE,
} from './workload.ts';

export const streamingEndToEnd: Scenario = {
  name: 'streaming-end-to-end',
  title: '2. Streaming end to end (Pipeline → StarRocks emulator, worker defaults)',
  async run(context): Promise<ScenarioOutcome> {
    const emulator = await startStarRocksEmulator({ password: 'bench-emulator' });
    const rows: ResultRow[] = [];
    try {
      for (const decodeCase of decodeCases(context.quick)) {
        const db = await createDatabase(context.postgres, `e2e_${decodeCase.key}`);
        try {
          await db.client.query(CREATE_TABLE);
          const job = `e2e_${decodeCase.key}`;
          // The slot exists before the WAL is written, as in scenario 1; the pipeline then finds it.
          const source = new PostgresSource({ connection: db.connection, job, tables: [TABLE] });
          await source.setup();
          await source.close();
          context.log(`end to end ${decodeCase.label}: writing the WAL`);
          await db.client.query(
            decodeCase.perTransaction >= decodeCase.rows
              ? insertRange(1, decodeCase.rows)
              : insertTransactions(decodeCase.rows, decodeCase.perTransaction),
          );
          const end = await currentLsn(db.client);
          context.log(`end to end ${decodeCase.label}: pipeline`);
          const database = `bench_${decodeCase.key}`;
          // This process serves the emulator: its CPU while the pipeline runs is the emulator's.
          const emulatorSpan = startSelfSpan();
          const worker = startPipelineProcess(
            {
              job,
              connection: db.connection,
              sink: {
                host: emulator.host,
                httpPort: emulator.fePort,
                queryPort: emulator.mysqlPort,
                user: emulator.user,
                password: emulator.password,
                database,
              },
              untilLsn: end,
            },
            600_000,
          );
          const result = await worker.done.finally(() => worker.kill());
          const emulatorUse = emulatorSpan.stop();
          const loaded = emulator.rows(database, TABLE.name).length;
          if (loaded !== decodeCase.rows)
            throw new Error(`the sink holds ${loaded} rows, expected ${decodeCase.rows}`);
          const rate = decodeCase.rows / result.seconds;
          const reference = context.references.get(decodeCase.key);
          const relative = ratio(rate, reference);
          rows.push({
            case: decodeCase.label,
            subject: 'Sluice pipeline → emulator',
            metric: 'rows/s',
            value: round(rate),
            ...(reference !== undefined && { reference: round(reference) }),
            ...(relative !== undefined && { ratio: round(relative) }),
            details: {
              seconds: round(result.seconds),
              cpuUsPerRow: round((result.cpuSeconds * 1e6) / decodeCase.rows),
              peakRssMiB: round(result.peakRssMiB),
              loads: emulator.loads.filter((load) => load.database === database).length,
              retries: result.retries,
              emulatorCpuPercent: round((emulatorUse.cpuSeconds / emulatorUse.seconds) * 100),
            },
          });
        } finally {
          await db.drop();
        }
      }
    } finally {
      await emulator.stop();
    }
    return {
      status: 'ok',
      parameters: {
        rows: decodeCases(context.quick)[0]!.rows,
        batchMaxRows: defaultBatcherLimits.maxRows,
        flushIntervalMs: defaultBatcherLimits.flushIntervalMs,
        // The sink's default: StarRocks wants at most about one load per table per second.
        minLoadIntervalMs: 1_000,
        reference: 'pg_recvlogical of scenario 1',
      },
      rows,
    };
  },
};
