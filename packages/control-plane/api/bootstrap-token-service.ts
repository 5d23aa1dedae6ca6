// BootstrapTokenService: single-use tokens a worker exchanges for its identity (WorkerService.Register).
// The value is random, shown once, stored as a SHA-256; it expires (default 15 minutes) and can be revoked
// while unused.
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { randomToken, sha256Hex } from '@sluice/crypto';
import { type BootstrapToken, BootstrapTokenSchema, type BootstrapTokenService } from '@sluice/proto';
import { auditNoteKey, callerKey } from '../call-context.ts';
import { failedPrecondition, invalidArgument, notFound } from '../errors.ts';
import type { ServiceDeps } from './service-deps.ts';
import { requireId, requireLabels, requireMaxLength } from './validation.ts';

export const BOOTSTRAP_TOKEN_PREFIX = 'sluice_bt_';
const DEFAULT_TTL_SECONDS = 900;
const MAX_TTL_SECONDS = 86_400;

interface TokenRow {
  id: string;
  description: string;
  labels: Record<string, string>;
  expires_at: Date;
  used_at: Date | null;
  used_by_worker_id: string | null;
  revoked_at: Date | null;
  created_at: Date;
}

function toToken(row: TokenRow): BootstrapToken {
  return create(BootstrapTokenSchema, {
    id: row.id,
    description: row.description,
    labels: row.labels,
    expiresAt: timestampFromDate(row.expires_at),
    ...(row.used_at && { usedAt: timestampFromDate(row.used_at) }),
    usedByWorkerId: row.used_by_worker_id ?? '',
    revoked: row.revoked_at !== null,
    createdAt: timestampFromDate(row.created_at),
  });
}

/** The hash under which a presented token value is looked up (WorkerService.Register). */
export function bootstrapTokenHash(value: string): string {
  return sha256Hex(value);
}

export function createBootstrapTokenService(deps: ServiceDeps): ServiceImpl<typeof BootstrapTokenService> {
  const { pool } = deps;
  return {
    async createBootstrapToken(req, ctx) {
      if (req.ttlSeconds > MAX_TTL_SECONDS)
        throw invalidArgument(`ttl_seconds ${req.ttlSeconds} is above the maximum of ${MAX_TTL_SECONDS}`);
      const ttl = req.ttlSeconds || DEFAULT_TTL_SECONDS;
      const description = requireMaxLength('description', req.description, 200);
      const labels = requireLabels('labels', req.labels);
      const id = randomUUID();
      const note = ctx.values.get(auditNoteKey);
      if (note) note.resourceId = id;
      const secret = `${BOOTSTRAP_TOKEN_PREFIX}${randomToken(32)}`;
      const result = await pool.query<TokenRow>(
        `insert into bootstrap_tokens (id, token_hash, description, labels, expires_at, created_by)
         values ($1, $2, $3, $4, now() + make_interval(secs => $5), $6) returning *`,
        [
          id,
          bootstrapTokenHash(secret),
          description,
          JSON.stringify(labels),
          ttl,
          ctx.values.get(callerKey)?.userId,
        ],
      );
      return { token: toToken(result.rows[0]!), secret };
    },

    async listBootstrapTokens() {
      const result = await pool.query<TokenRow>(
        'select * from bootstrap_tokens order by created_at desc, id',
      );
      return { tokens: result.rows.map(toToken) };
    },

    async revokeBootstrapToken(req, ctx) {
      const id = requireId('bootstrap token', req.id);
      const note = ctx.values.get(auditNoteKey);
      if (note) note.resourceId = id;
      const row = (await pool.query<TokenRow>('select * from bootstrap_tokens where id = $1', [id])).rows[0];
      if (!row) throw notFound('bootstrap token', id);
      if (row.used_at)
        throw failedPrecondition(`bootstrap token ${id} was already used; revoke the worker instead`);
      if (row.revoked_at) throw failedPrecondition(`bootstrap token ${id} is already revoked`);
      await pool.query(
        'update bootstrap_tokens set revoked_at = now() where id = $1 and revoked_at is null',
        [id],
      );
      return {};
    },
  };
}
