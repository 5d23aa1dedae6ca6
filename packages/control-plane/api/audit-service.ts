// AuditService: read the trail (newest first, filtered, paged by sequence number) and verify its chain.
import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { AuditEventSchema, type AuditService } from '@sluice/proto';
import { listAudit, verifyAudit } from '../audit/audit-log.ts';
import { invalidArgument } from '../errors.ts';
import type { ServiceDeps } from './service-deps.ts';
import { requireMaxLength } from './validation.ts';

export function createAuditService(deps: ServiceDeps): ServiceImpl<typeof AuditService> {
  const { pool } = deps;
  return {
    async listAuditEvents(req) {
      if (req.pageSize > 1000)
        throw invalidArgument(`page_size ${req.pageSize} is above the maximum of 1000`);
      const limit = req.pageSize || 100;
      let beforeSeq: number | undefined;
      if (req.pageToken !== '') {
        if (!/^[1-9]\d{0,15}$/.test(req.pageToken))
          throw invalidArgument('page_token is not one this API issued');
        beforeSeq = Number(req.pageToken);
      }
      const since = req.since ? timestampDate(req.since) : undefined;
      const until = req.until ? timestampDate(req.until) : undefined;
      if (since && until && since >= until) throw invalidArgument('since must be before until');
      const rows = await listAudit(pool, {
        since,
        until,
        action: requireMaxLength('action', req.action, 100) || undefined,
        userId: requireMaxLength('user_id', req.userId, 100) || undefined,
        resourceId: requireMaxLength('resource_id', req.resourceId, 100) || undefined,
        beforeSeq,
        limit,
      });
      const last = rows.at(-1);
      return {
        events: rows.map((row) =>
          create(AuditEventSchema, {
            seq: BigInt(row.seq),
            timestamp: timestampFromDate(row.timestamp),
            action: row.action,
            userId: row.userId,
            workerId: row.workerId,
            resourceId: row.resourceId,
            ipAddress: row.ipAddress,
            outcome: row.outcome,
            hash: row.hash,
          }),
        ),
        nextPageToken: rows.length === limit && last && last.seq > 1 ? String(last.seq) : '',
      };
    },

    async verifyAuditChain() {
      const result = await verifyAudit(pool);
      return {
        ok: result.ok,
        checked: BigInt(result.checked),
        firstBrokenSeq: BigInt(result.firstBrokenSeq ?? 0),
        message: result.message,
      };
    },
  };
}
