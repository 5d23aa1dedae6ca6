// AuthService: login with a password, refresh-token rotation, logout, who-am-i. Login failures say the same
// thing whether the user is unknown, disabled or the password wrong. Throttling and lockout happen before the
// handler, in auth/login-guard.ts. Every login starts a session (a refresh-token family) with an absolute end;
// its access tokens name it, so logout or a password change ends them too.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { AuthService } from '@sluice/proto';
import { issueAccessToken } from '../auth/access-token.ts';
import { verifyAgainstDummy, verifyPassword } from '../auth/password.ts';
import { familyOf, issueRefreshToken, revokeFamily, spendRefreshToken } from '../auth/refresh-tokens.ts';
import { toUser, type UserRow } from '../auth/users.ts';
import { auditNoteKey, callerKey } from '../call-context.ts';
import { invalidArgument, unauthenticated } from '../errors.ts';
import type { ServiceDeps } from './service-deps.ts';

const LOGIN_FAILED = 'invalid user name or password';
/** Default absolute lifetime of a login session (SLUICE_SESSION_TTL). */
export const DEFAULT_SESSION_TTL_MS = 30 * 86_400_000;

export function createAuthService(deps: ServiceDeps): ServiceImpl<typeof AuthService> {
  const { pool } = deps;
  const sessionTtlMs = deps.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;

  function note(ctx: HandlerContext, userId: string): void {
    const audit = ctx.values.get(auditNoteKey);
    if (audit) {
      audit.userId = userId;
      audit.resourceId = userId;
    }
  }

  async function tokensFor(row: UserRow, family?: { familyId: string; familyExpiresAt: Date }) {
    const refresh = await issueRefreshToken(
      pool,
      row.id,
      deps.refreshTokenTtlMs,
      family ?? { familyTtlMs: sessionTtlMs },
    );
    const access = await issueAccessToken(
      deps.jwtSecret,
      { userId: row.id, role: row.role, sessionId: refresh.familyId },
      deps.accessTokenTtlMs,
    );
    return {
      accessToken: access.token,
      accessTokenExpiresAt: timestampFromDate(access.expiresAt),
      refreshToken: refresh.token,
      refreshTokenExpiresAt: timestampFromDate(refresh.expiresAt),
    };
  }

  async function userById(id: string): Promise<UserRow | undefined> {
    return (await pool.query<UserRow>('select * from users where id = $1', [id])).rows[0];
  }

  return {
    async login(req, ctx) {
      if (req.username === '') throw invalidArgument('username is required');
      if (req.password === '') throw invalidArgument('password is required');
      if (req.username.length > 64 || req.password.length > 1024) throw unauthenticated(LOGIN_FAILED);
      const row = (await pool.query<UserRow>('select * from users where username = $1', [req.username]))
        .rows[0];
      if (row) note(ctx, row.id);
      const ok = row
        ? await verifyPassword(req.password, row.password_hash)
        : await verifyAgainstDummy(req.password);
      if (!row || !ok || row.disabled) throw unauthenticated(LOGIN_FAILED);
      return { ...(await tokensFor(row)), user: toUser(row) };
    },

    async refresh(req, ctx) {
      if (req.refreshToken === '') throw invalidArgument('refresh_token is required');
      if (req.refreshToken.length > 256) throw unauthenticated('unknown refresh token');
      const outcome = await spendRefreshToken(pool, req.refreshToken, sessionTtlMs);
      if (!outcome.ok) {
        if (outcome.reason === 'session_expired')
          throw unauthenticated('this login session reached its maximum lifetime; log in again');
        if (outcome.reason === 'reused')
          throw unauthenticated('refresh token was already used; every session of this login is revoked');
        if (outcome.reason === 'expired') throw unauthenticated('refresh token expired; log in again');
        throw unauthenticated('unknown refresh token');
      }
      note(ctx, outcome.userId);
      const row = await userById(outcome.userId);
      if (!row || row.disabled) {
        await revokeFamily(pool, outcome.familyId);
        throw unauthenticated('the user of this refresh token is disabled or gone');
      }
      return tokensFor(row, outcome);
    },

    async logout(req, ctx) {
      const caller = ctx.values.get(callerKey)!;
      if (req.refreshToken === '') throw invalidArgument('refresh_token is required');
      const family = req.refreshToken.length <= 256 ? await familyOf(pool, req.refreshToken) : undefined;
      // Someone else's token is reported as unknown: it reveals nothing about other sessions.
      if (!family || family.userId !== caller.userId) throw unauthenticated('unknown refresh token');
      await revokeFamily(pool, family.familyId);
      return {};
    },

    async whoAmI(_req, ctx) {
      const caller = ctx.values.get(callerKey)!;
      const row = await userById(caller.userId);
      if (!row) throw unauthenticated('the calling user no longer exists');
      return { user: toUser(row) };
    },
  };
}
