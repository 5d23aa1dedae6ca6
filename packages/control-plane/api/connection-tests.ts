// Connection tests run on a worker (the control plane never connects to a datasource itself): a row in
// connection_tests that one eligible worker claims in its long poll (woken by the catalog's notification),
// runs, and completes. Used by TestDatasource, and by CreateJob to check a job's tables before storing it.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ELIGIBLE_WORKER } from '../scheduler/job-leases.ts';

export interface ConnectionTestOutcome {
  ok: boolean;
  message: string;
  workerId: string;
  /** Set whenever the worker connected, also when a table check then failed. */
  serverVersion: string;
  latencyMs: number;
}

export interface ConnectionTestWait {
  /** How long the answer may take in all. */
  waitMs: number;
  /** How long the test may wait for a worker to claim it (default `waitMs`); unclaimed, it is withdrawn. */
  claimMs?: number;
  signal: AbortSignal;
}

/** Whether any worker could pick a test up now (active, not draining, its agent initialized or running). */
export async function workerOnline(pool: pg.Pool): Promise<boolean> {
  const result = await pool.query(`select 1 from workers w where ${ELIGIBLE_WORKER} limit 1`);
  return (result.rowCount ?? 0) > 0;
}

/**
 * Asks a worker to test `datasourceId` (and, for a PostgreSQL source, `tables`) and waits for its answer:
 * undefined when none came in time (a test nobody claimed is withdrawn so no worker runs it later).
 */
export async function runConnectionTest(
  pool: pg.Pool,
  datasourceId: string,
  tables: ReadonlyArray<{ schema: string; name: string }>,
  wait: ConnectionTestWait,
): Promise<ConnectionTestOutcome | undefined> {
  const testId = randomUUID();
  await pool.query(
    `insert into connection_tests (id, datasource_id, tables, expires_at)
     values ($1, $2, $3, now() + make_interval(secs => $4))`,
    [
      testId,
      datasourceId,
      JSON.stringify(tables.map((t) => ({ schema: t.schema, name: t.name }))),
      (wait.claimMs ?? wait.waitMs) / 1000,
    ],
  );
  const started = Date.now();
  const deadline = started + wait.waitMs;
  const claimDeadline = started + (wait.claimMs ?? wait.waitMs);
  try {
    while (Date.now() < deadline && !wait.signal.aborted) {
      const result = await pool.query<{
        state: string;
        ok: boolean | null;
        message: string | null;
        worker_id: string | null;
        server_version: string | null;
        latency_ms: number | null;
      }>(
        'select state, ok, message, worker_id, server_version, latency_ms from connection_tests where id = $1',
        [testId],
      );
      const row = result.rows[0];
      if (row?.state === 'done')
        return {
          ok: row.ok === true,
          message: row.message ?? '',
          workerId: row.worker_id ?? '',
          serverVersion: row.server_version ?? '',
          latencyMs: row.latency_ms ?? 0,
        };
      if (row?.state !== 'assigned' && Date.now() >= claimDeadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return undefined;
  } finally {
    // Nobody claimed it: withdraw it, so a worker that frees up later does not run a test nobody reads.
    await pool.query("delete from connection_tests where id = $1 and state = 'pending'", [testId]);
  }
}
