// Enforces ACCESS_POLICY on every RPC, writes the audit row of every audited method (success or not), and
// turns anything unexpected into a bare Internal. It is the only interceptor that handlers rely on for
// identity: it sets `callerKey` for authenticated calls.
// Anonymous callers can't write the audit table at will: a call refused for want of a valid token is counted
// in metrics (`onUnauthenticated`), not audited row by row, and failures of the public audited methods (login,
// refresh) go to the failure summary — one row per user and IP per window — when their rule names one.
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
  /** Counts failures of methods whose rule names a `failures` action, instead of one audit row each. */
  summarise?: (action: string, userId: string | undefined, ipAddress: string) => void;
  /** Called for every call refused because it carried no valid access token (not audited). */
  onUnauthenticated?: (method: string) => void;
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
    let anonymous = false;
    try {
      if (!rule) throw permissionDenied(`${key} is not open to any role`);
      if (rule.access !== 'public' && rule.access !== 'worker') {
        anonymous = true;
        const caller = await authenticate(deps, req.header.get('authorization'));
        anonymous = false;
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
      if (anonymous && rpcError.code === Code.Unauthenticated) {
        deps.onUnauthenticated?.(key);
        throw rpcError;
      }
      if (rule?.failures && deps.summarise) {
        deps.summarise(rule.failures, note.userId, ipAddress);
        throw rpcError;
      }
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

/**
 * The caller of a bearer token: valid signature and claims, an existing enabled user, and a live session —
 * the token's refresh-token family is neither revoked (logout, password change, reuse) nor past its end.
 * The session check rides on the user lookup this function always made, so it adds no query; revocation
 * takes effect on the very next call (no cache, so no staleness bound to state).
 */
export async function authenticate(
  deps: Pick<AuthInterceptorDeps, 'pool' | 'jwtSecret'>,
  authorization: string | null,
): Promise<Caller> {
  if (!authorization) throw unauthenticated('missing bearer access token in the authorization header');
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization.trim());
  if (!match?.[1]) throw unauthenticated('authorization header is not "Bearer <access token>"');
  const check = await verifyAccessToken(deps.jwtSecret, match[1]);
  if (!check.ok) throw unauthenticated(check.reason);
  if (!isUuid(check.userId)) throw unauthenticated('access token subject is not a user id');
  if (!isUuid(check.sessionId)) throw unauthenticated('access token session is not a session id');
  const result = await deps.pool.query<{
    username: string;
    role: RoleName;
    disabled: boolean;
    session_live: boolean;
  }>(
    `select u.username, u.role, u.disabled,
       exists (select 1 from refresh_tokens r
               where r.family_id = $2 and r.user_id = u.id and r.revoked_at is null
                 and coalesce(r.family_expires_at, 'infinity') > now()) as session_live
     from users u where u.id = $1`,
    [check.userId, check.sessionId],
  );
  const user = result.rows[0];
  if (!user) throw unauthenticated('the user of this access token no longer exists');
  if (user.disabled) throw unauthenticated('the user of this access token is disabled');
  if (!user.session_live)
    throw unauthenticated('the session of this access token has ended (logged out or revoked); log in again');
  // The role comes from the catalog, not the token, so a demotion takes effect on the next call.
  return { userId: check.userId, username: user.username, role: user.role };
}
