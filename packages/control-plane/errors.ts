// The one place errors become RPC codes. Handlers throw these helpers with a message that says what is wrong
// (naming the field, never echoing a secret); anything else thrown is unexpected: it is logged, scrubbed, and
// the caller gets a bare Internal.
import { Code, ConnectError } from '@connectrpc/connect';
import { scrubSecrets } from '@sluice/crypto';
import type { Logger } from 'pino';

export function invalidArgument(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

export function notFound(kind: string, id: string): ConnectError {
  return new ConnectError(`${kind} ${JSON.stringify(truncate(id))} not found`, Code.NotFound);
}

export function failedPrecondition(message: string): ConnectError {
  return new ConnectError(message, Code.FailedPrecondition);
}

export function alreadyExists(message: string): ConnectError {
  return new ConnectError(message, Code.AlreadyExists);
}

export function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

export function permissionDenied(message: string): ConnectError {
  return new ConnectError(message, Code.PermissionDenied);
}

/** PostgreSQL's unique_violation, for handlers that turn a duplicate name into AlreadyExists. */
export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505';
}

/**
 * Passes a ConnectError through; logs anything else (type, code and a scrubbed message only — a driver error
 * may echo connection settings) and replaces it with Internal without details.
 */
export function toRpcError(error: unknown, logger: Logger, method: string): ConnectError {
  if (error instanceof ConnectError) return error;
  const err = error as { name?: unknown; code?: unknown; message?: unknown } | null;
  logger.error(
    {
      method,
      errorType: typeof err?.name === 'string' ? err.name : typeof error,
      errorCode: typeof err?.code === 'string' ? err.code : undefined,
      detail: typeof err?.message === 'string' ? scrubSecrets(err.message).slice(0, 300) : undefined,
    },
    'unexpected error in RPC handler',
  );
  return new ConnectError('internal error', Code.Internal);
}

/** Shortens user input quoted back in messages, so a huge value can't flood a response or a log. */
export function truncate(value: string, max = 64): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
