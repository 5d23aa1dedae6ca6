// The hash-chained audit trail. Each row's hash is SHA-256 over the previous row's hash and the row's own
// canonical fields; appends take a transaction-scoped advisory lock so concurrent writers (several requests,
// several control planes) still form a single chain. Nothing secret is ever passed in: only ids, an action
// name, the caller's IP and the outcome.
import { createHash } from 'node:crypto';
import type pg from 'pg';

export type AuditOutcome = 'success' | 'denied' | 'error';

export interface AuditEntry {
  action: string;
  outcome: AuditOutcome;
  userId?: string;
  workerId?: string;
  resourceId?: string;
  ipAddress?: string;
}

export interface AuditRow {
  seq: number;
  timestamp: Date;
  action: string;
  userId: string;
  workerId: string;
  resourceId: string;
  ipAddress: string;
  outcome: AuditOutcome;
  prevHash: string;
  hash: string;
}

export interface AuditFilter {
  since?: Date;
  until?: Date;
  action?: string;
  userId?: string;
  resourceId?: string;
  /** Only rows with seq below this (pagination, newest first). */
  beforeSeq?: number;
  limit: number;
}

export interface AuditVerification {
  ok: boolean;
  checked: number;
  firstBrokenSeq?: number;
  message: string;
}

/** The hash the first row chains from. */
const GENESIS_HASH = '0'.repeat(64);
const AUDIT_LOCK_KEY = 0x736c61756474; // "sladut"

function auditHash(prevHash: string, row: Omit<AuditRow, 'hash' | 'prevHash'>): string {
  // JSON of a fixed-order array: unambiguous field boundaries, whatever the values contain.
  const canonical = JSON.stringify([
    row.seq,
    row.timestamp.toISOString(),
    row.action,
    row.userId,
    row.workerId,
    row.resourceId,
    row.ipAddress,
    row.outcome,
  ]);
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

export async function appendAudit(pool: pg.Pool, entry: AuditEntry): Promise<AuditRow> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    try {
      await client.query('select pg_advisory_xact_lock($1)', [AUDIT_LOCK_KEY]);
      const last = await client.query<{ seq: string; hash: string }>(
        'select seq, hash from audit_events order by seq desc limit 1',
      );
      const prev = last.rows[0];
      const row: Omit<AuditRow, 'hash' | 'prevHash'> = {
        seq: prev ? Number(prev.seq) + 1 : 1,
        // Millisecond precision: what JavaScript dates hold, so the hash recomputes from what is stored.
        timestamp: new Date(),
        action: entry.action,
        userId: entry.userId ?? '',
        workerId: entry.workerId ?? '',
        resourceId: entry.resourceId ?? '',
        ipAddress: entry.ipAddress ?? '',
        outcome: entry.outcome,
      };
      const prevHash = prev?.hash ?? GENESIS_HASH;
      const hash = auditHash(prevHash, row);
      await client.query(
        `insert into audit_events (seq, ts, action, user_id, worker_id, resource_id, ip_address, outcome, prev_hash, hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          row.seq,
          row.timestamp,
          row.action,
          row.userId,
          row.workerId,
          row.resourceId,
          row.ipAddress,
          row.outcome,
          prevHash,
          hash,
        ],
      );
      await client.query('commit');
      return { ...row, prevHash, hash };
    } catch (error) {
      await client.query('rollback');
      throw error;
    }
  } finally {
    client.release();
  }
}

interface AuditDbRow {
  seq: string;
  ts: Date;
  action: string;
  user_id: string;
  worker_id: string;
  resource_id: string;
  ip_address: string;
  outcome: AuditOutcome;
  prev_hash: string;
  hash: string;
}

function fromDb(row: AuditDbRow): AuditRow {
  return {
    seq: Number(row.seq),
    timestamp: row.ts,
    action: row.action,
    userId: row.user_id,
    workerId: row.worker_id,
    resourceId: row.resource_id,
    ipAddress: row.ip_address,
    outcome: row.outcome,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** Newest first. */
export async function listAudit(pool: pg.Pool, filter: AuditFilter): Promise<AuditRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.since) add('ts >= ?', filter.since);
  if (filter.until) add('ts < ?', filter.until);
  if (filter.action) add('action = ?', filter.action);
  if (filter.userId) add('user_id = ?', filter.userId);
  if (filter.resourceId) add('resource_id = ?', filter.resourceId);
  if (filter.beforeSeq !== undefined) add('seq < ?', filter.beforeSeq);
  params.push(filter.limit);
  const result = await pool.query<AuditDbRow>(
    `select * from audit_events ${where.length ? `where ${where.join(' and ')}` : ''}
     order by seq desc limit $${params.length}`,
    params,
  );
  return result.rows.map(fromDb);
}

/**
 * Walks the chain from the first row, in pages, and reports the first row whose stored hash doesn't match
 * its recomputed one, whose link to the previous row is wrong, or which is missing (a gap in seq).
 */
export async function verifyAudit(pool: pg.Pool): Promise<AuditVerification> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;
  for (;;) {
    const page = await pool.query<AuditDbRow>(
      'select * from audit_events where seq >= $1 order by seq limit 1000',
      [expectedSeq],
    );
    if (page.rows.length === 0) break;
    for (const raw of page.rows) {
      const row = fromDb(raw);
      if (row.seq !== expectedSeq) {
        return {
          ok: false,
          checked,
          firstBrokenSeq: expectedSeq,
          message: `audit event ${expectedSeq} is missing (next present is ${row.seq})`,
        };
      }
      if (row.prevHash !== prevHash) {
        return {
          ok: false,
          checked,
          firstBrokenSeq: row.seq,
          message: `audit event ${row.seq} does not link to the hash of event ${row.seq - 1}`,
        };
      }
      if (auditHash(prevHash, row) !== row.hash) {
        return {
          ok: false,
          checked,
          firstBrokenSeq: row.seq,
          message: `audit event ${row.seq} was altered: its fields no longer match its hash`,
        };
      }
      prevHash = row.hash;
      expectedSeq += 1;
      checked += 1;
    }
  }
  return { ok: true, checked, message: `all ${checked} audit events chain correctly` };
}
