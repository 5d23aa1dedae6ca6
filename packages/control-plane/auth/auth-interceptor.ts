// Enforces ACCESS_POLICY on every RPC, writes the audit row of every audited method (success or not), and
// turns anything unexpected into a bare Internal. It is the only interceptor that handlers rely on for
// identity: it sets `callerKey` for authenticated calls.
import { Code, type ConnectError, type Interceptor } from '@connectrpc/connect';
import type pg from 'pg';
import type { Logger } from 'pino';
import { isUuid } from '../api/validation.ts';
import type { AuditOutcome } from '../audit/audit-log.ts';
import {
  type AuditNote,
  auditNoteKey,
  type Caller,
  callerKey,
  peerKey,
  type RoleName,
} from '../call-context.ts';
import { permissionDenied, toRpcError, unauthenticated } from '../errors.ts';
import { ACCESS_POLICY, ROLE_RANK } from './access-policy.ts';
import { verifyAccessToken } from './access-token.ts';

export interface AuthInterceptorDeps {
  pool: pg.Pool;
  jwtSecret: Uint8Array;
  logger: Logger;
  audit: (entry: {
    action: string;
    outcome: AuditOutcome;
    userId?: string;
    workerId?: string;
    resourceId?: string;
    ipAddress?: string;
  }) => Promise<void>;
}

export function createAuthInterceptor(deps: AuthInterceptorDeps): Interceptor {
  return (next) => async (req) => {
    const key = `${req.service.typeName}/${req.method.name}`;
    const rule = ACCESS_POLICY[key];
    const note: AuditNote = {};
    req.contextValues.set(auditNoteKey, note);
    const ipAddress = req.contextValues.get(peerKey).remoteAddress;
    const writeAudit = async (outcome: AuditOutcome) => {
      if (!rule?.audit) return;
      await deps.audit({ action: rule.audit, outcome, ipAddress, ...note });
    };
    try {
      if (!rule) throw permissionDenied(`${key} is not open to any role`);
      if (rule.access !== 'public' && rule.access !== 'worker') {
        const caller = await authenticate(deps, req.header.get('authorization'));
        note.userId = caller.userId;
        if (rule.access !== 'authenticated' && ROLE_RANK[caller.role] < ROLE_RANK[rule.access]) {
          throw permissionDenied(
            `${req.method.name} needs role ${rule.access}; user has role ${caller.role}`,
          );
        }
        req.contextValues.set(callerKey, caller);
      }
      const res = await next(req);
      await writeAudit('success');
      if (!res.stream) return res;
      // Errors thrown while a server stream runs bypass this try block; map them the same way.
      const messages = res.message;
      const logger = deps.logger;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            throw toRpcError(error, logger, key);
          }
        })(),
      };
    } catch (error) {
      const rpcError = toRpcError(error, deps.logger, key);
      await writeAudit(outcomeOf(rpcError)).catch((auditError: unknown) => {
        deps.logger.error(
          { action: rule?.audit, errorType: (auditError as Error).name },
          'audit append failed',
        );
      });
      throw rpcError;
    }
  };
}

function outcomeOf(error: ConnectError): AuditOutcome {
  return error.code === Code.Unauthenticated || error.code === Code.PermissionDenied ? 'denied' : 'error';
}

async function authenticate(deps: AuthInterceptorDeps, authorization: string | null): Promise<Caller> {
  if (!authorization) throw unauthenticated('missing bearer access token in the authorization header');
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization.trim());
  if (!match?.[1]) throw unauthenticated('authorization header is not "Bearer <access token>"');
  const check = await verifyAccessToken(deps.jwtSecret, match[1]);
  if (!check.ok) throw unauthenticated(check.reason);
  if (!isUuid(check.userId)) throw unauthenticated('access token subject is not a user id');
  const result = await deps.pool.query<{ username: string; role: RoleName; disabled: boolean }>(
    'select username, role, disabled from users where id = $1',
    [check.userId],
  );
  const user = result.rows[0];
  if (!user) throw unauthenticated('the user of this access token no longer exists');
  if (user.disabled) throw unauthenticated('the user of this access token is disabled');
  // The role comes from the catalog, not the token, so a demotion takes effect on the next call.
  return { userId: check.userId, username: user.username, role: user.role };
}
