// The StarRocks datasource and the MySQL-protocol connection used for DDL and lookups (text-protocol
// `query()` only: server-side prepared statements exist only from StarRocks 3.2). One lazily opened
// connection per sink; a lost connection is reopened on the next statement. Driver errors are translated
// into StarRocksErrors that name the datasource, never the password.
import net from 'node:net';
import tls from 'node:tls';
import mysql from 'mysql2/promise';
import { StarRocksError } from './starrocks-error.ts';

// Every TLS connection to StarRocks verifies the certificate chain (against `ca` or the system CAs) AND that
// the certificate names the host connected to (a DNS SAN for a name, an IP SAN for an address): a certificate
// from a trusted CA for some other name must not capture the sink's password. TLS 1.2 is the floor, not 1.3:
// StarRocks' FE (Java) may not offer 1.3, and the control plane's 1.3-only policy is not process-wide.
export interface StarRocksTlsOptions {
  /** PEM CA certificate(s) to trust instead of the system store. */
  ca?: string | Buffer;
  /** Default true. Only a test may turn verification off (chain and name alike). */
  rejectUnauthorized?: boolean;
}

/** The lowest TLS version spoken to StarRocks (MySQL port and FE/BE HTTPS). */
export const STARROCKS_TLS_MIN_VERSION = 'TLSv1.2';

export interface StarRocksDatasource {
  /** The datasource's name, used in every error message. */
  name: string;
  /** FE host. */
  host: string;
  /** FE MySQL-protocol port (`query_port`), default 9030. */
  queryPort?: number;
  /** FE HTTP port, default 8030, or 8443 (`https_port`) with `ssl`. */
  httpPort?: number;
  user: string;
  password: string;
  /** Target database; created when missing. */
  database: string;
  /**
   * `ssl_enabled`: TLS on the MySQL port and HTTPS to the FE (`true` uses the system CAs). Row data is then
   * never sent in clear: a redirect to a plain-HTTP BE is refused unless `allowPlaintextBeRedirect`.
   */
  ssl?: boolean | StarRocksTlsOptions;
  /** Trusted-network exception: with `ssl`, allow following the FE's 307 to a plain-HTTP BE. Default false. */
  allowPlaintextBeRedirect?: boolean;
  /** Rewrite a redirect to 127.0.0.1/localhost/::1 to the FE host (single-container StarRocks). Default false. */
  rewriteLoopbackRedirect?: boolean;
}

/** `StarRocks datasource "name" (user "u" at host:port)`: how errors refer to the target. */
export function describeDatasource(datasource: StarRocksDatasource, port?: number): string {
  const at = `${datasource.host}:${port ?? datasource.queryPort ?? 9030}`;
  return `StarRocks datasource ${JSON.stringify(datasource.name)} (user ${JSON.stringify(datasource.user)} at ${at})`;
}

/** Resolved TLS options, or undefined when TLS is off. */
export function tlsOptions(datasource: StarRocksDatasource): StarRocksTlsOptions | undefined {
  if (!datasource.ssl) return undefined;
  return datasource.ssl === true ? {} : datasource.ssl;
}

export interface StarRocksConnection {
  /** Runs one text-protocol statement; rows for SELECTs, an empty array otherwise. */
  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

/** A statement that hangs this long is abandoned (the connection is reopened); StarRocks DDL returns fast. */
const QUERY_TIMEOUT_MS = 120_000;

export function createStarRocksConnection(datasource: StarRocksDatasource): StarRocksConnection {
  let current: Promise<mysql.Connection> | undefined;
  const describe = describeDatasource(datasource);

  function open(): Promise<mysql.Connection> {
    const tls = tlsOptions(datasource);
    const port = datasource.queryPort ?? 9030;
    const opening = mysql.createConnection({
      host: datasource.host,
      port,
      ...(tls && net.isIP(datasource.host) ? { stream: () => addressSocket(datasource.host, port) } : {}),
      user: datasource.user,
      password: datasource.password,
      connectTimeout: 15_000,
      multipleStatements: false,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      ...(tls
        ? {
            ssl: {
              ...(tls.ca === undefined ? {} : { ca: tls.ca }),
              rejectUnauthorized: tls.rejectUnauthorized ?? true,
              // mysql2 checks the name only when asked: without this any certificate from a trusted CA
              // would do. It verifies against `host` (IP SANs for an address) before sending credentials.
              verifyIdentity: tls.rejectUnauthorized ?? true,
              minVersion: STARROCKS_TLS_MIN_VERSION,
            },
          }
        : {}),
    });
    const connection = opening.then((opened) => {
      opened.on('error', () => {
        if (current === connection) current = undefined;
      });
      return opened;
    });
    connection.catch(() => {
      if (current === connection) current = undefined;
    });
    return connection;
  }

  return {
    async query<T extends Record<string, unknown>>(sql: string): Promise<T[]> {
      current ??= open();
      const connection = current;
      try {
        const [rows] = await (await connection).query({ sql, rowsAsArray: false, timeout: QUERY_TIMEOUT_MS });
        return Array.isArray(rows) ? (rows as T[]) : [];
      } catch (error) {
        const translated = translateMysqlError(error, describe);
        if (translated.kind !== 'operator' || isConnectionFailure(error)) {
          if (current === connection) current = undefined;
          (await connection.catch(() => undefined))?.destroy();
        }
        throw translated;
      }
    },
    async close(): Promise<void> {
      const connection = current;
      current = undefined;
      const opened = await connection?.catch(() => undefined);
      await opened?.end().catch(() => opened.destroy());
    },
  };
}

/**
 * The TCP socket for a StarRocks FE given by IP address, when TLS is on. mysql2 upgrades its socket with
 * `tls.connect({ socket, servername })` and leaves `servername` unset for an address (SNI carries no IPs), so
 * Node falls back to the socket's `_host` — which `net.connect` records only for names — and then to
 * "localhost": a certificate naming localhost would pass and one with the right IP SAN would fail. Recording
 * the address makes Node check the certificate's IP SANs against it. connection.test.ts covers both cases.
 */
function addressSocket(host: string, port: number): net.Socket {
  // As mysql2 sets up its own socket: no Nagle delay, TCP keep-alive once connected.
  const socket = net.connect({ host, port, noDelay: true, keepAlive: true });
  (socket as net.Socket & { _host?: string })._host = host;
  return socket;
}

interface DriverError {
  code?: string;
  errno?: number;
  sqlMessage?: string;
  message?: string;
  fatal?: boolean;
}

function isConnectionFailure(error: unknown): boolean {
  return (error as DriverError | undefined)?.fatal === true;
}

/** Maps a mysql2 error to a StarRocksError; the message holds StarRocks' own text, never the password. */
export function translateMysqlError(error: unknown, describe: string): StarRocksError {
  const driver = (error ?? {}) as DriverError;
  const code = driver.code ?? '';
  const mismatch = tlsNameMismatch(error, describe);
  if (mismatch) return mismatch;
  if (code === 'ER_ACCESS_DENIED_ERROR' || driver.errno === 1045) {
    return new StarRocksError('operator', `${describe} rejected the credentials`, {
      solution: 'check the user and password stored for this datasource',
      cause: error,
    });
  }
  if (code === 'HANDSHAKE_NO_SSL_SUPPORT') {
    return new StarRocksError('operator', `${describe} does not offer TLS on its MySQL port`, {
      solution: 'enable TLS on the StarRocks FE (v3.4.1+) or turn ssl off for this datasource',
      cause: error,
    });
  }
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|PROTOCOL_)/.test(code)) {
    // PROTOCOL_SEQUENCE_TIMEOUT (a statement over QUERY_TIMEOUT_MS) lands here too.
    return new StarRocksError('transient', `${describe} is unreachable (${code})`, { cause: error });
  }
  if (/certificate|self.signed|CERT_|ERR_TLS/i.test(`${code} ${driver.message ?? ''}`)) {
    return new StarRocksError('operator', `${describe}: TLS certificate not trusted (${code || 'TLS'})`, {
      solution: "give the datasource the CA that signed StarRocks' certificate",
      cause: error,
    });
  }
  const text = (driver.sqlMessage ?? driver.message ?? String(error)).slice(0, 300);
  return new StarRocksError('operator', `${describe}: ${text}`, {
    solution: 'check the StarRocks message above; the sink will retry once it is fixed',
    cause: error,
  });
}

interface NameMismatch {
  code?: string;
  host?: string;
  cert?: { subjectaltname?: string; subject?: { CN?: string | string[] } };
}

/**
 * A StarRocksError when `error` says the certificate (from a trusted CA) names some other host, else
 * undefined. Names the host connected to, the name expected and the names the certificate holds.
 */
export function tlsNameMismatch(error: unknown, describe: string): StarRocksError | undefined {
  const failed = (error ?? {}) as NameMismatch;
  // mysql2 renames every TLS failure during its handshake HANDSHAKE_SSL_ERROR; Node's error keeps host/cert.
  const nameCheck =
    failed.code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
    (failed.code === 'HANDSHAKE_SSL_ERROR' && typeof failed.host === 'string' && failed.cert !== undefined);
  if (!nameCheck) return undefined;
  const expected = failed.host ?? 'the host';
  const names =
    failed.cert?.subjectaltname || (failed.cert?.subject?.CN ? `CN=${failed.cert.subject.CN}` : '');
  return new StarRocksError(
    'operator',
    `${describe}: TLS certificate is not valid for the expected name ${JSON.stringify(expected)}${names ? ` (it names ${names})` : ''}; refusing to send credentials`,
    {
      solution: `connect by a name the StarRocks certificate holds, or reissue the certificate with ${JSON.stringify(expected)} in its subjectAltName`,
      cause: error,
    },
  );
}

/** Node's name check (DNS SANs for names, IP SANs for addresses), for clients that set it explicitly. */
export const checkStarRocksIdentity: typeof tls.checkServerIdentity = (host, cert) =>
  tls.checkServerIdentity(host, cert);
