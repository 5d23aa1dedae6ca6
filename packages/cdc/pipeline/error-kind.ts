// The one table that decides what a failure means: retry automatically with jittered backoff, stop and
// show the operator a one-line solution, or stop for good. Messages are safe to show and log: they come
// from SourceError / StarRocksError (written by us, scrubbed) or are replaced by a generic description.
import { scrubSecrets } from '@sluice/crypto';
import { StarRocksError } from '../sink/starrocks/starrocks-error.ts';
import { SourceError, type SourceErrorCode } from '../source/postgres/source-error.ts';
import { TransformError } from './transforms.ts';

export type ErrorKind = 'transient' | 'operator' | 'fatal';

/** A failure the caller knows is worth retrying (e.g. saving a checkpoint while the control plane restarts). */
export class RetryableError extends Error {
  override name = 'RetryableError';
}

export interface ClassifiedError {
  kind: ErrorKind;
  /** Which side failed; the runner names the datasource from it. */
  side: 'source' | 'sink' | 'job';
  /** Safe to show and log. */
  message: string;
  /** One line for the operator (always set for `operator`). */
  solution: string | undefined;
}

const sourceKinds: Record<SourceErrorCode, ErrorKind> = {
  connection: 'transient',
  overflow: 'operator',
  config: 'operator',
  tls: 'operator',
  auth: 'operator',
  privilege: 'operator',
  table: 'operator',
  slot: 'operator',
  protocol: 'fatal',
};

const sourceSolutions: Record<SourceErrorCode, string> = {
  connection: 'check that the PostgreSQL server is reachable from the worker',
  overflow: "raise the job's max_in_flight_bytes or split the large transaction",
  config: "fix the source datasource's settings",
  tls: "fix the source datasource's ssl_mode or root certificate",
  auth: "update the source datasource's username and password",
  privilege: 'grant the role REPLICATION and SELECT on the replicated tables',
  table: 'give the table a primary key or REPLICA IDENTITY FULL, or remove it from the job',
  slot: 'resync the job so a new replication slot and snapshot are made',
  protocol: 'report this as a bug with the PostgreSQL version',
};

/** SQLSTATEs worth retrying: serialization and deadlock, lock timeout, shutdowns, too many connections. */
const transientStates = /^(08|40001|40P01|55P03|57P0[1-3]|53300|53400)/;
/** node-postgres' own messages when a connection breaks (they carry no code). */
const brokenConnection =
  /^(Connection terminated|Client has encountered a connection error|Query read timeout)/;
/** Network errors from Node. */
const transientCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

export function classifyError(error: unknown): ClassifiedError {
  if (error instanceof StarRocksError) {
    return {
      kind: error.kind,
      side: 'sink',
      message: scrubSecrets(error.message),
      solution:
        error.solution ??
        (error.kind === 'operator'
          ? "check the sink datasource's settings and the StarRocks logs"
          : undefined),
    };
  }
  if (error instanceof SourceError) {
    let kind = sourceKinds[error.code];
    if (kind === 'operator' && error.sqlState && transientStates.test(error.sqlState)) kind = 'transient';
    return {
      kind,
      side: 'source',
      message: scrubSecrets(error.message),
      solution: error.solution ?? (kind === 'transient' ? undefined : sourceSolutions[error.code]),
    };
  }
  if (error instanceof RetryableError) {
    return { kind: 'transient', side: 'job', message: scrubSecrets(error.message), solution: undefined };
  }
  if (error instanceof TransformError) {
    return {
      kind: 'operator',
      side: 'job',
      message: error.message,
      solution: "change the job's exclude_columns or hash_columns",
    };
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (transientCodes.has(code) || transientStates.test(code))) {
    return { kind: 'transient', side: 'job', message: `network error (${code})`, solution: undefined };
  }
  if (error instanceof Error && brokenConnection.test(error.message)) {
    return { kind: 'transient', side: 'job', message: 'a connection broke', solution: undefined };
  }
  return {
    kind: 'fatal',
    side: 'job',
    message: scrubSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(
      0,
      500,
    ),
    solution: 'report this as a bug; restart the job to retry',
  };
}

/** Full-jitter exponential backoff: up to 250 ms × 2^attempt, capped at `capMs` (default 30 s). */
export function retryDelay(attempt: number, capMs = 30_000): number {
  return Math.random() * Math.min(capMs, 250 * 2 ** Math.min(attempt, 12));
}
