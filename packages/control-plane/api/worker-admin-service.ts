// WorkerAdminService: what admins see of workers and the two levers they have. Draining lets a worker finish
// and take no more work; revoking refuses its certificate from the next call and frees its leases at once.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { AgentState, type Worker, type WorkerAdminService, WorkerSchema, WorkerState } from '@sluice/proto';
import type pg from 'pg';
import { auditNoteKey } from '../call-context.ts';
import { failedPrecondition, notFound } from '../errors.ts';
import type { ServiceDeps } from './service-deps.ts';
import { requireId } from './validation.ts';

interface WorkerRow {
  id: string;
  hostname: string;
  version: string;
  labels: Record<string, string>;
  state: 'active' | 'draining' | 'offline' | 'revoked';
  agent_state: string;
  registered_at: Date;
  last_heartbeat_at: Date | null;
  cert_expires_at: Date | null;
  job_ids: string[] | null;
}

const WORKER_STATES = {
  active: WorkerState.ACTIVE,
  draining: WorkerState.DRAINING,
  offline: WorkerState.OFFLINE,
  revoked: WorkerState.REVOKED,
};

const AGENT_STATES: Record<string, AgentState> = {
  initialized: AgentState.INITIALIZED,
  running: AgentState.RUNNING,
  draining: AgentState.DRAINING,
  stopping: AgentState.STOPPING,
  stopped: AgentState.STOPPED,
  failed: AgentState.FAILED,
};

const SELECT = `select w.*, (select array_agg(j.id::text order by j.name) from jobs j where j.lease_worker_id = w.id) as job_ids
  from workers w`;

function toWorker(row: WorkerRow): Worker {
  return create(WorkerSchema, {
    id: row.id,
    hostname: row.hostname,
    version: row.version,
    labels: row.labels,
    state: WORKER_STATES[row.state],
    agentState: AGENT_STATES[row.agent_state] ?? AgentState.UNSPECIFIED,
    registeredAt: timestampFromDate(row.registered_at),
    ...(row.last_heartbeat_at && { lastHeartbeatAt: timestampFromDate(row.last_heartbeat_at) }),
    ...(row.cert_expires_at && { certificateExpiresAt: timestampFromDate(row.cert_expires_at) }),
    jobIds: row.job_ids ?? [],
  });
}

async function loadWorker(db: pg.Pool | pg.PoolClient, id: string): Promise<Worker> {
  const row = (await db.query<WorkerRow>(`${SELECT} where w.id = $1`, [id])).rows[0];
  if (!row) throw notFound('worker', id);
  return toWorker(row);
}

function noteResource(ctx: HandlerContext, id: string): void {
  const note = ctx.values.get(auditNoteKey);
  if (note) note.resourceId = id;
}

export function createWorkerAdminService(deps: ServiceDeps): ServiceImpl<typeof WorkerAdminService> {
  const { pool } = deps;
  return {
    async listWorkers(req) {
      const result = await pool.query<WorkerRow>(
        `${SELECT} ${req.includeRevoked ? '' : "where w.state <> 'revoked'"} order by w.registered_at desc`,
      );
      return { workers: result.rows.map(toWorker) };
    },

    async getWorker(req) {
      return { worker: await loadWorker(pool, requireId('worker', req.id)) };
    },

    async drainWorker(req, ctx) {
      const id = requireId('worker', req.id);
      noteResource(ctx, id);
      const current = (await pool.query<{ state: string }>('select state from workers where id = $1', [id]))
        .rows[0];
      if (!current) throw notFound('worker', id);
      if (current.state === 'revoked')
        throw failedPrecondition(`worker ${id} is revoked; it can't be drained`);
      await pool.query("update workers set state = 'draining' where id = $1 and state <> 'revoked'", [id]);
      return { worker: await loadWorker(pool, id) };
    },

    async revokeWorker(req, ctx) {
      const id = requireId('worker', req.id);
      noteResource(ctx, id);
      const client = await pool.connect();
      try {
        await client.query('begin');
        const current = (
          await client.query<{ state: string }>('select state from workers where id = $1 for update', [id])
        ).rows[0];
        if (!current) throw notFound('worker', id);
        if (current.state === 'revoked') throw failedPrecondition(`worker ${id} is already revoked`);
        await client.query("update workers set state = 'revoked', revoked_at = now() where id = $1", [id]);
        // Its leases end now; running jobs go back to pending so another worker gets them with a higher epoch.
        await client.query(
          `update jobs set lease_worker_id = null, lease_expires_at = null,
             state = case when state = 'running' then 'pending' else state end, updated_at = now()
           where lease_worker_id = $1`,
          [id],
        );
        await client.query('commit');
      } catch (error) {
        await client.query('rollback');
        throw error;
      } finally {
        client.release();
      }
      // Refused at the TLS layer at once here; other control planes see it at their next refresh.
      deps.workerSerials?.revoked(id);
      return { worker: await loadWorker(pool, id) };
    },
  };
}
