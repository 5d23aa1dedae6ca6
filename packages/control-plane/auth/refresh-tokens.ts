// Rotating opaque refresh tokens. Only a SHA-256 of each value is stored. Each use spends the token and issues
// the next one in the same family; presenting a spent (or revoked) token means it leaked, so the whole family
// is revoked and the legitimate holder has to log in again. A family also has an absolute end
// (`family_expires_at`, set at login and carried through every rotation): after it, refresh fails and the user
// logs in again, however often the session was refreshed.
import { randomUUID } from 'node:crypto';
import { randomToken, sha256Hex } from '@sluice/crypto';
import type pg from 'pg';

export interface IssuedRefreshToken {
  token: string;
  expiresAt: Date;
  familyId: string;
  familyExpiresAt: Date;
}

/**
 * A new family (a login) when `family` is absent, ending `familyTtlMs` from now; otherwise the next token of
 * that family, which keeps the family's end. A token never outlives its family.
 */
export async function issueRefreshToken(
  db: pg.Pool | pg.PoolClient,
  userId: string,
  ttlMs: number,
  family: { familyId: string; familyExpiresAt: Date } | { familyTtlMs: number },
): Promise<IssuedRefreshToken> {
  const token = `sluice_rt_${randomToken(32)}`;
  const now = Date.now();
  const familyId = 'familyId' in family ? family.familyId : randomUUID();
  const familyExpiresAt = 'familyId' in family ? family.familyExpiresAt : new Date(now + family.familyTtlMs);
  const expiresAt = new Date(Math.min(now + ttlMs, familyExpiresAt.getTime()));
  await db.query(
    `insert into refresh_tokens (id, family_id, user_id, token_hash, expires_at, family_expires_at)
     values ($1, $2, $3, $4, $5, $6)`,
    [randomUUID(), familyId, userId, sha256Hex(token), expiresAt, familyExpiresAt],
  );
  return { token, expiresAt, familyId, familyExpiresAt };
}

export type RefreshOutcome =
  | { ok: true; userId: string; familyId: string; familyExpiresAt: Date }
  | { ok: false; reason: 'unknown' | 'expired' | 'reused' | 'session_expired' };

/**
 * Spends `token` atomically: of two concurrent uses, exactly one succeeds and the other counts as reuse.
 * `familyTtlMs` dates the end of families stored before they had one (from their first token).
 */
export async function spendRefreshToken(
  db: pg.Pool,
  token: string,
  familyTtlMs: number,
): Promise<RefreshOutcome> {
  const hash = sha256Hex(token);
  const spent = await db.query<{
    user_id: string;
    family_id: string;
    expired: boolean;
    family_expires_at: Date;
  }>(
    `update refresh_tokens t set used_at = now()
     where token_hash = $1 and used_at is null and revoked_at is null
     returning user_id, family_id, expires_at <= now() as expired,
       coalesce(family_expires_at,
         (select min(f.created_at) from refresh_tokens f where f.family_id = t.family_id)
           + $2 * interval '1 millisecond') as family_expires_at`,
    [hash, familyTtlMs],
  );
  const row = spent.rows[0];
  if (row) {
    if (row.family_expires_at.getTime() <= Date.now()) {
      await revokeFamily(db, row.family_id);
      return { ok: false, reason: 'session_expired' };
    }
    if (row.expired) return { ok: false, reason: 'expired' };
    return { ok: true, userId: row.user_id, familyId: row.family_id, familyExpiresAt: row.family_expires_at };
  }
  const known = await db.query<{ family_id: string }>(
    'select family_id from refresh_tokens where token_hash = $1',
    [hash],
  );
  const family = known.rows[0]?.family_id;
  if (!family) return { ok: false, reason: 'unknown' };
  await revokeFamily(db, family);
  return { ok: false, reason: 'reused' };
}

export async function revokeFamily(db: pg.Pool | pg.PoolClient, familyId: string): Promise<void> {
  await db.query('update refresh_tokens set revoked_at = now() where family_id = $1 and revoked_at is null', [
    familyId,
  ]);
}

export async function familyOf(
  db: pg.Pool,
  token: string,
): Promise<{ familyId: string; userId: string } | undefined> {
  const result = await db.query<{ family_id: string; user_id: string }>(
    'select family_id, user_id from refresh_tokens where token_hash = $1',
    [sha256Hex(token)],
  );
  const row = result.rows[0];
  return row && { familyId: row.family_id, userId: row.user_id };
}

export async function revokeUserTokens(db: pg.Pool | pg.PoolClient, userId: string): Promise<void> {
  await db.query('update refresh_tokens set revoked_at = now() where user_id = $1 and revoked_at is null', [
    userId,
  ]);
}
