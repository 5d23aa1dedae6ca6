// Scenario 4, freshness: a steady write load at fixed rates for a fixed time while Sluice's Pipeline (its
// own process, worker defaults) streams into the StarRocks emulator. Every 20 ms the writer commits one
// transaction of rate × 20 ms rows with increasing ids and notes when the commit returned; the bench
// watches the emulator's finished loads (one table, loaded in commit order, so N rows visible means ids
// 1..N are) and notes when each commit's rows became visible. Latency = visible − committed.
// "Kept up": the writer held its rate and every row was visible within KEPT_UP_MS of the writes ending.

import { defaultBatcherLimits, PostgresSource } from '@sluice/cdc';
import { type StarRocksEmulator, startStarRocksEmulator } from '@sluice/testkit';
import pg from 'pg';
import { percentiles, round, sleep } from './measure.ts';
import { startPipelineProcess } from './pipeline-process.ts';
import type { ResultRow } from './report.ts';
import type { Scenario, ScenarioOutcome } from './scenario.ts';
import { CREATE_TABLE, createDatabase, insertRange, TABLE } from './workload.ts';

const TICK_MS = 20;
const KEPT_UP_MS = 10_000;

export const freshness: Scenario = {
  name: 'freshness',
  title: '4. Freshness (commit → visible in the emulator, steady write rates)',
  async run(context): Promise<ScenarioOutcome> {
    const rates = context.quick ? [500, 2_000] : [1_000, 5_000, 20_000];
    const seconds = context.quick ? 2 : 20;
    const emulator = await startStarRocksEmulator({ password: 'bench-emulator' });
    const rows: ResultRow[] = [];
    try {
      for (const rate of rates) {
        context.log(`freshness: ${rate} rows/s for ${seconds} s`);
        rows.push(await runRate(context.postgres, emulator, rate, seconds));
      }
    } finally {
      await emulator.stop();
    }
    return {
      status: 'ok',
      parameters: {
        seconds,
        tickMs: TICK_MS,
        flushIntervalMs: defaultBatcherLimits.flushIntervalMs,
        minLoadIntervalMs: 1_000,
        keptUpWithinMs: KEPT_UP_MS,
      },
      rows,
    };
  },
};

async function runRate(
  server: Parameters<typeof createDatabase>[0],
  emulator: StarRocksEmulator,
  rate: number,
  seconds: number,
): Promise<ResultRow> {
  const db = await createDatabase(server, `fresh_${rate}`);
  const job = `fresh_${rate}`;
  const database = `fresh_${rate}`;
  const writer = new pg.Client(db.pgConfig);
  let worker: ReturnType<typeof startPipelineProcess> | undefined;
  try {
    await db.client.query(CREATE_TABLE);
    const source = new PostgresSource({ connection: db.connection, job, tables: [TABLE] });
    await source.setup();
    await source.close();
    worker = startPipelineProcess(
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
      },
      seconds * 1000 + 120_000,
    );
    await worker.streaming;
    await writer.connect();

    // Visible rows over time, from the emulator's finished loads.
    const visible: { rows: number; at: number }[] = [];
    let seenLoads = 0;
    let visibleRows = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const loads = emulator.loads;
        for (; seenLoads < loads.length; seenLoads++) {
          const load = loads[seenLoads]!;
          if (load.database !== database || !/success|publish timeout/i.test(load.status)) continue;
          visibleRows += load.loadedRows;
          visible.push({ rows: visibleRows, at: performance.now() });
        }
        await sleep(2);
      }
    })();

    const commits: { rows: number; at: number }[] = [];
    const perTick = Math.max(1, Math.round((rate * TICK_MS) / 1000));
    const ticks = Math.round((seconds * 1000) / TICK_MS);
    const started = performance.now();
    let written = 0;
    for (let tick = 0; tick < ticks; tick++) {
      const due = started + tick * TICK_MS;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      await writer.query(insertRange(written + 1, written + perTick));
      written += perTick;
      commits.push({ rows: written, at: performance.now() });
    }
    const writeSeconds = (performance.now() - started) / 1000;
    const writesEnded = performance.now();
    while (visibleRows < written && performance.now() - writesEnded < KEPT_UP_MS) await sleep(10);
    watching = false;
    await watch;

    const latencies: number[] = [];
    let cursor = 0;
    for (const commit of commits) {
      while (cursor < visible.length && visible[cursor]!.rows < commit.rows) cursor++;
      const seen = visible[cursor];
      if (!seen) break;
      latencies.push(seen.at - commit.at);
    }
    worker.stop();
    const result = await worker.done;
    const achieved = written / writeSeconds;
    const allVisible = visibleRows >= written;
    const p = percentiles(latencies);
    return {
      case: `${rate.toLocaleString('en-US')} rows/s for ${seconds} s`,
      subject: 'Sluice pipeline, commit → visible',
      metric: 'ms p50',
      value: round(p.p50),
      details: {
        p95Ms: round(p.p95),
        p99Ms: round(p.p99),
        maxMs: round(p.max),
        keptUp: allVisible && achieved >= rate * 0.95,
        writtenRowsPerSecond: round(achieved),
        rowsVisible: visibleRows,
        rowsWritten: written,
        workerCpuPercent: round((result.cpuSeconds / result.seconds) * 100),
        workerPeakRssMiB: round(result.peakRssMiB),
      },
    };
  } finally {
    worker?.kill();
    await writer.end().catch(() => undefined);
    await db.drop();
  }
}
