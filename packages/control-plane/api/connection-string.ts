// Parses a libpq connection string (URI `postgresql://…` or `key=value …`) into datasource fields. The string
// carries a password, so no error message quotes it: errors name the parameter only. File-path parameters
// (sslrootcert, sslcert, sslkey) are refused: the control plane does not read files for a datasource; the PEM
// goes in the dedicated fields.
import { SslMode } from '@sluice/proto';
import { invalidArgument } from '../errors.ts';

export interface ParsedConnectionString {
  host?: string;
  port?: number;
  database?: string;
  username?: string;
  password?: string;
  sslMode?: SslMode;
}

const SSL_MODES: Record<string, SslMode> = {
  disable: SslMode.DISABLE,
  allow: SslMode.ALLOW,
  prefer: SslMode.PREFER,
  require: SslMode.REQUIRE,
  'verify-ca': SslMode.VERIFY_CA,
  'verify-full': SslMode.VERIFY_FULL,
};

/** Harmless client settings that have no datasource field. */
const IGNORED = new Set([
  'application_name',
  'connect_timeout',
  'fallback_application_name',
  'client_encoding',
]);
const FILE_PARAMETERS = new Set(['sslrootcert', 'sslcert', 'sslkey', 'passfile', 'sslcrl', 'sslcrldir']);

export function parseConnectionString(value: string): ParsedConnectionString {
  if (value.length > 4096) throw invalidArgument('connection_string is longer than 4096 characters');
  const trimmed = value.trim();
  if (trimmed === '') throw invalidArgument('connection_string is empty');
  return /^postgres(ql)?:\/\//i.test(trimmed) ? parseUri(trimmed) : parseKeywords(trimmed);
}

function parseUri(value: string): ParsedConnectionString {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // The URL parser refuses ports above 65535 without saying so; say it.
    const port = /^[a-z]+:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/?]*):(\d+)/i.exec(value)?.[1];
    if (port !== undefined && Number(port) > 65535)
      throw invalidArgument('connection_string port is out of range 1–65535');
    throw invalidArgument('connection_string is not a valid postgresql:// URI');
  }
  const params: Record<string, string> = {};
  if (url.hostname) params.host = decode(url.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (url.port) params.port = url.port;
  if (url.username) params.user = decode(url.username);
  if (url.password) params.password = decode(url.password);
  const database = decode(url.pathname.replace(/^\//, ''));
  if (database) params.dbname = database;
  for (const [key, val] of url.searchParams) params[key] = val;
  return fromParams(params);
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalidArgument('connection_string contains an invalid percent-encoding');
  }
}

/** libpq keyword/value form: `key=value` pairs, values optionally single-quoted with `\` escapes. */
function parseKeywords(value: string): ParsedConnectionString {
  const params: Record<string, string> = {};
  let i = 0;
  const skipSpace = () => {
    while (i < value.length && /\s/.test(value[i] ?? '')) i += 1;
  };
  while (i < value.length) {
    skipSpace();
    if (i >= value.length) break;
    const keyStart = i;
    while (i < value.length && /[A-Za-z_]/.test(value[i] ?? '')) i += 1;
    const key = value.slice(keyStart, i);
    skipSpace();
    if (!key || value[i] !== '=')
      throw invalidArgument('connection_string is neither a postgresql:// URI nor key=value pairs');
    i += 1;
    skipSpace();
    let val = '';
    if (value[i] === "'") {
      i += 1;
      let closed = false;
      while (i < value.length) {
        const ch = value[i];
        if (ch === '\\') {
          val += value[i + 1] ?? '';
          i += 2;
        } else if (ch === "'") {
          i += 1;
          closed = true;
          break;
        } else {
          val += ch;
          i += 1;
        }
      }
      if (!closed) throw invalidArgument(`connection_string has an unterminated quoted value for ${key}`);
    } else {
      while (i < value.length && !/\s/.test(value[i] ?? '')) {
        if (value[i] === '\\') {
          val += value[i + 1] ?? '';
          i += 2;
        } else {
          val += value[i];
          i += 1;
        }
      }
    }
    params[key] = val;
  }
  return fromParams(params);
}

function fromParams(params: Record<string, string>): ParsedConnectionString {
  const parsed: ParsedConnectionString = {};
  for (const [key, val] of Object.entries(params)) {
    switch (key) {
      case 'host':
      case 'hostaddr':
        if (val.includes(','))
          throw invalidArgument('connection_string names several hosts; give one datasource per host');
        parsed.host = val;
        break;
      case 'port': {
        const port = Number(val);
        if (!/^\d+$/.test(val) || port < 1 || port > 65535)
          throw invalidArgument('connection_string port is out of range 1–65535');
        parsed.port = port;
        break;
      }
      case 'dbname':
        parsed.database = val;
        break;
      case 'user':
        parsed.username = val;
        break;
      case 'password':
        parsed.password = val;
        break;
      case 'sslmode': {
        const mode = SSL_MODES[val];
        if (mode === undefined)
          throw invalidArgument(
            'connection_string sslmode must be disable, allow, prefer, require, verify-ca or verify-full',
          );
        parsed.sslMode = mode;
        break;
      }
      default:
        if (FILE_PARAMETERS.has(key))
          throw invalidArgument(
            `connection_string parameter ${key} names a file; pass the PEM in the datasource's certificate fields instead`,
          );
        if (!IGNORED.has(key))
          throw invalidArgument(
            `connection_string parameter ${JSON.stringify(key.slice(0, 40))} is not supported`,
          );
    }
  }
  return parsed;
}
