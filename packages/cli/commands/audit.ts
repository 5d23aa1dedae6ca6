// `sluice audit list|verify`: the hash-chained audit trail.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AuditEventSchema, AuditService, VerifyAuditChainResponseSchema } from '@sluice/proto';
import { usageError } from '../cli-error.ts';
import { connect } from '../client.ts';
import { type CommandSpec, integerFlag, stringFlag } from '../command-table.ts';
import { messageJson, printJson, println, table, when } from '../output.ts';

function instant(flag: string, value: string | undefined) {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw usageError(`--${flag} must be a date such as 2026-01-31T12:00:00Z`);
  return timestampFromDate(date);
}

export const auditCommand: CommandSpec = {
  name: 'audit',
  summary: 'The hash-chained audit trail',
  subcommands: [
    {
      name: 'list',
      summary: 'List audit events, newest first',
      flags: {
        action: { type: 'string', value: 'ACTION', description: 'only this action, e.g. datasource.create' },
        user: { type: 'string', value: 'ID', description: 'only this user id' },
        resource: { type: 'string', value: 'ID', description: 'only this resource id' },
        since: { type: 'string', value: 'TIME', description: 'events at or after this instant (ISO 8601)' },
        until: { type: 'string', value: 'TIME', description: 'events before this instant (ISO 8601)' },
        limit: { type: 'string', value: 'N', default: '100', description: 'at most N events (max 1000)' },
      },
      async run(context) {
        const since = instant('since', stringFlag(context.flags, 'since'));
        const until = instant('until', stringFlag(context.flags, 'until'));
        const pageSize = integerFlag(context.flags, 'limit', { min: 1, max: 1000 }) ?? 100;
        const connection = await connect(context);
        const { events } = await connection.client(AuditService).listAuditEvents({
          action: stringFlag(context.flags, 'action') ?? '',
          userId: stringFlag(context.flags, 'user') ?? '',
          resourceId: stringFlag(context.flags, 'resource') ?? '',
          pageSize,
          ...(since && { since }),
          ...(until && { until }),
        });
        if (context.json) printJson(context, { events: events.map((e) => messageJson(AuditEventSchema, e)) });
        else if (events.length === 0) println(context, 'no events');
        else
          println(
            context,
            table([
              ['SEQ', 'TIME', 'ACTION', 'OUTCOME', 'ACTOR', 'RESOURCE', 'IP'],
              ...events.map((e) => [
                String(e.seq),
                when(e.timestamp),
                e.action,
                e.outcome,
                e.userId
                  ? `user ${e.userId.slice(0, 8)}`
                  : e.workerId
                    ? `worker ${e.workerId.slice(0, 8)}`
                    : '-',
                e.resourceId || '-',
                e.ipAddress || '-',
              ]),
            ]),
          );
        return 0;
      },
    },
    {
      name: 'verify',
      summary: 'Recompute the hash chain (admin); exit 1 when a link is broken',
      async run(context) {
        const connection = await connect(context);
        const result = await connection.client(AuditService).verifyAuditChain({});
        if (context.json) printJson(context, messageJson(VerifyAuditChainResponseSchema, result));
        else if (result.ok) println(context, `audit chain intact: ${result.checked} events checked`);
        else println(context, `audit chain BROKEN at event ${result.firstBrokenSeq}: ${result.message}`);
        return result.ok ? 0 : 1;
      },
    },
  ],
};
