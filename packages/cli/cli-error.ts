// The one error type of the CLI and the exit codes it maps to. Every failure leaves `sluice` through
// `exitCodeFor`, so scripts can tell a typo from a wrong password from a down control plane.
import { Code, ConnectError } from '@connectrpc/connect';
import { scrubSecrets } from '@sluice/crypto';

/** Documented in `sluice --help`; scripts rely on them. */
export const EXIT = {
  ok: 0,
  /** The command ran and found a negative outcome (a failed connection test, a broken audit chain). */
  failed: 1,
  /** Bad flags or arguments, invalid configuration, or input the server rejected as invalid. */
  usage: 2,
  /** Not logged in, wrong credentials, expired session, or a role that may not do this. */
  auth: 3,
  /** The control plane is unreachable, refused TLS, or failed internally. */
  unavailable: 4,
  /** No such job, datasource, worker or user; or the resource is in the wrong state for this. */
  notFound: 5,
} as const;

export const EXIT_CODE_HELP: ReadonlyArray<[number, string]> = [
  [EXIT.ok, 'success'],
  [EXIT.failed, 'the command ran and reports a failure (connection test failed, audit chain broken)'],
  [EXIT.usage, 'usage: unknown command or flag, missing argument, invalid configuration or input'],
  [EXIT.auth, 'authentication or permission: not logged in, wrong password, session expired, role too low'],
  [EXIT.unavailable, 'server: control plane unreachable, TLS refused, internal error, timeout'],
  [EXIT.notFound, 'not found or failed precondition: no such resource, already exists, wrong state'],
];

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}

export function notFoundError(message: string): CliError {
  return new CliError(message, EXIT.notFound);
}

const CODE_EXIT: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: EXIT.usage,
  [Code.OutOfRange]: EXIT.usage,
  [Code.Unauthenticated]: EXIT.auth,
  [Code.PermissionDenied]: EXIT.auth,
  [Code.NotFound]: EXIT.notFound,
  [Code.FailedPrecondition]: EXIT.notFound,
  [Code.AlreadyExists]: EXIT.notFound,
  [Code.Aborted]: EXIT.notFound,
};

/** Exit code and a one-line, scrubbed message for anything thrown by a command. */
export function describeFailure(error: unknown): { exitCode: number; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message };
  if (error instanceof ConnectError) {
    const exitCode = CODE_EXIT[error.code] ?? EXIT.unavailable;
    const text = error.rawMessage || Code[error.code] || 'error';
    if (exitCode === EXIT.unavailable && isTransportFailure(error))
      return { exitCode, message: `control plane unavailable: ${scrubSecrets(causeText(error) ?? text)}` };
    return { exitCode, message: scrubSecrets(text) };
  }
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET)$/.test(code))
    return { exitCode: EXIT.unavailable, message: `control plane unavailable (${code})` };
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: EXIT.failed, message: scrubSecrets(message) };
}

function isTransportFailure(error: ConnectError): boolean {
  return error.code === Code.Unavailable || error.code === Code.Unknown || error.code === Code.Internal;
}

function causeText(error: ConnectError): string | undefined {
  const cause = error.cause as (Error & { code?: string }) | undefined;
  if (!cause || !(cause instanceof Error)) return undefined;
  return cause.code ? `${cause.code}: ${cause.message}` : cause.message;
}
