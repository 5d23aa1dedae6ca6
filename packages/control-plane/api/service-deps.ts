// What every API handler gets from the control plane: the catalog, the keyring for secret columns, the
// settings that shape tokens, and a logger (with redaction).
import type { Keyring } from '@sluice/crypto';
import type pg from 'pg';
import type { Logger } from 'pino';

export interface ServiceDeps {
  pool: pg.Pool;
  keyring: Keyring;
  jwtSecret: Uint8Array;
  accessTokenTtlMs: number;
  refreshTokenTtlMs: number;
  logger: Logger;
  /** Aborted when the control plane shuts down, so long-running calls (watches, waits) end. */
  shutdownSignal: AbortSignal;
}
