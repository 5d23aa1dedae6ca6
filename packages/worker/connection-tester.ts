// Runs a connection test handed out by the control plane (which never connects to customer databases
// itself): opens the datasource's sealed secrets, connects for real, and answers with a classified, scrubbed
// message — never a raw driver error, which may echo a connection string. A PostgreSQL test that names tables
// also checks them as a job would replicate them (exists, readable, has a usable key); such a refusal still
// carries the server version, which tells it apart from a connection that failed.
// A connection test is also a probe an API user aims from the worker's network, so it answers no more than
// the operator needs: a port outside 1–65535, or the control plane's (or this worker's metrics) own address,
// is refused before connecting; a port that refuses and one that drops packets (closed vs filtered) or a host
// that is unreachable all answer the same "could not connect", with no latency, and only once the connect
// timeout has passed — a refusal answered at once would tell a closed port from a filtered one by time.
import { checkReplicableTables, classifyError, createConnector, createStarRocksSink } from '@sluice/cdc';
import type { ConnectionTest, Datasource, DatasourceSecrets } from '@sluice/proto';
import { sinkDatasource, sourceConnection } from './datasource-options.ts';

export interface ConnectionTestResult {
  ok: boolean;
  message: string;
  serverVersion: string;
  latencyMs: number;
}

export type ConnectionTester = (
  test: ConnectionTest,
  secrets: DatasourceSecrets,
) => Promise<ConnectionTestResult>;

export interface ConnectionTesterOptions {
  /** Addresses a test may never aim at: the control plane's URL (or host:port), this worker's metrics listener. */
  ownAddresses?: readonly string[];
  /** Connect timeout per attempt, in ms (default 10,000). */
  connectTimeoutMs?: number;
}

/** The StarRocks MySQL-port connect timeout (packages/cdc/sink/starrocks/connection.ts), in ms. */
const STARROCKS_CONNECT_TIMEOUT_MS = 15_000;

/** Refused before connecting, in the operator's words. */
class RefusedTarget extends Error {}

export function createConnectionTester(options: ConnectionTesterOptions = {}): ConnectionTester {
  const own = (options.ownAddresses ?? []).map(parseAddress).filter((address) => address !== undefined);
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  return (test, secrets) => runTest(test, secrets, own, connectTimeoutMs);
}

/** The tester with no own addresses to refuse (the worker passes them through createConnectionTester). */
export const testConnection: ConnectionTester = createConnectionTester();

async function runTest(
  test: ConnectionTest,
  secrets: DatasourceSecrets,
  own: readonly Address[],
  connectTimeoutMs: number,
): Promise<ConnectionTestResult> {
  const datasource = test.datasource;
  const started = performance.now();
  let serverVersion = '';
  let host = '';
  try {
    if (!datasource) throw new Error('the connection test names no datasource');
    const target = targetOf(datasource);
    host = target?.host ?? '';
    if (target) checkTarget(target, own);
    if (datasource.config.case === 'postgres') {
      const client = await createConnector({
        ...sourceConnection(datasource, secrets),
        connectTimeoutMs,
      }).connect();
      try {
        serverVersion = (await client.query<{ server_version: string }>('show server_version')).rows[0]!
          .server_version;
        if (test.tables.length > 0)
          await checkReplicableTables(
            client,
            test.tables.map((table) => ({ schema: table.schema, name: table.name })),
          );
      } finally {
        await client.end().catch(() => undefined);
      }
    } else if (datasource.config.case === 'starrocks') {
      const sink = createStarRocksSink({ datasource: sinkDatasource(datasource, secrets) });
      try {
        serverVersion = await sink.version();
      } finally {
        await sink.close().catch(() => undefined);
      }
    } else {
      throw new Error('the datasource has no PostgreSQL or StarRocks settings');
    }
    const latencyMs = Math.round(performance.now() - started);
    const checked =
      test.tables.length > 0 ? ` (${plural(test.tables.length, 'table')} can be replicated)` : '';
    return { ok: true, message: `connected to ${datasource.name}${checked}`, serverVersion, latencyMs };
  } catch (error) {
    const name = datasource?.name ?? 'datasource';
    if (error instanceof RefusedTarget) {
      return { ok: false, message: `${name}: ${error.message}`, serverVersion: '', latencyMs: 0 };
    }
    if (serverVersion === '' && isUnreachable(error)) {
      // One answer for refused, timed out and unreachable, at one time: nothing to tell ports apart by.
      // StarRocks' MySQL port is reached with its own connect timeout (sink/starrocks/connection.ts).
      const answerAfterMs =
        datasource?.config.case === 'starrocks'
          ? Math.max(connectTimeoutMs, STARROCKS_CONNECT_TIMEOUT_MS)
          : connectTimeoutMs;
      const wait = started + answerAfterMs - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      return {
        ok: false,
        message: `${name}: could not connect to ${host} — check the host and port, and that the worker's network can reach it`,
        serverVersion: '',
        latencyMs: 0,
      };
    }
    const classified = classifyError(error);
    // A SourceError's message already ends with its solution.
    const solution =
      classified.solution && !classified.message.endsWith(classified.solution)
        ? ` — ${classified.solution}`
        : '';
    return {
      ok: false,
      message: `${name}: ${classified.message}${solution}`.slice(0, 1_000),
      serverVersion,
      latencyMs: Math.round(performance.now() - started),
    };
  }
}

interface Address {
  host: string;
  port: number;
}

function targetOf(datasource: Datasource): { host: string; ports: number[] } | undefined {
  if (datasource.config.case === 'postgres') {
    const pg = datasource.config.value;
    return { host: pg.host, ports: [pg.port || 5432] };
  }
  if (datasource.config.case === 'starrocks') {
    const sr = datasource.config.value;
    // Unset ports (0) take the sink's defaults, which are in range.
    return { host: sr.feHost, ports: [sr.httpPort, sr.mysqlPort].filter((port) => port !== 0) };
  }
  return undefined;
}

function checkTarget(target: { host: string; ports: number[] }, own: readonly Address[]): void {
  for (const port of target.ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new RefusedTarget(`port ${port} is not a TCP port (1–65535); fix the datasource's port`);
    }
    const host = normalizeHost(target.host);
    for (const address of own) {
      if (port !== address.port) continue;
      const ownHost = normalizeHost(address.host);
      if (host === ownHost || (isLocalHost(host) && (isLocalHost(ownHost) || ownHost === ''))) {
        throw new RefusedTarget(
          `${target.host}:${port} is Sluice's own address (control plane or worker metrics), not a database; fix the datasource's host or port`,
        );
      }
    }
  }
}

/** `https://cp:8443`, `cp:8443` or `[::1]:9464`; undefined when it names no port. */
function parseAddress(text: string): Address | undefined {
  try {
    const url = new URL(text.includes('://') ? text : `tcp://${text}`);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : NaN));
    return Number.isInteger(port) ? { host: url.hostname, port } : undefined;
  } catch {
    return undefined;
  }
}

function normalizeHost(host: string): string {
  return host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
}

function isLocalHost(host: string): boolean {
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '0.0.0.0' ||
    host === '::' ||
    host === '::1' ||
    /^127\./.test(host) ||
    /^::ffff:127\./.test(host)
  );
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ECONNABORTED',
]);
const UNREACHABLE_TEXT =
  /\b(ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENETDOWN)\b|connection refused|timed? ?out|timeout/i;

/** Whether the failure is the network's (nothing answered), looking through causes and aggregate errors. */
function isUnreachable(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false;
  const { code, message, cause, errors } = error as {
    code?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
  if (typeof message === 'string' && UNREACHABLE_TEXT.test(message)) return true;
  if (Array.isArray(errors) && errors.some((inner) => isUnreachable(inner, depth + 1))) return true;
  return isUnreachable(cause, depth + 1);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
