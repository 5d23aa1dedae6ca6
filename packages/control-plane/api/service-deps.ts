// What every API handler gets from the control plane: the catalog, the keyring for secret columns, the
// settings that shape tokens, and a logger (with redaction).
import type { Keyring } from '@sluice/crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { AuditEntry } from '../audit/audit-log.ts';
import type { WorkerSerials } from '../auth/worker-serials.ts';

export interface ServiceDeps {
  pool: pg.Pool;
  keyring: Keyring;
  jwtSecret: Uint8Array;
  accessTokenTtlMs: number;
  refreshTokenTtlMs: number;
  /** Absolute lifetime of a login session (refresh-token family); default 30 days. */
  sessionTtlMs?: number;
  logger: Logger;
  /** Aborted when the control plane shuts down, so long-running calls (watches, waits) end. */
  shutdownSignal: AbortSignal;
  /** SLUICE_DATASOURCE_HOSTS: host patterns datasources may name; undefined = any host. */
  datasourceHosts?: readonly string[];
  /** Appends an audit row of its own (for actions inside a call, such as weakening TLS). */
  audit?: (entry: AuditEntry) => Promise<void>;
  /** Worker certificates refused right after the TLS handshake: a revocation here takes effect at once. */
  workerSerials?: WorkerSerials;
}
