// One error type for the PostgreSQL source. Its message is safe to show and to log: it is written by us and
// never contains a password, a connection string or a raw driver message that could echo one. The driver's
// error, when there is one, is kept as a non-enumerable `cause` for debugging (it is not serialised).

/**
 * - `config`: the job or datasource configuration is wrong (bad connection string, PEM, sslmode…).
 * - `connection`: the server could not be reached or the connection broke (retry with backoff).
 * - `tls`: the TLS handshake or certificate verification failed.
 * - `auth`: the server refused the credentials.
 * - `privilege`: the role lacks a privilege or the server a setting; `solution` says what to run.
 * - `table`: a replicated table is missing, or has no primary key or replica identity.
 * - `slot`: the replication slot is missing, busy or unusable.
 * - `protocol`: the server sent something the source does not understand.
 * - `overflow`: a bound on buffered data was exceeded.
 */
export type SourceErrorCode =
  | 'config'
  | 'connection'
  | 'tls'
  | 'auth'
  | 'privilege'
  | 'table'
  | 'slot'
  | 'protocol'
  | 'overflow';

export class SourceError extends Error {
  override name = 'SourceError';
  readonly code: SourceErrorCode;
  /** One line telling the operator what to do, when there is something to do. */
  readonly solution: string | undefined;
  /** The SQLSTATE the server reported, when the error came from the server. */
  readonly sqlState: string | undefined;

  constructor(
    code: SourceErrorCode,
    message: string,
    options: { solution?: string; cause?: unknown; sqlState?: string } = {},
  ) {
    super(options.solution ? `${message} — ${options.solution}` : message);
    this.code = code;
    this.solution = options.solution;
    this.sqlState = options.sqlState;
    if (options.cause !== undefined)
      Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, writable: true });
  }

  /** Whether retrying with backoff can help. */
  get transient(): boolean {
    return this.code === 'connection';
  }
}

/** The SQLSTATE of a server error, if `error` is one. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * A short, safe description of a server error: the server's own message, which names objects but never
 * the client's password or connection string, with any known secret cut out anyway.
 */
export function serverMessage(error: unknown, secrets: Iterable<string> = []): string {
  let message = error instanceof Error ? error.message : String(error);
  for (const secret of secrets) if (secret.length >= 4) message = message.replaceAll(secret, '[REDACTED]');
  return message.slice(0, 500);
}

/** `error` as a SourceError: itself when it is one, else a safe `connection` error saying what failed. */
export function toSourceError(error: unknown, what: string, secrets: Iterable<string> = []): SourceError {
  if (error instanceof SourceError) return error;
  const sqlState = sqlStateOf(error);
  return new SourceError('connection', `${what}: ${serverMessage(error, secrets)}`, {
    cause: error,
    ...(sqlState && { sqlState }),
  });
}
