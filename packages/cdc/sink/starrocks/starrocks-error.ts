// The sink's one error type. `kind` tells the pipeline what to do: retry on its own (`transient`), stop and
// show the operator `solution` (`operator`), or stop for good because retrying can't help (`fatal`).
// Messages name the datasource, user, host and table; they never carry a password or row-data beyond the
// rejected rows StarRocks itself reports.

export type StarRocksErrorKind = 'transient' | 'operator' | 'fatal';

export interface StarRocksErrorDetails {
  /** One line telling the operator what to change; set for `operator` errors. */
  solution?: string;
  /** The underlying error, for logs only. */
  cause?: unknown;
  /** For loads that filtered rows: the rejected rows as StarRocks listed them at `ErrorURL`. */
  rejectedRows?: string[];
  /** The Stream Load label involved, if any. */
  label?: string;
}

export class StarRocksError extends Error {
  override readonly name = 'StarRocksError';
  readonly kind: StarRocksErrorKind;
  readonly solution: string | undefined;
  readonly rejectedRows: string[];
  readonly label: string | undefined;

  constructor(kind: StarRocksErrorKind, message: string, details: StarRocksErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.solution = details.solution;
    this.rejectedRows = details.rejectedRows ?? [];
    this.label = details.label;
  }

  /** True when the pipeline may retry the same work without anyone changing anything. */
  get retryable(): boolean {
    return this.kind === 'transient';
  }
}

export function isStarRocksError(error: unknown): error is StarRocksError {
  return error instanceof StarRocksError;
}
