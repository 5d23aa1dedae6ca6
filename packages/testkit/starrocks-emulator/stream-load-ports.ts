// The emulator's HTTP side: an FE port that checks Basic auth and `Expect: 100-continue`, refuses unknown
// tables in the FE's own error shape and answers 307 to a separate BE port, and a BE port that runs the
// load: labels, `__op`, partial updates, `max_filter_ratio`, filtered rows listed at an ErrorURL, and
// injected faults. Every HTTP request is recorded (with whether it carried credentials) for tests.
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { EmulatedCatalog, LabelRecord } from './emulated-catalog.ts';
import { planLoad } from './load-plan.ts';

export type EmulatorFault =
  /** The FE or BE answers with this HTTP status (default 503) and a text body. */
  | { kind: 'http-error'; port?: 'fe' | 'be'; status?: number; table?: string }
  /** The BE drops the connection after the first body bytes: the transaction aborts, its label is free. */
  | { kind: 'reset-mid-body'; table?: string }
  /** The BE commits the load, then drops the connection before answering. */
  | { kind: 'reset-after-commit'; table?: string }
  /** The FE or BE waits `delayMs` before handling the request. */
  | { kind: 'slow'; port?: 'fe' | 'be'; delayMs: number; table?: string }
  /** The BE applies the load and answers `Publish Timeout` (committed, visible a little later). */
  | { kind: 'publish-timeout'; table?: string }
  /** The BE answers `Fail` with this message; the label is aborted. */
  | { kind: 'fail'; message?: string; table?: string }
  /** The BE answers `Fail` with StarRocks' "Too many versions" message. */
  | { kind: 'too-many-versions'; table?: string }
  /** The BE answers `Fail` with StarRocks' HTTP concurrency-limit message. */
  | { kind: 'concurrency-limit'; table?: string }
  /**
   * The request's label already belongs to another load: FINISHED (committed, its rows not applied by the
   * emulator) or RUNNING; a RUNNING one answers PREPARE to `pollsBeforeSettling` get_load_state calls
   * (default 1), then settles: VISIBLE applies this request's rows as the other load's, ABORTED frees it.
   */
  | {
      kind: 'label-exists';
      existing: 'FINISHED' | 'RUNNING';
      settle?: 'VISIBLE' | 'ABORTED';
      pollsBeforeSettling?: number;
      table?: string;
    };

export interface RequestRecord {
  port: 'fe' | 'be';
  method: string;
  path: string;
  /** Whether the request carried an Authorization header, and whether it was correct. */
  authorization: 'none' | 'valid' | 'invalid';
  expectContinue: boolean;
  label: string | undefined;
}

export interface LoadRecord {
  database: string;
  table: string;
  label: string;
  status: string;
  txnId: number;
  loadedRows: number;
  filteredRows: number;
  partialUpdate: boolean;
  headers: Record<string, string>;
}

export interface StreamLoadPortsOptions {
  catalog: EmulatedCatalog;
  user: string;
  password: string;
  host: string;
  /** Host put in the 307 Location (default: `host`). */
  redirectHost?: string;
  /** Serve the FE over HTTPS with this certificate; the BE stays plain HTTP, as in StarRocks. */
  tls?: { certPem: string; keyPem: string };
  /** What to do with JSON fields that name no column: `ignore` (StarRocks) or `filter` the row (stricter). */
  unknownFields: 'filter' | 'ignore';
  /** Shared-data cluster: deletes of one load are applied after its upserts (StarRocks #75014). */
  sharedData: boolean;
  /** Largest JSON body (default 100 MB, `streaming_load_max_batch_size_mb`). */
  maxJsonBytes: number;
}

export interface StreamLoadPorts {
  fePort: number;
  bePort: number;
  requests: RequestRecord[];
  loads: LoadRecord[];
  faults: EmulatorFault[];
  close(): Promise<void>;
}

type Answer = Record<string, unknown>;

export async function startStreamLoadPorts(options: StreamLoadPortsOptions): Promise<StreamLoadPorts> {
  const { catalog } = options;
  const requests: RequestRecord[] = [];
  const loads: LoadRecord[] = [];
  const faults: EmulatorFault[] = [];
  const errorLogs = new Map<string, string>();
  const running = new Map<string, { polls: number; settle: 'VISIBLE' | 'ABORTED'; apply: () => void }>();
  const sockets = new Set<Socket>();
  const expected = Buffer.from(`${options.user}:${options.password}`);

  function authorization(request: http.IncomingMessage): RequestRecord['authorization'] {
    const header = request.headers.authorization;
    if (!header) return 'none';
    const match = /^Basic\s+(\S+)$/i.exec(header);
    if (!match) return 'invalid';
    const given = Buffer.from(match[1]!, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected) ? 'valid' : 'invalid';
  }

  function record(port: 'fe' | 'be', request: http.IncomingMessage): RequestRecord {
    const entry: RequestRecord = {
      port,
      method: request.method ?? '',
      path: request.url ?? '',
      authorization: authorization(request),
      expectContinue: (request.headers.expect ?? '').toLowerCase() === '100-continue',
      label: header(request, 'label'),
    };
    requests.push(entry);
    return entry;
  }

  function takeFault(port: 'fe' | 'be', table: string | undefined, kinds: EmulatorFault['kind'][]) {
    const index = faults.findIndex(
      (fault) =>
        kinds.includes(fault.kind) &&
        (!('port' in fault) || (fault.port ?? 'be') === port) &&
        (fault.table === undefined || fault.table === table),
    );
    return index < 0 ? undefined : faults.splice(index, 1)[0];
  }

  function send(
    response: http.ServerResponse,
    status: number,
    body: Answer | string,
    headers: http.OutgoingHttpHeaders = {},
  ) {
    const text = typeof body === 'string' ? body : JSON.stringify(body, null, 4);
    response.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
      'content-length': Buffer.byteLength(text),
      connection: 'close',
      ...headers,
    });
    response.end(text);
  }

  function feError(message: string): Answer {
    return { status: 'FAILED', code: '1', msg: message, message };
  }

  const loadPath = /^\/api\/([^/]+)\/([^/]+)\/_stream_load$/;
  const statePath = /^\/api\/([^/]+)\/get_load_state$/;

  // ---- FE ----
  async function handleFe(request: http.IncomingMessage, response: http.ServerResponse) {
    const entry = record('fe', request);
    const url = new URL(request.url ?? '/', 'http://fe');
    const load = loadPath.exec(url.pathname);
    const table = load ? decodeURIComponent(load[2]!) : undefined;
    const slow = takeFault('fe', table, ['slow']);
    if (slow?.kind === 'slow') await delay(slow.delayMs);
    if (request.destroyed) return;
    const broken = takeFault('fe', table, ['http-error']);
    if (broken?.kind === 'http-error') return send(response, broken.status ?? 503, 'Service Unavailable');
    if (entry.authorization !== 'valid') {
      return send(response, 401, feError(`Access denied for user '${userOf(request)}'`), {
        'www-authenticate': 'Basic realm=""',
      });
    }
    if (load) {
      if (request.method !== 'PUT') return send(response, 405, feError('Stream Load only supports PUT'));
      if (!entry.expectContinue) return send(response, 200, feError('There is no 100-continue header'));
      const database = decodeURIComponent(load[1]!);
      if (!catalog.databases.has(database))
        return send(response, 200, feError(`unknown database, dbName=${database}`));
      if (!catalog.findTable(database, table!))
        return send(response, 200, feError(`unknown table, tableName=${table}`));
      const location = `http://${bracket(options.redirectHost ?? options.host)}:${bePort}${request.url}`;
      return send(response, 307, '', { location });
    }
    const state = statePath.exec(url.pathname);
    if (state && request.method === 'GET') {
      const database = decodeURIComponent(state[1]!);
      const label = url.searchParams.get('label') ?? '';
      const pending = running.get(`${database}\0${label}`);
      if (pending) {
        if (pending.polls-- <= 0) {
          running.delete(`${database}\0${label}`);
          pending.apply();
        }
      }
      const found = catalog.labels.get(database)?.get(label);
      return send(response, 200, { state: found?.state ?? 'UNKNOWN', status: 'OK', message: '' });
    }
    return send(response, 404, feError(`no handler for ${url.pathname}`));
  }

  // ---- BE ----
  async function handleBe(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    expectContinue: boolean,
  ) {
    const entry = record('be', request);
    const url = new URL(request.url ?? '/', 'http://be');
    if (url.pathname === '/api/_load_error_log' && request.method === 'GET') {
      const log = errorLogs.get(url.searchParams.get('file') ?? '');
      return log === undefined ? send(response, 404, 'not found') : send(response, 200, log);
    }
    const load = loadPath.exec(url.pathname);
    if (!load || request.method !== 'PUT') return send(response, 404, 'not found');
    const database = decodeURIComponent(load[1]!);
    const tableName = decodeURIComponent(load[2]!);
    const slow = takeFault('be', tableName, ['slow']);
    if (slow?.kind === 'slow') await delay(slow.delayMs);
    if (request.destroyed) return; // the client gave up while we were slow
    const broken = takeFault('be', tableName, ['http-error']);
    if (broken?.kind === 'http-error') return send(response, broken.status ?? 503, 'Service Unavailable');

    const label = header(request, 'label') ?? `emulator_${Date.now()}_${Math.random().toString(36).slice(2)}`;
    const base = { TxnId: -1, Label: label, Message: '', ...zeroCounters() };
    const answer = (status: string, extra: Answer = {}) =>
      send(response, 200, { ...base, Status: status, ...extra });
    if (entry.authorization === 'none') return answer('Fail', { Message: 'no valid Basic authorization' });
    if (entry.authorization === 'invalid') {
      return answer('Fail', { Message: `Access denied for user '${userOf(request)}'` });
    }
    const table = catalog.findTable(database, tableName);
    if (!table) return answer('Fail', { Message: `unknown table ${database}.${tableName}` });
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(label)) {
      return answer('Fail', { Message: `Label format error: ${JSON.stringify(label)}` });
    }
    if ((header(request, 'format') ?? 'csv').toLowerCase() !== 'json') {
      return answer('Fail', { Message: 'the emulator loads JSON only (format: json)' });
    }

    const labels = catalog.labelsOf(database);
    const existing = labels.get(label);
    if (existing && existing.state !== 'ABORTED') {
      const finished = existing.state === 'COMMITTED' || existing.state === 'VISIBLE';
      request.resume();
      return answer('Label Already Exists', {
        ExistingJobStatus: finished ? 'FINISHED' : 'RUNNING',
        Message: `Label [${label}] has already been used.`,
      });
    }
    const injected = takeFault('be', tableName, [
      'reset-mid-body',
      'reset-after-commit',
      'publish-timeout',
      'fail',
      'too-many-versions',
      'concurrency-limit',
      'label-exists',
    ]);
    if (injected?.kind === 'concurrency-limit') {
      request.resume();
      return answer('Fail', { Message: 'Stream Load exceed http cuncurrent limit' });
    }

    const txn: LabelRecord = { state: 'PREPARE', txnId: catalog.newTxnId(), table: tableName };
    labels.set(label, txn);
    base.TxnId = txn.txnId;
    if (expectContinue) response.writeContinue();

    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    request.on('data', (chunk: Buffer) => {
      if (aborted) return;
      if (injected?.kind === 'reset-mid-body') {
        aborted = true;
        txn.state = 'ABORTED';
        request.socket.destroy();
        return;
      }
      size += chunk.length;
      if (size <= options.maxJsonBytes) chunks.push(chunk);
    });
    request.on('close', () => {
      if (!response.writableEnded && txn.state === 'PREPARE' && !request.complete) txn.state = 'ABORTED';
    });
    if (!request.complete && !request.destroyed) {
      await new Promise<void>((resolve) => {
        request.on('end', resolve);
        request.on('close', resolve);
      });
    }
    if (aborted || !request.complete) {
      txn.state = 'ABORTED';
      return;
    }
    const headers = Object.fromEntries(
      Object.entries(request.headers)
        .filter(([name]) => name !== 'authorization')
        .map(([k, v]) => [k, String(v)]),
    );
    const finish = (status: string, loaded: number, filtered: number, extra: Answer = {}) => {
      loads.push({
        database,
        table: tableName,
        label,
        status,
        txnId: txn.txnId,
        loadedRows: loaded,
        filteredRows: filtered,
        partialUpdate: headers.partial_update === 'true',
        headers,
      });
      return answer(status, {
        NumberTotalRows: loaded + filtered,
        NumberLoadedRows: loaded,
        NumberFilteredRows: filtered,
        LoadBytes: size,
        ...extra,
      });
    };
    if (size > options.maxJsonBytes) {
      txn.state = 'ABORTED';
      return finish('Fail', 0, 0, {
        Message: `The size of this batch exceed the max size [${options.maxJsonBytes}] of json type data`,
      });
    }
    if (injected?.kind === 'fail' || injected?.kind === 'too-many-versions') {
      txn.state = 'ABORTED';
      const message =
        injected.kind === 'fail'
          ? (injected.message ?? 'injected failure')
          : 'Too many versions. tablet_id: 10086, version_count: 1001, limit: 1000';
      return finish('Fail', 0, 0, { Message: message });
    }

    const plan = planLoad(table, Buffer.concat(chunks).toString('utf8'), headers, options);
    if ('error' in plan) {
      txn.state = 'ABORTED';
      return finish('Fail', 0, 0, { Message: plan.error });
    }
    const ratio = Number(headers.max_filter_ratio ?? '0');
    const total = plan.rows.length + plan.filtered.length;
    let errorUrl: string | undefined;
    if (plan.filtered.length > 0) {
      const file = `error_log_${txn.txnId}`;
      errorLogs.set(file, plan.filtered.map((line) => `${line}\n`).join(''));
      errorUrl = `http://${bracket(options.redirectHost ?? options.host)}:${bePort}/api/_load_error_log?file=${file}`;
    }
    if (total > 0 && plan.filtered.length / total > ratio) {
      txn.state = 'ABORTED';
      return finish('Fail', 0, plan.filtered.length, {
        Message: 'too many filtered rows',
        ...(errorUrl ? { ErrorURL: errorUrl } : {}),
      });
    }
    if (injected?.kind === 'label-exists') {
      // Another load holds this label: this one is refused without touching the data.
      if (injected.existing === 'FINISHED') txn.state = 'VISIBLE';
      else {
        running.set(`${database}\0${label}`, {
          polls: injected.pollsBeforeSettling ?? 1,
          settle: injected.settle ?? 'VISIBLE',
          apply: () => {
            txn.state = injected.settle ?? 'VISIBLE';
            if (txn.state === 'VISIBLE') plan.apply();
          },
        });
      }
      return answer('Label Already Exists', {
        ExistingJobStatus: injected.existing,
        Message: `Label [${label}] has already been used.`,
      });
    }
    plan.apply();
    const extra = errorUrl ? { ErrorURL: errorUrl } : {};
    if (injected?.kind === 'reset-after-commit') {
      txn.state = 'VISIBLE';
      loads.push({
        database,
        table: tableName,
        label,
        status: 'Success',
        txnId: txn.txnId,
        loadedRows: plan.rows.length,
        filteredRows: plan.filtered.length,
        partialUpdate: headers.partial_update === 'true',
        headers,
      });
      request.socket.destroy();
      return;
    }
    if (injected?.kind === 'publish-timeout') {
      txn.state = 'COMMITTED';
      setImmediate(() => {
        txn.state = 'VISIBLE';
      });
      return finish('Publish Timeout', plan.rows.length, plan.filtered.length, {
        Message: 'transaction commit successfully, BUT data will be visible later',
        ...extra,
      });
    }
    txn.state = 'VISIBLE';
    return finish('Success', plan.rows.length, plan.filtered.length, { Message: 'OK', ...extra });
  }

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const feHandler = (request: http.IncomingMessage, response: http.ServerResponse) => {
    handleFe(request, response).catch(() => response.destroy());
  };
  const fe = options.tls
    ? https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, feHandler)
    : http.createServer(feHandler);
  // The FE answers a 100-continue request itself (307 or an error) without ever asking for the body.
  fe.on('checkContinue', feHandler);
  fe.on(options.tls ? 'secureConnection' : 'connection', track);
  const be = http.createServer((request, response) => {
    handleBe(request, response, false).catch(() => response.destroy());
  });
  be.on('checkContinue', (request, response) => {
    handleBe(request, response, true).catch(() => response.destroy());
  });
  be.on('connection', track);
  await Promise.all([listen(fe, options.host), listen(be, options.host)]);
  const bePort = (be.address() as AddressInfo).port;
  return {
    fePort: (fe.address() as AddressInfo).port,
    bePort,
    requests,
    loads,
    faults,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all([close(fe), close(be)]);
    },
  };
}

function zeroCounters(): Answer {
  return {
    NumberTotalRows: 0,
    NumberLoadedRows: 0,
    NumberFilteredRows: 0,
    NumberUnselectedRows: 0,
    LoadBytes: 0,
    LoadTimeMs: 1,
    BeginTxnTimeMs: 0,
    StreamLoadPlanTimeMs: 0,
    ReadDataTimeMs: 0,
    WriteDataTimeMs: 0,
    CommitAndPublishTimeMs: 0,
  };
}

function header(request: http.IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function userOf(request: http.IncomingMessage): string {
  const match = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  if (!match) return '';
  return Buffer.from(match[1]!, 'base64').toString('utf8').split(':')[0] ?? '';
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** An injected delay; unref'd so a test that has moved on isn't held by a slow answer nobody awaits. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function listen(server: http.Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
