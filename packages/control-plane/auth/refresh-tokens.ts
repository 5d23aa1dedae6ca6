// Rotating opaque refresh tokens. Only a SHA-256 of each value is stored. Each use spends the token and issues
// the next one in the same family; presenting a spent (or revoked) token means it leaked, so the whole family
// is revoked and the legitimate holder has to log in again.
import { randomUUID } from 'node:crypto';
import { randomToken, sha256Hex } from '@sluice/crypto';
import type pg from 'pg';

export interface IssuedRefreshToken {
  token: string;
  expiresAt: Date;
  familyId: string;
}

export async function issueRefreshToken(
  db: pg.Pool | pg.PoolClient,
  userId: string,
  ttlMs: number,
  familyId: string = randomUUID(),
): Promise<IssuedRefreshToken> {
  const token = `sluice_rt_${randomToken(32)}`;
  const expiresAt = new Date(Date.now() + ttlMs);
  await db.query(
    'insert into refresh_tokens (id, family_id, user_id, token_hash, expires_at) values ($1, $2, $3, $4, $5)',
    [randomUUID(), familyId, userId, sha256Hex(token), expiresAt],
  );
  return { token, expiresAt, familyId };
}

export type RefreshOutcome =
  | { ok: true; userId: string; familyId: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'reused' };

/** Spends `token` atomically: of two concurrent uses, exactly one succeeds and the other counts as reuse. */
export async function spendRefreshToken(db: pg.Pool, token: string): Promise<RefreshOutcome> {
  const hash = sha256Hex(token);
  const spent = await db.query<{ user_id: string; family_id: string; expired: boolean }>(
    `update refresh_tokens set used_at = now()
     where token_hash = $1 and used_at is null and revoked_at is null
     returning user_id, family_id, expires_at <= now() as expired`,
    [hash],
  );
  const row = spent.rows[0];
  if (row) {
    if (row.expired) return { ok: false, reason: 'expired' };
    return { ok: true, userId: row.user_id, familyId: row.family_id };
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
