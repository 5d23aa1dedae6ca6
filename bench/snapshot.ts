// Scenario 3, snapshot: one table copied three ways — `COPY bench TO STDOUT` through psql to /dev/null
// (the reference: the server's and libpq's own limit on one connection), then Sluice's snapshot (parallel
// ctid-range COPY under the slot's exported snapshot, parsed into rows) into a null consumer, once as one
// range on one connection and once as several ranges on several connections.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import path from 'node:path';
import type { SnapshotCheckpointStore } from '@sluice/cdc';
import { PostgresSource } from '@sluice/cdc';
import { round, startSelfSpan } from './measure.ts';
import { type ResultRow, ratio } from './report.ts';
import { type BenchContext, type Scenario, skipped } from './scenario.ts';
import {
  type BenchDatabase,
  CREATE_TABLE,
  createDatabase,
  insertRange,
  libpqEnv,
  TABLE,
} from './workload.ts';

const PARALLELISM = 4;
const PARALLEL_RANGES = 8;

export const snapshot: Scenario = {
  name: 'snapshot',
  title: '3. Snapshot (COPY of one table)',
  async run(context) {
    if (!existsSync(path.join(context.postgresBinDir, 'psql')))
      return skipped('no psql (the reference) found');
    const rows = context.quick ? 50_000 : 1_000_000;
    const db = await createDatabase(context.postgres, 'snapshot');
    try {
      context.log(`snapshot: loading ${rows} rows`);
      await db.client.query(CREATE_TABLE);
      await db.client.query(insertRange(1, rows));
      // Sets hint bits and the visibility map now, so no reader pays for that first scan.
      await db.client.query('vacuum (analyze) bench');
      const { rows: sized } = await db.client.query<{ pages: string }>(
        `select (pg_relation_size('bench') / current_setting('block_size')::int8)::text as pages`,
      );
      const pages = Number(sized[0]!.pages);

      context.log('snapshot: psql COPY → /dev/null');
      const reference = await copyWithPsql(context, db);
      context.log('snapshot: Sluice, one range');
      const one = await copyWithSluice(db, 'snap_one', { parallelism: 1, rangePages: 2 ** 31 - 1 });
      context.log(`snapshot: Sluice, ${PARALLEL_RANGES} ranges on ${PARALLELISM} connections`);
      const parallel = await copyWithSluice(db, 'snap_par', {
        parallelism: PARALLELISM,
        rangePages: Math.max(1, Math.ceil(pages / PARALLEL_RANGES)),
      });
      if (one.rows !== rows || parallel.rows !== rows)
        throw new Error(`snapshot copied ${one.rows} and ${parallel.rows} rows, expected ${rows}`);

      // COPY text is the same bytes whoever reads it; Sluice counts them, psql writes them to /dev/null.
      const bytes = one.bytes;
      const referenceRate = rows / reference.seconds;
      const row = (subject: string, seconds: number, extra: Record<string, number> = {}): ResultRow => ({
        case: `${rows.toLocaleString('en-US')} rows, ${(bytes / 1e6).toFixed(0)} MB COPY text`,
        subject,
        metric: 'rows/s',
        value: round(rows / seconds),
        reference: round(referenceRate),
        ratio: round(ratio(rows / seconds, referenceRate) ?? 0),
        details: { MBps: round(bytes / 1e6 / seconds), seconds: round(seconds), ...extra },
      });
      return {
        status: 'ok',
        parameters: { rows, pages, parallelism: PARALLELISM, parallelRanges: PARALLEL_RANGES },
        rows: [
          row('psql COPY → /dev/null (reference)', reference.seconds),
          row('Sluice snapshot, 1 range', one.seconds, {
            cpuUsPerRow: round((one.cpuSeconds * 1e6) / rows),
          }),
          row(`Sluice snapshot, ${PARALLEL_RANGES} ranges × ${PARALLELISM} conns`, parallel.seconds, {
            cpuUsPerRow: round((parallel.cpuSeconds * 1e6) / rows),
          }),
        ],
      };
    } finally {
      await db.drop();
    }
  },
};

async function copyWithPsql(context: BenchContext, db: BenchDatabase): Promise<{ seconds: number }> {
  const devNull = openSync('/dev/null', 'w');
  const started = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        path.join(context.postgresBinDir, 'psql'),
        ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db.libpq, '-c', 'copy bench to stdout'],
        { env: libpqEnv(context.postgres), stdio: ['ignore', devNull, 'pipe'] },
      );
      let errors = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        errors += chunk.toString();
      });
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`psql exited ${code}: ${errors.trim()}`)),
      );
    });
  } finally {
    closeSync(devNull);
  }
  return { seconds: (performance.now() - started) / 1000 };
}

async function copyWithSluice(
  db: BenchDatabase,
  job: string,
  options: { parallelism: number; rangePages: number },
): Promise<{ seconds: number; cpuSeconds: number; rows: number; bytes: number }> {
  const source = new PostgresSource({ connection: db.connection, job, tables: [TABLE] });
  try {
    await source.setup();
    const store: SnapshotCheckpointStore = {
      load: async () => undefined,
      savePlan: async () => undefined,
      completeRange: async () => undefined,
    };
    let rows = 0;
    const span = startSelfSpan();
    const result = await source.snapshot({
      store,
      onBatch: async (batch) => {
        rows += batch.rows.length;
      },
      ...options,
    });
    return { ...span.stop(), rows, bytes: result.bytes };
  } finally {
    await source.close();
  }
}
