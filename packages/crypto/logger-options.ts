// The pino settings every Sluice service shares. Redaction by path alone leaks (paths are exact and
// case-sensitive, `*` covers one level, and messages are never looked at), so the paths are only the first
// layer: log objects are also scrubbed by key name at any depth, every string goes through scrubSecrets,
// errors keep type/code/message only, and the finished line is scrubbed once more before it is written.
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import { scrubSecrets } from './scrub-secrets.ts';

const REDACTED = '[REDACTED]';

const SECRET_FIELDS = [
  'password',
  'passwd',
  'secret',
  'token',
  'key',
  'privateKey',
  'keyPem',
  'apiKey',
  'authorization',
  'cookie',
  'dsn',
  'connectionString',
  'ssl_client_key',
  'sslkey',
  'sslpassword',
  'clientSecret',
  'bootstrapToken',
  'accessToken',
  'refreshToken',
  'credentials',
] as const;

/** pino `redact.paths`: the secret field names at the top level and up to three levels down, plus headers. */
export const LOG_REDACT_PATHS: readonly string[] = Object.freeze([
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`, `*.*.*.${field}`]),
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
]);

// Field names compared lower-cased with separators removed, so `Password`, `PASSWORD` and `pass_word` match.
const SECRET_NAMES = new Set([
  ...SECRET_FIELDS.map(normalizeFieldName),
  'pwd',
  'passphrase',
  'setcookie',
  'connstring',
  'credential',
  'databaseurl',
]);
const SECRET_SUFFIXES = [
  'password',
  'secret',
  'token',
  'privatekey',
  'apikey',
  'encryptionkey',
  'passphrase',
];
const MAX_DEPTH = 10;

/** pino options for a service or tool named `name`; `level` defaults to `info`. */
export function loggerOptions(name: string, level = 'info'): LoggerOptions {
  return {
    name,
    level,
    redact: { paths: [...LOG_REDACT_PATHS], censor: REDACTED },
    serializers: { err: serializeError, error: serializeError },
    formatters: {
      log: (object) => scrubObject(object),
      bindings: (bindings) => scrubObject(bindings),
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, scrubLogArguments(args) as Parameters<typeof method>);
      },
      // The last net: whatever reached the line (a message built some other way) is scrubbed as text.
      streamWrite: (line) => scrubSecrets(line),
    },
  };
}

/** A pino logger with the shared options, writing to `destination` (default stdout). */
export function createLogger(
  name: string,
  opts: { level?: string; destination?: DestinationStream } = {},
): Logger {
  const options = loggerOptions(name, opts.level);
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}

function scrubLogArguments(args: unknown[]): unknown[] {
  const [first, ...rest] = args;
  const scrubbed = rest.map((arg) => scrubValue(arg, 0, new WeakSet()));
  if (first instanceof Error) {
    // pino would take the message from the raw error; give it the scrubbed one instead.
    return [{ err: first }, ...(scrubbed.length > 0 ? scrubbed : [scrubSecrets(first.message)])];
  }
  if (typeof first === 'string') return [scrubSecrets(first), ...scrubbed];
  if (typeof first === 'object' && first !== null && scrubbed.length === 0) {
    const err = (first as { err?: unknown }).err;
    if (err instanceof Error && (first as { msg?: unknown }).msg === undefined) {
      return [first, scrubSecrets(err.message)];
    }
  }
  return [first, ...scrubbed];
}

function scrubObject(object: Record<string, unknown>): Record<string, unknown> {
  return scrubValue(object, 0, new WeakSet()) as Record<string, unknown>;
}

function scrubValue(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  if (value instanceof Error) return serializeError(value);
  // Raw bytes in a log are more likely key material than anything a reader needs.
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  // Secret, Date and friends decide their own JSON form; scrub what they produce.
  if (typeof toJSON === 'function') return scrubValue(toJSON.call(value), depth + 1, seen);
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1, seen));
  if (value instanceof Map) {
    return scrubValue(Object.fromEntries([...value].map(([k, v]) => [String(k), v])), depth + 1, seen);
  }
  const copy: Record<string, unknown> = {};
  for (const [field, item] of Object.entries(value)) {
    copy[field] = isSecretField(field) && item != null ? REDACTED : scrubValue(item, depth + 1, seen);
  }
  return copy;
}

interface SerializedError {
  type: string;
  message: string;
  code?: string | number;
}

/** Keeps an error's type, code and scrubbed message; stack, cause and driver fields (which echo DSNs) go. */
function serializeError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) {
    return typeof error === 'string' ? scrubSecrets(error) : error;
  }
  const { name, type, message, code } = error as {
    name?: unknown;
    type?: unknown;
    message?: unknown;
    code?: unknown;
  };
  const serialized: SerializedError = {
    type: typeof type === 'string' ? type : typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? scrubSecrets(message) : '',
  };
  if (typeof code === 'string' || typeof code === 'number') serialized.code = code;
  return serialized;
}

function isSecretField(field: string): boolean {
  const name = normalizeFieldName(field);
  // Plurals (`tokens`, `passwords`) hold lists of the same secrets; `keys` stays, it usually means columns.
  const singular = name.endsWith('s') ? name.slice(0, -1) : name;
  return SECRET_NAMES.has(name) || SECRET_SUFFIXES.some((suffix) => singular.endsWith(suffix));
}

function normalizeFieldName(field: string): string {
  return field.toLowerCase().replace(/[^a-z0-9]/g, '');
}
