// Job leases with fencing epochs. A job is held by at most one worker at a time: a grant takes a row that
// is startable and unleased (or whose lease expired) under `for update skip locked`, so control planes
// sharing one catalog never grant the same job twice, and every grant raises the epoch. Whatever a worker
// does for a job afterwards (credentials, progress) names the epoch, and a stale one is refused.
import type pg from 'pg';

/** Who may be granted jobs: an active worker whose agent last reported itself starting or running. */
export const ELIGIBLE_WORKER = "w.state = 'active' and w.agent_state in ('initialized', 'running')";

export interface LeaseRow {
  id: string;
  lease_worker_id: string;
  lease_epoch: string;
  lease_expires_at: Date;
}

/** Grants one job to `workerId`, or undefined when none is waiting. */
export async function grantJob(
  pool: pg.Pool,
  workerId: string,
  leaseTtlMs: number,
): Promise<LeaseRow | undefined> {
  // Re-checked by PostgreSQL on the locked row (EvalPlanQual): a row another control plane granted between
  // our snapshot and our lock no longer matches and is skipped.
  const result = await pool.query<LeaseRow>(
    `with candidate as (
       select id from jobs
        where state in ('pending', 'running')
          and (lease_worker_id is null or lease_expires_at is null or lease_expires_at < now())
          -- Re-read on every poll: a worker that announced a drain gets nothing more, even on an open poll.
          and exists (select 1 from workers w where w.id = $1 and ${ELIGIBLE_WORKER})
        order by updated_at, id
        for update skip locked
        limit 1)
     update jobs j
        set lease_worker_id = $1,
            lease_epoch = j.lease_epoch + 1,
            lease_expires_at = now() + make_interval(secs => $2::double precision / 1000),
            state = 'running',
            updated_at = now()
       from candidate
      where j.id = candidate.id
     returning j.id, j.lease_worker_id, j.lease_epoch, j.lease_expires_at`,
    [workerId, leaseTtlMs],
  );
  return result.rows[0];
}

/**
 * Extends the leases `workerId` still holds at the given epochs; returns those renewed. A lease that was
 * paused, stopped, deleted or granted to someone else is missing from the answer: the worker must stop it.
 */
export async function renewLeases(
  pool: pg.Pool,
  workerId: string,
  held: ReadonlyArray<{ jobId: string; epoch: bigint }>,
  leaseTtlMs: number,
): Promise<LeaseRow[]> {
  if (held.length === 0) return [];
  const result = await pool.query<LeaseRow>(
    `update jobs j
        set lease_expires_at = now() + make_interval(secs => $2::double precision / 1000)
       from unnest($3::uuid[], $4::bigint[]) as held(id, epoch)
      where j.id = held.id and j.lease_epoch = held.epoch and j.lease_worker_id = $1 and j.state = 'running'
     returning j.id, j.lease_worker_id, j.lease_epoch, j.lease_expires_at`,
    [workerId, leaseTtlMs, held.map((lease) => lease.jobId), held.map((lease) => lease.epoch.toString())],
  );
  return result.rows;
}

/**
 * The job row if `workerId` holds it at `epoch` (expired but not yet granted again still counts: nobody else
 * has it), or undefined when the lease moved on. `lock` takes the row lock, for callers inside a transaction
 * that update the row; `requireUnexpired` also refuses a lease past its expiry.
 */
export async function heldJob<Row extends pg.QueryResultRow>(
  db: pg.Pool | pg.PoolClient,
  jobId: string,
  workerId: string,
  epoch: bigint,
  { lock = false, requireUnexpired = false } = {},
): Promise<Row | undefined> {
  const result = await db.query<Row>(
    `select * from jobs
      where id = $1 and lease_worker_id = $2 and lease_epoch = $3
        ${requireUnexpired ? 'and lease_expires_at > now()' : ''}
      ${lock ? 'for update' : ''}`,
    [jobId, workerId, epoch.toString()],
  );
  return result.rows[0];
}

export async function workerMayTakeJobs(pool: pg.Pool, workerId: string): Promise<boolean> {
  const result = await pool.query(`select 1 from workers w where w.id = $1 and ${ELIGIBLE_WORKER}`, [
    workerId,
  ]);
  return result.rowCount === 1;
}

/** A connection test handed to a worker: the datasource, and the tables to check on a PostgreSQL source. */
export interface ClaimedConnectionTest {
  id: string;
  datasource_id: string;
  tables: Array<{ schema: string; name: string }>;
}

/**
 * Assigns one waiting connection test to `workerId` (each test goes to exactly one worker), or undefined.
 * Tests come before jobs: an operator is waiting on the answer.
 */
export async function claimConnectionTest(
  pool: pg.Pool,
  workerId: string,
): Promise<ClaimedConnectionTest | undefined> {
  const result = await pool.query<ClaimedConnectionTest>(
    `update connection_tests t set state = 'assigned', worker_id = $1
      where t.id = (select id from connection_tests
                     where state = 'pending' and expires_at > now()
                     order by created_at
                     for update skip locked
                     limit 1)
        and exists (select 1 from workers w where w.id = $1 and ${ELIGIBLE_WORKER})
     returning t.id, t.datasource_id, t.tables`,
    [workerId],
  );
  return result.rows[0];
}

/** How long a claimed cleanup waits for its worker before another may take it. */
const CLEANUP_CLAIM_SECONDS = 30;

/** Claims one pending replication cleanup for `workerId`, or undefined. */
export async function claimReplicationCleanup(
  pool: pg.Pool,
  workerId: string,
): Promise<{ job_id: string; source_id: string; slot_name: string; publication_name: string } | undefined> {
  const result = await pool.query<{
    job_id: string;
    source_id: string;
    slot_name: string;
    publication_name: string;
  }>(
    `update job_cleanups c set claimed_by = $1, claimed_at = now(), attempts = c.attempts + 1
      where c.job_id = (select job_id from job_cleanups
                         where done_at is null
                           and (claimed_at is null or claimed_at < now() - make_interval(secs => $2))
                         order by requested_at
                         for update skip locked
                         limit 1)
        and exists (select 1 from workers w where w.id = $1 and ${ELIGIBLE_WORKER})
     returning c.job_id, c.source_id, c.slot_name, c.publication_name`,
    [workerId, CLEANUP_CLAIM_SECONDS],
  );
  return result.rows[0];
}

/** Gives back a lease nobody will use, if it is still this grant (same worker and epoch). */
export async function releaseLease(pool: pg.Pool, lease: LeaseRow): Promise<void> {
  await pool.query(
    `update jobs set lease_worker_id = null, lease_expires_at = null,
                     state = case when state = 'running' then 'pending' else state end
      where id = $1 and lease_worker_id = $2 and lease_epoch = $3`,
    [lease.id, lease.lease_worker_id, lease.lease_epoch],
  );
}

/** Marks workers that stopped heartbeating as offline; their leases expire on their own. */
export async function markSilentWorkersOffline(pool: pg.Pool, silentForMs: number): Promise<number> {
  const result = await pool.query(
    `update workers set state = 'offline'
      where state = 'active'
        and coalesce(last_heartbeat_at, registered_at) < now() - make_interval(secs => $1::double precision / 1000)`,
    [silentForMs],
  );
  return result.rowCount ?? 0;
}
