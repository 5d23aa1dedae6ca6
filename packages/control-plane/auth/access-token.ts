// Short-lived JWT access tokens (HS256). Verification pins the algorithm, issuer and audience, so a token
// signed with `none`, another algorithm or for another audience is refused. Each token names its session
// (`sid`: the refresh-token family of the login that issued it), so ending the session ends the token.
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { RoleName } from '../call-context.ts';

export const TOKEN_ISSUER = 'sluice-control-plane';
export const TOKEN_AUDIENCE = 'sluice-admin-api';
const ALGORITHM = 'HS256';

export interface AccessTokenClaims {
  userId: string;
  role: RoleName;
  /** The refresh-token family (login session) this token belongs to. */
  sessionId: string;
}

export interface IssuedAccessToken {
  token: string;
  expiresAt: Date;
}

export async function issueAccessToken(
  secret: Uint8Array,
  claims: AccessTokenClaims,
  ttlMs: number,
  now = Date.now(),
): Promise<IssuedAccessToken> {
  const issuedAt = Math.floor(now / 1000);
  const expiresAt = issuedAt + Math.max(1, Math.floor(ttlMs / 1000));
  const token = await new SignJWT({ role: claims.role, sid: claims.sessionId })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setSubject(claims.userId)
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .setJti(randomUUID())
    .sign(secret);
  return { token, expiresAt: new Date(expiresAt * 1000) };
}

export type AccessTokenCheck =
  | { ok: true; userId: string; sessionId: string }
  | { ok: false; reason: string };

/** Never throws: a bad token is a reason, for an Unauthenticated message. */
export async function verifyAccessToken(secret: Uint8Array, token: string): Promise<AccessTokenCheck> {
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: [ALGORITHM],
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    if (typeof payload.sub !== 'string' || payload.sub.length === 0)
      return { ok: false, reason: 'access token has no subject' };
    if (typeof payload.sid !== 'string' || payload.sid.length === 0)
      return { ok: false, reason: 'access token names no session' };
    return { ok: true, userId: payload.sub, sessionId: payload.sid };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { ok: false, reason: 'access token expired' };
    if (error instanceof errors.JWSSignatureVerificationFailed)
      return { ok: false, reason: 'access token signature is invalid' };
    if (error instanceof errors.JOSEAlgNotAllowed)
      return { ok: false, reason: 'access token algorithm is not allowed' };
    if (error instanceof errors.JWTClaimValidationFailed)
      return { ok: false, reason: `access token claim ${error.claim} is invalid` };
    return { ok: false, reason: 'access token is malformed' };
  }
}
