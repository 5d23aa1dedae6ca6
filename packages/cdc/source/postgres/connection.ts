// Connections to the source with libpq `sslmode` semantics. node-postgres neither falls back between
// plaintext and TLS nor reads `sslmode` the way libpq does, so connection strings are parsed here and `pg`
// only ever receives explicit fields and an explicit `ssl` object (see shared/reference/postgres.md).
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions as TlsOptions } from 'node:tls';
import pg from 'pg';
import { SourceError, serverMessage, sqlStateOf } from './source-error.ts';

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

const sslModes: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** Where and how to connect. Secrets (password, client key) are taken as late as possible. */
export interface ConnectionOptions {
  host: string;
  /** Connect to this IP address but verify the certificate against `host` (libpq's `hostaddr`). */
  hostaddr?: string;
  /** Default 5432. */
  port?: number;
  database: string;
  user: string;
  /** A password, or a function called for every physical connection (open the sealed secret late). */
  password?: string | (() => string | Promise<string>);
  /**
   * Default `verify-full` (the safe choice; libpq's own default is `prefer`). `verify-full` without a
   * root certificate verifies against the system's trusted CAs, like libpq's `sslrootcert=system`.
   */
  sslMode?: SslMode;
  /** Trusted CA certificates, PEM. */
  sslRootCert?: string;
  /** Client certificate, PEM (with `sslClientKey`). */
  sslClientCert?: string;
  /** Client private key, PEM, unencrypted (with `sslClientCert`). */
  sslClientKey?: string;
  /** Shown in pg_stat_activity. Default `sluice`. */
  applicationName?: string;
  /** Give up connecting after this long. Default 15,000 ms. */
  connectTimeoutMs?: number;
}

/** What a single connection is for. */
export interface ConnectOptions {
  /** Open a `replication=database` connection (walsender). */
  replication?: boolean;
  /** Extra session settings sent in the startup packet, e.g. `{ logical_decoding_work_mem: '64kB' }`. */
  settings?: Record<string, string>;
}

/**
 * Session settings on every connection: the value decoder relies on them (ISO dates, UTC timestamps with
 * `+00`, hex bytea, round-trip floats), and they override database or role defaults.
 */
const sessionSettings: Record<string, string> = {
  DateStyle: 'ISO',
  TimeZone: 'UTC',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  client_encoding: 'UTF8',
};

/** Opens connections for one datasource; validates the options once, up front. */
export interface Connector {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly sslMode: SslMode;
  /** A connected client (an `error` listener is attached; later errors surface on the next query). */
  connect(options?: ConnectOptions): Promise<pg.Client>;
  /** Secrets seen so far (passwords returned by the supplier), for scrubbing messages. */
  secrets(): Iterable<string>;
}

export function createConnector(options: ConnectionOptions): Connector {
  const resolved = compile(options);
  const seen = new Set<string>();
  if (typeof options.password === 'string') seen.add(options.password);
  const supplier = options.password;
  const password = async (): Promise<string> => {
    const value = typeof supplier === 'function' ? await supplier() : supplier;
    if (value) seen.add(value);
    return value ?? '';
  };

  async function attempt(ssl: TlsOptions | false, connect: ConnectOptions): Promise<pg.Client> {
    const settings = { ...sessionSettings, ...connect.settings };
    // Cleartext and MD5 password authentication hand the password (or a replayable hash of it) to whoever
    // answers: only over TLS whose server certificate was verified. The server's request is seen on the
    // connection before the client asks for the password (listeners added before pg's run first), so the
    // password supplier refuses instead of returning it, and nothing is sent.
    const verified = ssl !== false && ssl.rejectUnauthorized !== false;
    let refusal: SourceError | undefined;
    const guardedPassword = async (): Promise<string> => {
      if (refusal) throw refusal;
      return password();
    };
    const client = new pg.Client({
      host: resolved.hostaddr ?? resolved.host,
      port: resolved.port,
      database: resolved.database,
      user: resolved.user,
      password: guardedPassword,
      ssl,
      options: startupOptions(settings),
      application_name: resolved.applicationName,
      connectionTimeoutMillis: resolved.connectTimeoutMs,
      keepAlive: true,
      // Over TLS, SCRAM-SHA-256-PLUS when the server offers it: the exchange is bound to this TLS channel,
      // so a man in the middle that terminated TLS can't relay it.
      enableChannelBinding: ssl !== false,
      ...(connect.replication && { replication: 'database' }),
    } as pg.ClientConfig);
    client.on('error', () => undefined);
    const refuse = (method: string) => () => {
      if (verified) return;
      refusal ??= new SourceError(
        'auth',
        `PostgreSQL at ${resolved.host}:${resolved.port} (database ${resolved.database}, user ${resolved.user}) ` +
          `asked for ${method} password authentication over ${ssl === false ? 'a connection without TLS' : 'TLS whose server certificate is not verified'} ` +
          `(sslmode ${resolved.sslMode}); the password was not sent`,
        {
          solution:
            'use sslmode verify-full with the server CA as ssl_root_cert, or switch the server to scram-sha-256 (password_encryption and pg_hba.conf)',
        },
      );
    };
    const events = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
    events.on('authenticationCleartextPassword', refuse('cleartext'));
    events.on('authenticationMD5Password', refuse('MD5'));
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw refusal ?? error;
    }
  }

  return {
    host: resolved.host,
    port: resolved.port,
    database: resolved.database,
    user: resolved.user,
    sslMode: resolved.sslMode,
    secrets: () => seen,
    async connect(connect = {}) {
      const plans = resolved.attempts;
      let firstError: unknown;
      for (let index = 0; index < plans.length; index++) {
        const plan = plans[index]!;
        try {
          return await attempt(plan, connect);
        } catch (error) {
          firstError ??= error;
          const last = index === plans.length - 1;
          // libpq retries the other way after a server-side refusal or (for prefer) a server without TLS;
          // never after a network failure or a certificate problem.
          if (last || !(sqlStateOf(error) || isNoTls(error) || isPasswordDemand(error)))
            throw describeConnectError(error, resolved, seen);
        }
      }
      throw describeConnectError(firstError, resolved, seen);
    },
  };
}

interface Resolved {
  host: string;
  hostaddr: string | undefined;
  port: number;
  database: string;
  user: string;
  sslMode: SslMode;
  applicationName: string;
  connectTimeoutMs: number;
  /** The `ssl` values to try, in order. */
  attempts: (TlsOptions | false)[];
}

function compile(options: ConnectionOptions): Resolved {
  const host = requireText(options.host, 'host');
  const database = requireText(options.database, 'database');
  const user = requireText(options.user, 'user');
  const port = options.port ?? 5432;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new SourceError('config', 'port must be an integer from 1 to 65535');
  if (options.hostaddr !== undefined && !isIP(options.hostaddr))
    throw new SourceError('config', 'hostaddr must be an IP address');
  const sslMode = options.sslMode ?? 'verify-full';
  if (!sslModes.includes(sslMode))
    throw new SourceError('config', `unknown sslmode; use one of ${sslModes.join(', ')}`);

  const ca = options.sslRootCert ? checkCertificates(options.sslRootCert, 'ssl root certificate') : undefined;
  if (Boolean(options.sslClientCert) !== Boolean(options.sslClientKey))
    throw new SourceError('config', 'a client certificate needs its private key, and a key its certificate');
  const cert = options.sslClientCert
    ? checkCertificates(options.sslClientCert, 'ssl client certificate')
    : undefined;
  const key = options.sslClientKey ? checkPrivateKey(options.sslClientKey) : undefined;
  if (cert && key) checkKeyPair(cert, key);
  if (sslMode === 'verify-ca' && !ca)
    throw new SourceError('config', 'sslmode verify-ca needs a root certificate', {
      solution: 'supply the server CA as ssl_root_cert, or use verify-full to trust the system CAs',
    });

  const base: TlsOptions = { minVersion: 'TLSv1.2', ...(cert && key && { cert, key }) };
  if (options.hostaddr && !isIP(host)) base.servername = host;
  const noVerify: TlsOptions = { ...base, rejectUnauthorized: false };
  const verifyCa: TlsOptions = { ...base, ...(ca && { ca }), checkServerIdentity: () => undefined };
  const verifyFull: TlsOptions = {
    ...base,
    ...(ca && { ca }),
    checkServerIdentity: (_name, certificate) => checkServerIdentity(host, certificate),
  };
  const attempts: Record<SslMode, (TlsOptions | false)[]> = {
    disable: [false],
    allow: [false, noVerify],
    prefer: [noVerify, false],
    require: [ca ? verifyCa : noVerify],
    'verify-ca': [verifyCa],
    'verify-full': [verifyFull],
  };
  const connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
  return {
    host,
    hostaddr: options.hostaddr,
    port,
    database,
    user,
    sslMode,
    applicationName: options.applicationName ?? 'sluice',
    connectTimeoutMs,
    attempts: attempts[sslMode],
  };
}

function requireText(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0'))
    throw new SourceError('config', `${name} must be a non-empty string without NUL bytes`);
  return value;
}

function checkCertificates(pem: string, what: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new SourceError('config', `${what} is not a PEM certificate`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new SourceError('config', `${what} is not a valid PEM certificate`);
    }
  }
  return pem;
}

function checkPrivateKey(pem: string): string {
  if (/ENCRYPTED/.test(pem))
    throw new SourceError(
      'config',
      'ssl client key is encrypted; supply it unencrypted (it is sealed at rest)',
    );
  try {
    createPrivateKey(pem);
  } catch {
    throw new SourceError('config', 'ssl client key is not a valid PEM private key');
  }
  return pem;
}

function checkKeyPair(cert: string, key: string): void {
  const fromCert = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!fromCert.equals(fromKey))
    throw new SourceError('config', 'ssl client key does not belong to the ssl client certificate');
}

/** `-c name=value` pairs for the startup packet; spaces and backslashes escaped as PostgreSQL expects. */
function startupOptions(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([name, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name))
        throw new SourceError('config', 'a session setting name may hold only letters, digits, _ and .');
      return `-c ${name}=${value.replace(/[\\ ]/g, (c) => `\\${c}`)}`;
    })
    .join(' ');
}

/** The server asked for a password none was supplied for: a refusal, like libpq's, for allow/prefer. */
function isPasswordDemand(error: unknown): boolean {
  return error instanceof Error && /password must be a (non-empty )?string/.test(error.message);
}

function isNoTls(error: unknown): boolean {
  return error instanceof Error && /does not support SSL/.test(error.message);
}

const tlsCodes = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** A safe SourceError for a failed connection attempt. */
function describeConnectError(error: unknown, to: Resolved, secrets: Iterable<string>): SourceError {
  if (error instanceof SourceError) return error;
  const where = `PostgreSQL at ${to.host}:${to.port}`;
  const code = (error as { code?: unknown } | null)?.code;
  const sqlState = sqlStateOf(error);
  const text = error instanceof Error ? error.message : '';
  if (isNoTls(error))
    return new SourceError('tls', `${where} does not offer TLS and sslmode is ${to.sslMode}`, {
      solution: 'enable ssl on the server, or choose sslmode prefer, allow or disable',
      cause: error,
    });
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /Hostname\/IP does not match/.test(text))
    return new SourceError('tls', `the certificate of ${where} does not name the host ${to.host}`, {
      solution: 'connect using a name the certificate holds, or use sslmode verify-ca',
      cause: error,
    });
  if (typeof code === 'string' && tlsCodes.has(code))
    return new SourceError('tls', `the certificate of ${where} is not trusted (${code})`, {
      solution: 'supply the CA that signed the server certificate as ssl_root_cert',
      cause: error,
    });
  if (sqlState === '28P01')
    return new SourceError('auth', `${where} refused the password of user ${to.user}`, {
      cause: error,
      sqlState,
    });
  if (sqlState === '28000')
    return new SourceError('auth', `${where} refused the connection: ${serverMessage(error, secrets)}`, {
      cause: error,
      sqlState,
    });
  if (sqlState === '3D000')
    return new SourceError('config', `database ${to.database} does not exist on ${where}`, {
      cause: error,
      sqlState,
    });
  if (isPasswordDemand(error))
    return new SourceError('auth', `${where} asked for a password and none was supplied`, { cause: error });
  if (sqlState)
    return new SourceError('connection', `${where}: ${serverMessage(error, secrets)}`, {
      cause: error,
      sqlState,
    });
  const reason = typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : 'connection failed';
  if (/timeout/i.test(text))
    return new SourceError('connection', `cannot reach ${where} (timeout)`, { cause: error });
  return new SourceError('connection', `cannot reach ${where} (${reason})`, { cause: error });
}

/**
 * Parses a libpq connection string — `key=value` pairs or a `postgres://` / `postgresql://` URI — into
 * ConnectionOptions. Only the keys Sluice supports are accepted; certificates are given as PEM through the
 * datasource's secrets, never as file paths. Errors name the offending key, never a value.
 */
export function parseConnectionString(text: string): ConnectionOptions {
  if (typeof text !== 'string' || text.trim() === '')
    throw new SourceError('config', 'connection string is empty');
  const pairs = /^postgres(ql)?:\/\//i.test(text) ? parseUri(text) : parseKeyValue(text);
  const options: Partial<ConnectionOptions> = {};
  for (const [key, value] of pairs) {
    switch (key) {
      case 'host':
        if (value.includes(','))
          throw new SourceError('config', 'connection string names several hosts; give one');
        if (value.startsWith('/'))
          throw new SourceError('config', 'Unix-domain sockets are not supported; give a TCP host');
        options.host = value;
        break;
      case 'hostaddr':
        options.hostaddr = value;
        break;
      case 'port': {
        const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
        if (!(port >= 1 && port <= 65535))
          throw new SourceError('config', 'connection string port must be an integer from 1 to 65535');
        options.port = port;
        break;
      }
      case 'dbname':
        options.database = value;
        break;
      case 'user':
        options.user = value;
        break;
      case 'password':
        options.password = value;
        break;
      case 'sslmode':
        if (!sslModes.includes(value as SslMode))
          throw new SourceError('config', `connection string sslmode must be one of ${sslModes.join(', ')}`);
        options.sslMode = value as SslMode;
        break;
      case 'application_name':
        options.applicationName = value;
        break;
      case 'connect_timeout': {
        if (!/^\d{1,6}$/.test(value))
          throw new SourceError('config', 'connection string connect_timeout must be whole seconds');
        options.connectTimeoutMs = Number(value) * 1000;
        break;
      }
      case 'sslrootcert':
      case 'sslcert':
      case 'sslkey':
        throw new SourceError('config', `connection string key ${key} is not supported`, {
          solution: 'give certificates and keys as PEM in the datasource secrets',
        });
      default:
        throw new SourceError('config', `connection string key ${safeKey(key)} is not supported`);
    }
  }
  if (!options.host) throw new SourceError('config', 'connection string has no host');
  if (!options.user) throw new SourceError('config', 'connection string has no user');
  options.database ??= options.user;
  return options as ConnectionOptions;
}

function safeKey(key: string): string {
  return /^[a-z_]{1,40}$/.test(key) ? key : '(unreadable key)';
}

function parseKeyValue(text: string): [string, string][] {
  const pairs: [string, string][] = [];
  let position = 0;
  const skipSpace = () => {
    while (position < text.length && /\s/.test(text[position]!)) position++;
  };
  for (;;) {
    skipSpace();
    if (position >= text.length) return pairs;
    const keyStart = position;
    while (position < text.length && /[A-Za-z0-9_]/.test(text[position]!)) position++;
    const key = text.slice(keyStart, position);
    skipSpace();
    if (!key || text[position] !== '=')
      throw new SourceError('config', 'connection string is malformed: expected key=value');
    position++;
    skipSpace();
    let value = '';
    if (text[position] === "'") {
      position++;
      for (;;) {
        const c = text[position];
        if (c === undefined)
          throw new SourceError('config', `connection string value of ${safeKey(key)} has no closing quote`);
        if (c === '\\' && position + 1 < text.length) {
          value += text[position + 1];
          position += 2;
        } else if (c === "'") {
          position++;
          break;
        } else {
          value += c;
          position++;
        }
      }
    } else {
      while (position < text.length && !/\s/.test(text[position]!)) {
        if (text[position] === '\\' && position + 1 < text.length) position++;
        value += text[position];
        position++;
      }
    }
    pairs.push([key, value]);
  }
}

function parseUri(text: string): [string, string][] {
  const match = /^postgres(?:ql)?:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i.exec(text);
  if (!match) throw new SourceError('config', 'connection URI is malformed');
  const [, authority = '', path, query] = match;
  const pairs: [string, string][] = [];
  const at = authority.lastIndexOf('@');
  const userInfo = at >= 0 ? authority.slice(0, at) : '';
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  if (userInfo) {
    const colon = userInfo.indexOf(':');
    pairs.push(['user', decode(colon >= 0 ? userInfo.slice(0, colon) : userInfo, 'user')]);
    if (colon >= 0) pairs.push(['password', decode(userInfo.slice(colon + 1), 'password')]);
  }
  if (hostPort) {
    const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(hostPort);
    const plain = /^([^:]*)(?::(.*))?$/.exec(hostPort);
    const [, host, port] = bracketed ?? plain ?? [];
    if (host === undefined) throw new SourceError('config', 'connection URI host is malformed');
    if (host) pairs.push(['host', decode(host, 'host')]);
    if (port !== undefined) pairs.push(['port', port]);
  }
  if (path) pairs.push(['dbname', decode(path, 'dbname')]);
  if (query) {
    for (const part of query.split('&')) {
      if (!part) continue;
      const equals = part.indexOf('=');
      if (equals <= 0) throw new SourceError('config', 'connection URI parameter is malformed');
      const key = decode(part.slice(0, equals), 'parameter');
      pairs.push([key, decode(part.slice(equals + 1), safeKey(key))]);
    }
  }
  return pairs;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new SourceError('config', `connection URI ${what} has a malformed percent-encoding`);
  }
}
