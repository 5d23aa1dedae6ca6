// Stream Load over node:http/https (not fetch: it refuses `Expect` and drops `Authorization` on the FE's
// cross-origin 307). One `load()` sends one body under one label until StarRocks has it:
//   PUT fe/api/db/table/_stream_load  (Basic auth, Expect: 100-continue)
//   ← 307 Location: http://be:8040/…   → PUT there ourselves, credentials again (curl's --location-trusted)
//   ← 200 {Status…} or {status: "FAILED", msg…}
// Retries reuse the label, so StarRocks de-duplicates them: `Label Already Exists` + FINISHED means an
// earlier attempt landed (success); + RUNNING means one is still in flight (poll get_load_state).
// `Publish Timeout` is committed. Filtered rows, bad credentials and unknown tables stop with an operator
// error; everything else is retried with backoff and, once attempts run out, reported as transient.

import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import {
  checkStarRocksIdentity,
  STARROCKS_TLS_MIN_VERSION,
  type StarRocksDatasource,
  tlsNameMismatch,
  tlsOptions,
} from './connection.ts';
import type { EncodedBody } from './encoding.ts';
import { StarRocksError } from './starrocks-error.ts';

export interface RetryOptions {
  /** Load attempts before giving up with a transient error (default 6). */
  attempts?: number;
  /** First backoff delay in ms, doubled per attempt with jitter (default 500). */
  baseDelayMs?: number;
  /** Largest backoff delay in ms (default 30,000). */
  maxDelayMs?: number;
}

export interface StreamLoadClientOptions {
  datasource: StarRocksDatasource;
  retry?: RetryOptions;
  /** Socket inactivity limit per HTTP exchange in ms (default 300,000). */
  requestTimeoutMs?: number;
  /** How long to poll a RUNNING label before reporting a transient error, in ms (default 120,000). */
  labelWaitMs?: number;
  /** StarRocks' `timeout` header: the load's own limit in seconds (default 600). */
  loadTimeoutSeconds?: number;
  /** How long to wait for `100 Continue` before sending the body anyway, in ms (default 3,000). */
  continueTimeoutMs?: number;
}

export interface StreamLoadRequest {
  /** StarRocks table in the datasource's database. */
  table: string;
  label: string;
  body: EncodedBody;
  /**
   * The `columns` header without `__op` (the client appends it): the JSON fields each row may carry, and
   * derived columns such as `b=hex_decode_binary(__sluice_hex_1)`. Unset: fields match columns by name.
   */
  columns?: readonly string[];
  /** A partial update: rows carry only `columns` (key included); StarRocks keeps the other columns. */
  partial?: boolean;
}

export type StreamLoadStatus = 'Success' | 'Publish Timeout' | 'Label Already Exists';

export interface StreamLoadResult {
  label: string;
  /** How StarRocks confirmed the load. `Label Already Exists` means an earlier attempt had landed. */
  status: StreamLoadStatus;
  /** Rows StarRocks reported loaded by this attempt (0 when an earlier attempt had landed). */
  loadedRows: number;
  /** HTTP attempts it took, 1 when the first one succeeded. */
  attempts: number;
}

export type LabelState = 'UNKNOWN' | 'PREPARE' | 'PREPARED' | 'COMMITTED' | 'VISIBLE' | 'ABORTED';

export interface StreamLoadClient {
  load(request: StreamLoadRequest): Promise<StreamLoadResult>;
  /** `GET /api/{db}/get_load_state?label=…` on the FE. */
  labelState(label: string): Promise<LabelState>;
}

interface HttpAnswer {
  statusCode: number;
  location: string | undefined;
  text: string;
}

const MAX_REDIRECTS = 5;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_ERROR_LOG_BYTES = 64 * 1024;
const MAX_REJECTED_ROWS = 10;

export function createStreamLoadClient(options: StreamLoadClientOptions): StreamLoadClient {
  const { datasource } = options;
  const tls = tlsOptions(datasource);
  const feScheme = tls ? 'https' : 'http';
  const fePort = datasource.httpPort ?? (tls ? 8443 : 8030);
  const feBase = new URL(`${feScheme}://${bracketHost(datasource.host)}:${fePort}`);
  const authorization = `Basic ${Buffer.from(`${datasource.user}:${datasource.password}`).toString('base64')}`;
  const attempts = options.retry?.attempts ?? 6;
  const baseDelayMs = options.retry?.baseDelayMs ?? 500;
  const maxDelayMs = options.retry?.maxDelayMs ?? 30_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 300_000;
  const labelWaitMs = options.labelWaitMs ?? 120_000;
  const continueTimeoutMs = options.continueTimeoutMs ?? 3_000;
  const describe = `StarRocks datasource ${JSON.stringify(datasource.name)} (user ${JSON.stringify(datasource.user)} at ${datasource.host}:${fePort})`;
  const database = datasource.database;

  function exchange(method: 'PUT' | 'GET', url: URL, headers: http.OutgoingHttpHeaders, body?: EncodedBody) {
    return new Promise<HttpAnswer>((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const request = (secure ? https : http).request({
        method,
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (secure ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        headers,
        agent: false,
        timeout: requestTimeoutMs,
        ...(secure && tls
          ? {
              ...(tls.ca === undefined ? {} : { ca: tls.ca }),
              rejectUnauthorized: tls.rejectUnauthorized ?? true,
              // Chain and name: the certificate must name the hop's host (IP SANs for an address).
              checkServerIdentity: checkStarRocksIdentity,
              minVersion: STARROCKS_TLS_MIN_VERSION,
            }
          : {}),
      });
      request.on('timeout', () =>
        request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
      );
      request.on('error', reject);
      // Like curl, send the body anyway if neither 100 Continue nor an answer arrives in time (a proxy
      // that swallows 100 Continue must not stall every load until the socket times out).
      let sent = false;
      const sendBody = () => {
        if (!body || sent || request.destroyed) return;
        sent = true;
        clearTimeout(fallback);
        for (const chunk of body.chunks) request.write(chunk);
        request.end();
      };
      const fallback = body ? setTimeout(sendBody, continueTimeoutMs) : undefined;
      request.on('continue', sendBody);
      request.on('close', () => clearTimeout(fallback));
      request.on('response', (response) => {
        clearTimeout(fallback);
        const parts: Buffer[] = [];
        let size = 0;
        response.on('data', (part: Buffer) => {
          size += part.length;
          if (size <= MAX_RESPONSE_BYTES) parts.push(part);
        });
        response.on('error', reject);
        response.on('end', () => {
          resolve({
            statusCode: response.statusCode ?? 0,
            location: response.headers.location,
            text: Buffer.concat(parts).toString('utf8'),
          });
          // A 307 or an early error arrives before 100-continue: the body was never sent, so the request
          // can't complete normally. StarRocks closes the connection after each load anyway.
          request.destroy();
        });
      });
      if (body) request.flushHeaders();
      else request.end();
    });
  }

  /**
   * Follows redirects itself; refuses a TLS → plain-HTTP hop unless the operator allowed it, and a hop to a
   * host that is neither the FE's nor next to it (the credentials go along, like curl's --location-trusted).
   */
  async function nextHop(from: URL, location: string): Promise<URL> {
    const target = new URL(location, from);
    if (datasource.rewriteLoopbackRedirect && isLoopback(target.hostname)) {
      target.hostname = bracketHost(datasource.host);
    }
    if (tls && target.protocol !== 'https:' && !datasource.allowPlaintextBeRedirect) {
      throw new StarRocksError(
        'operator',
        `${describe} redirected Stream Load to plain-HTTP ${target.protocol}//${target.host}, but ssl is on: refusing to send rows in clear`,
        {
          solution:
            'put the BEs behind a TLS-terminating proxy, or set allowPlaintextBeRedirect on a trusted network',
        },
      );
    }
    await checkRedirectHost(target);
    return target;
  }

  /**
   * The FE may send a load to itself, or — when the FE is on a private network (or loopback) — to a BE on a
   * private address (or, for a loopback FE, loopback). A public FE may only redirect to its own host name.
   * Anything else (a public host, a link-local one such as cloud metadata, a name that does not resolve, a
   * private address behind a public FE) is refused before a byte or the Authorization header leaves.
   */
  async function checkRedirectHost(target: URL): Promise<void> {
    const to = unbracket(target.hostname);
    if (sameHostName(to, datasource.host)) return;
    const [feAddresses, toAddresses] = await Promise.all([addressesOf(datasource.host), addressesOf(to)]);
    const fe = scopeOf(feAddresses);
    const hop = scopeOf(toAddresses);
    if (
      (fe === 'loopback' && (hop === 'loopback' || hop === 'private')) ||
      (fe === 'private' && hop === 'private')
    )
      return;
    throw new StarRocksError(
      'operator',
      `${describe} redirected Stream Load to ${to} (${hop === 'none' ? 'does not resolve' : `a ${hop} address`}), which is neither the FE host nor a private address next to ${fe === 'public' ? 'it' : 'the private FE'}: refusing to send the credentials and rows there`,
      {
        solution: `make the FE redirect to BEs on its own private network (the BEs' priority_networks), or point the datasource at ${to} if that host is the FE`,
      },
    );
  }

  async function send(
    method: 'PUT' | 'GET',
    path: string,
    headers: http.OutgoingHttpHeaders,
    body?: EncodedBody,
  ) {
    let url = new URL(path, feBase);
    for (let hop = 0; ; hop++) {
      const answer = await exchange(method, url, headers, body);
      if (answer.statusCode >= 300 && answer.statusCode < 400 && answer.location) {
        if (hop >= MAX_REDIRECTS) throw new StarRocksError('transient', `${describe}: too many redirects`);
        url = await nextHop(url, answer.location);
        continue;
      }
      return answer;
    }
  }

  function headersFor(request: StreamLoadRequest): http.OutgoingHttpHeaders {
    const headers: http.OutgoingHttpHeaders = {
      authorization,
      expect: '100-continue',
      'content-length': String(request.body.bytes),
      'content-type': 'application/json',
      label: request.label,
      format: 'json',
      strip_outer_array: 'true',
      max_filter_ratio: '0',
      // Without strict mode StarRocks loads a value that fails conversion as NULL and answers Success
      // (be/src/exec/file_scanner.cpp FileScanner::materialize); with it such a row is filtered, and
      // max_filter_ratio 0 fails the load. The sink checks values first; this is the second line.
      strict_mode: 'true',
      timeout: String(options.loadTimeoutSeconds ?? 600),
    };
    if (request.columns) headers.columns = [...request.columns, '__op'].join(',');
    if (request.partial) {
      headers.partial_update = 'true';
      headers.partial_update_mode = 'row';
    }
    return headers;
  }

  async function labelState(label: string): Promise<LabelState> {
    const path = `/api/${encodeURIComponent(database)}/get_load_state?label=${encodeURIComponent(label)}`;
    const answer = await send('GET', path, { authorization }).catch((error: unknown) => {
      throw transportError(error, `checking load ${label}`);
    });
    if (answer.statusCode === 401 || answer.statusCode === 403) throw credentialsError(answer.statusCode);
    const parsed = parseJson(answer.text);
    const state = parsed?.state ?? parsed?.data;
    if (typeof state !== 'string') {
      throw new StarRocksError('transient', `${describe}: unreadable get_load_state answer for ${label}`);
    }
    return state.toUpperCase() as LabelState;
  }

  /** Waits for a RUNNING label to settle: true when it committed, false when it is free to load again. */
  async function awaitLabel(label: string): Promise<boolean> {
    const deadline = Date.now() + labelWaitMs;
    for (let round = 1; ; round++) {
      const state = await labelState(label);
      if (state === 'COMMITTED' || state === 'VISIBLE') return true;
      if (state === 'ABORTED' || state === 'UNKNOWN') return false;
      if (Date.now() >= deadline) {
        throw new StarRocksError('transient', `${describe}: load ${label} is still ${state}`, { label });
      }
      await sleep(backoff(round, baseDelayMs, maxDelayMs));
    }
  }

  function credentialsError(status: number): StarRocksError {
    return new StarRocksError(
      'operator',
      `${describe} rejected the credentials (HTTP ${status}) for Stream Load into ${database}`,
      { solution: 'check the user and password stored for this datasource and its LOAD privilege' },
    );
  }

  function transportError(error: unknown, doing: string): StarRocksError {
    if (error instanceof StarRocksError) return error;
    const mismatch = tlsNameMismatch(error, describe);
    if (mismatch) return mismatch;
    const code = (error as { code?: string } | undefined)?.code ?? '';
    if (/CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH/.test(code)) {
      return new StarRocksError(
        'operator',
        `${describe}: TLS certificate not trusted (${code}) while ${doing}`,
        {
          solution: "give the datasource the CA that signed StarRocks' certificate",
          cause: error,
        },
      );
    }
    const what = code || (error instanceof Error ? error.message : String(error));
    return new StarRocksError('transient', `${describe}: ${what} while ${doing}`, { cause: error });
  }

  /** Names the rows StarRocks filtered, from its ErrorURL (fetched only where sending rows was allowed). */
  async function rejectedRows(errorUrl: string | undefined): Promise<string[]> {
    if (!errorUrl) return [];
    let url: URL;
    try {
      url = await nextHop(feBase, errorUrl);
    } catch {
      return [];
    }
    try {
      const answer = await exchange('GET', url, { authorization });
      return answer.text
        .slice(0, MAX_ERROR_LOG_BYTES)
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.length > 0)
        .slice(0, MAX_REJECTED_ROWS)
        .map((line) => (line.length > 500 ? `${line.slice(0, 500)}…` : line));
    } catch {
      return [];
    }
  }

  async function failure(request: StreamLoadRequest, answer: HttpAnswer): Promise<StarRocksError> {
    const into = `${database}.${request.table}`;
    const label = request.label;
    if (answer.statusCode === 401 || answer.statusCode === 403) return credentialsError(answer.statusCode);
    const parsed = parseJson(answer.text);
    if (
      answer.statusCode >= 400 &&
      answer.statusCode < 500 &&
      answer.statusCode !== 408 &&
      answer.statusCode !== 429
    ) {
      return new StarRocksError(
        'operator',
        `${describe}: HTTP ${answer.statusCode} from Stream Load into ${into}${parsed?.msg ? `: ${String(parsed.msg).slice(0, 200)}` : ''}`,
        {
          label,
          solution:
            "check that httpPort is the FE's http_port (8030, or https_port with ssl) and nothing in between rewrites the request",
        },
      );
    }
    if (answer.statusCode !== 200 || !parsed) {
      return new StarRocksError(
        'transient',
        `${describe}: HTTP ${answer.statusCode} from Stream Load into ${into}`,
        {
          label,
        },
      );
    }
    const message = String(parsed.Message ?? parsed.msg ?? parsed.message ?? '').slice(0, 400);
    const filtered = Number(parsed.NumberFilteredRows ?? 0);
    const errorUrl = typeof parsed.ErrorURL === 'string' ? parsed.ErrorURL : undefined;
    if (filtered > 0 || errorUrl || /filtered rows/i.test(message)) {
      const rows = await rejectedRows(errorUrl);
      const named =
        rows.length > 0 ? `: ${rows.slice(0, 3).join(' | ')}` : errorUrl ? ` (see ${errorUrl})` : '';
      return new StarRocksError(
        'operator',
        `StarRocks filtered ${filtered || 'some'} row(s) of load ${label} into ${into}${named}`,
        {
          label,
          rejectedRows: rows,
          solution:
            'fix the rejected rows in PostgreSQL or widen the StarRocks column type, then resume the job',
        },
      );
    }
    if (/access denied|password|authenticat/i.test(message)) return credentialsError(answer.statusCode);
    if (/unknown (database|table)|does ?n[o']t exist|not exist|not found|unknown column/i.test(message)) {
      return new StarRocksError('operator', `${describe}: Stream Load into ${into} failed: ${message}`, {
        label,
        solution: 'create the table again (restart the job so the sink recreates it) or fix the job’s target',
      });
    }
    if (/100-continue/i.test(message)) {
      return new StarRocksError('fatal', `${describe}: Stream Load refused the request: ${message}`, {
        label,
      });
    }
    return new StarRocksError('transient', `${describe}: Stream Load into ${into} failed: ${message}`, {
      label,
    });
  }

  async function load(request: StreamLoadRequest): Promise<StreamLoadResult> {
    const headers = headersFor(request);
    const path = `/api/${encodeURIComponent(database)}/${encodeURIComponent(request.table)}/_stream_load`;
    let last: StarRocksError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await sleep(backoff(attempt - 1, baseDelayMs, maxDelayMs));
      let answer: HttpAnswer;
      try {
        answer = await send('PUT', path, headers, request.body);
      } catch (error) {
        last = transportError(error, `loading ${request.label} into ${database}.${request.table}`);
        if (last.kind !== 'transient') throw last;
        continue;
      }
      const parsed = answer.statusCode === 200 ? parseJson(answer.text) : undefined;
      const status = parsed?.Status;
      const loadedRows = Number(parsed?.NumberLoadedRows ?? 0);
      if (status === 'Success' || status === 'Publish Timeout') {
        return { label: request.label, status, loadedRows, attempts: attempt };
      }
      if (status === 'Label Already Exists') {
        const existing = String(parsed?.ExistingJobStatus ?? '').toUpperCase();
        if (existing === 'FINISHED' || (existing === 'RUNNING' && (await awaitLabel(request.label)))) {
          return { label: request.label, status, loadedRows: 0, attempts: attempt };
        }
        last = new StarRocksError('transient', `${describe}: load ${request.label} was aborted; retrying`, {
          label: request.label,
        });
        continue;
      }
      last = await failure(request, answer);
      if (last.kind !== 'transient') throw last;
    }
    throw new StarRocksError(
      'transient',
      `${last?.message ?? 'Stream Load failed'} (gave up after ${attempts} attempts)`,
      { label: request.label, cause: last },
    );
  }

  return { load, labelState };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function backoff(round: number, base: number, max: number): number {
  const exponential = Math.min(max, base * 2 ** Math.min(round - 1, 20));
  return exponential / 2 + Math.random() * (exponential / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

type AddressScope = 'loopback' | 'private' | 'public' | 'none';

function unbracket(host: string): string {
  return host.replace(/^\[|\]$/g, '');
}

function sameHostName(a: string, b: string): boolean {
  const normal = (host: string) => unbracket(host).toLowerCase().replace(/\.$/, '');
  return normal(a) === normal(b);
}

async function addressesOf(host: string): Promise<string[]> {
  const bare = unbracket(host);
  if (isIP(bare) !== 0) return [bare];
  try {
    return (await lookup(bare, { all: true })).map((entry) => entry.address);
  } catch {
    return [];
  }
}

/** The widest scope among the addresses: one public address makes the host public. */
function scopeOf(addresses: readonly string[]): AddressScope {
  if (addresses.length === 0) return 'none';
  const scopes = addresses.map(addressScope);
  if (scopes.includes('public')) return 'public';
  if (scopes.includes('private')) return 'private';
  return 'loopback';
}

function addressScope(address: string): Exclude<AddressScope, 'none'> {
  const text = address.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  if (isIP(text) === 4) {
    const [a = 0, b = 0] = text.split('.').map(Number);
    if (a === 127) return 'loopback';
    if (
      a === 10 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127)
    )
      return 'private';
    // Everything else, link-local 169.254/16 (cloud metadata) and 0.0.0.0 included, is not a BE's address.
    return 'public';
  }
  if (text === '::1') return 'loopback';
  // Unique local fc00::/7; link-local fe80::/10 is not a BE's address.
  if (/^f[cd][0-9a-f]{0,2}:/.test(text)) return 'private';
  return 'public';
}

function bracketHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
