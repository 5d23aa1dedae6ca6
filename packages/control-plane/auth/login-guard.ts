// Abuse limits on Login, as an interceptor around AuthService/Login only:
//  1. token buckets per client IP and per user name (in this process's memory: O(1), never waits) refuse a
//     caller that tries too fast with ResourceExhausted and a retry-after hint;
//  2. a lockout per user name, kept in the catalog (`login_failures`) so every control plane sharing the
//     catalog enforces it: after `maxFailures` failed logins the name locks for `lockoutMs`, doubling with each
//     lockout in a row (at most 64×); a locked name is refused with Unauthenticated and a retry-after hint,
//     even with the right password.
// Both happen before the handler runs, so no password hash is computed for a throttled or locked attempt.
// Names that don't exist are throttled and locked exactly like names that do: the answers reveal nothing
// about which users exist. The buckets are per process (an attacker reaching k replicas gets k times the
// rate), which the catalog-backed lockout bounds: the number of password guesses per name is capped however
// many replicas there are.
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { sha256Hex } from '@sluice/crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { AuditEntry } from '../audit/audit-log.ts';
import { auditNoteKey, peerKey } from '../call-context.ts';

export interface LoginLimits {
  /** Failed logins of one user name before it locks. */
  maxFailures: number;
  /** The first lockout; each further lockout in a row lasts twice as long, at most 64 times this. */
  lockoutMs: number;
  /** Login attempts per minute from one client IP (also the burst). */
  ipPerMinute: number;
  /** Login attempts per minute for one user name, from anywhere (also the burst). */
  userPerMinute: number;
  /** Failed logins are audited as one summary row per user and IP per this window. */
  auditWindowMs: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  maxFailures: 5,
  lockoutMs: 60_000,
  ipPerMinute: 30,
  userPerMinute: 10,
  auditWindowMs: 60_000,
};

const LOGIN_METHOD = 'sluice.v1.AuthService/Login';
/** Lockout history is forgotten a day after a name's last failure. */
const FORGET_AFTER_MS = 86_400_000;
const MAX_LOCKOUT_FACTOR = 64;

/** Token buckets keyed by string, refilled continuously. Bounded: beyond `maxKeys` the oldest key is dropped. */
export class TokenBuckets {
  readonly #capacity: number;
  readonly #perMs: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMinute: number, maxKeys = 100_000) {
    this.#capacity = perMinute;
    this.#perMs = perMinute / 60_000;
    this.#maxKeys = maxKeys;
  }

  /** Takes one token; when none is left, answers how long until one is, in ms. */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfterMs: number } {
    let bucket = this.#buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(this.#capacity, bucket.tokens + (now - bucket.at) * this.#perMs);
      bucket.at = now;
    } else {
      bucket = { tokens: this.#capacity, at: now };
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      this.#buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / this.#perMs) };
  }
}

/** The catalog side: failures and lockouts per user-name hash. */
export class LoginLockouts {
  readonly #pool: pg.Pool;
  readonly #limits: LoginLimits;

  constructor(pool: pg.Pool, limits: LoginLimits) {
    this.#pool = pool;
    this.#limits = limits;
  }

  /** Milliseconds the name stays locked, or 0. */
  async lockedForMs(nameHash: string): Promise<number> {
    const result = await this.#pool.query<{ ms: string }>(
      `select ceil(extract(epoch from locked_until - now()) * 1000) as ms from login_failures
       where name_hash = $1 and locked_until > now()`,
      [nameHash],
    );
    return result.rows[0] ? Number(result.rows[0].ms) : 0;
  }

  /** Counts one failure; answers the lockout it started, if it started one. */
  async recordFailure(nameHash: string): Promise<{ lockedForMs: number } | undefined> {
    const client = await this.#pool.connect();
    try {
      await client.query('begin');
      await client.query(
        'insert into login_failures (name_hash, last_failure_at) values ($1, now()) on conflict do nothing',
        [nameHash],
      );
      const row = (
        await client.query<{ failures: number; lockouts: number; locked: boolean; stale: boolean }>(
          `select failures, lockouts, coalesce(locked_until > now(), false) as locked,
             last_failure_at < now() - $2 * interval '1 millisecond' as stale
           from login_failures where name_hash = $1 for update`,
          [nameHash, FORGET_AFTER_MS],
        )
      ).rows[0]!;
      let { failures, lockouts } = row;
      if (row.stale) {
        failures = 0;
        lockouts = 0;
      }
      let lockedForMs = 0;
      if (!row.locked) {
        failures += 1;
        if (failures >= this.#limits.maxFailures) {
          lockedForMs = this.#limits.lockoutMs * Math.min(MAX_LOCKOUT_FACTOR, 2 ** lockouts);
          lockouts += 1;
          failures = 0;
        }
      }
      await client.query(
        `update login_failures set failures = $2, lockouts = $3, last_failure_at = now(),
           locked_until = case when $4::bigint > 0 then now() + $4 * interval '1 millisecond' else locked_until end
         where name_hash = $1`,
        [nameHash, failures, lockouts, lockedForMs],
      );
      await client.query('commit');
      return lockedForMs > 0 ? { lockedForMs } : undefined;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** A successful login forgets the name's failures. */
  async clear(nameHash: string): Promise<void> {
    await this.#pool.query('delete from login_failures where name_hash = $1', [nameHash]);
  }
}

export interface LoginGuardDeps {
  pool: pg.Pool;
  limits: LoginLimits;
  logger: Logger;
  audit: (entry: AuditEntry) => Promise<void>;
}

function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function limited(code: Code, message: string, retryAfterMs: number): ConnectError {
  const seconds = retryAfterSeconds(retryAfterMs);
  // `retry-after` (seconds) travels as response metadata: a header for Connect, a trailer for gRPC.
  return new ConnectError(`${message}; try again in ${seconds}s`, code, { 'retry-after': String(seconds) });
}

/**
 * Runs inside the auth interceptor (which audits what this throws as a failed login). Only Login passes through
 * it; every other call goes straight on.
 */
export function createLoginGuard(deps: LoginGuardDeps): Interceptor {
  const byIp = new TokenBuckets(deps.limits.ipPerMinute);
  const byName = new TokenBuckets(deps.limits.userPerMinute);
  const lockouts = new LoginLockouts(deps.pool, deps.limits);
  // Lockouts this process knows of, so an attempt on a locked name costs no catalog query either.
  const lockedUntil = new Map<string, number>();

  return (next) => async (req) => {
    if (`${req.service.typeName}/${req.method.name}` !== LOGIN_METHOD || req.stream) return next(req);
    const username = (req.message as { username?: unknown }).username;
    if (typeof username !== 'string' || username === '' || username.length > 64) return next(req);
    const ip = req.contextValues.get(peerKey).remoteAddress;
    const nameHash = sha256Hex(username);
    const now = Date.now();

    const ipTurn = byIp.take(ip, now);
    if (!ipTurn.ok)
      throw limited(Code.ResourceExhausted, 'too many login attempts from this address', ipTurn.retryAfterMs);
    // A lockout this process already knows of is answered before the name's bucket, so attempts on a locked
    // name don't also use up its rate for when the lockout ends.
    const knownLock = lockedUntil.get(nameHash);
    if (knownLock !== undefined && knownLock > now)
      throw limited(Code.Unauthenticated, 'too many failed logins for this user name', knownLock - now);
    if (knownLock !== undefined) lockedUntil.delete(nameHash);
    const nameTurn = byName.take(nameHash, now);
    if (!nameTurn.ok)
      throw limited(
        Code.ResourceExhausted,
        'too many login attempts for this user name',
        nameTurn.retryAfterMs,
      );
    const lockedMs = await lockouts.lockedForMs(nameHash);
    if (lockedMs > 0) {
      remember(lockedUntil, nameHash, now + lockedMs);
      throw limited(Code.Unauthenticated, 'too many failed logins for this user name', lockedMs);
    }

    try {
      const res = await next(req);
      await lockouts.clear(nameHash);
      return res;
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
        const lock = await lockouts.recordFailure(nameHash);
        if (lock) {
          remember(lockedUntil, nameHash, Date.now() + lock.lockedForMs);
          // One row per lockout of a real account (an unknown name's lockout shows in the failed-login
          // summary). Not awaited, so the answer takes no longer for a real account than for an unknown one.
          const userId = req.contextValues.get(auditNoteKey)?.userId;
          if (userId) {
            deps
              .audit({ action: 'login.locked', outcome: 'denied', userId, resourceId: userId, ipAddress: ip })
              .catch((auditError: unknown) =>
                deps.logger.error({ errorType: (auditError as Error).name }, 'audit append failed'),
              );
          }
          deps.logger.warn({ userId, lockedForMs: lock.lockedForMs }, 'user name locked after failed logins');
        }
      }
      throw error;
    }
  };
}

function remember(map: Map<string, number>, key: string, until: number): void {
  if (map.size >= 100_000) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  map.set(key, until);
}
