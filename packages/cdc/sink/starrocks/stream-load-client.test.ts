// Stream Load against the emulator's FE and BE ports: redirects, credentials, labels and injected faults.
import http from 'node:http';
import { createTestCa, type StarRocksEmulator, startStarRocksEmulator } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PgColumnType } from '../../change-event.ts';
import type { StarRocksDatasource } from './connection.ts';
import { encodeBodies } from './encoding.ts';
import { StarRocksError } from './starrocks-error.ts';
import { createStarRocksSink } from './starrocks-sink.ts';
import { createStreamLoadClient, type StreamLoadClientOptions } from './stream-load-client.ts';

const DATABASE = 'loads';
const int4: PgColumnType = { oid: 23, name: 'int4', modifier: -1, kind: 'base' };
const text: PgColumnType = { oid: 25, name: 'text', modifier: -1, kind: 'base' };
const columns = [
  { name: 'id', rule: { kind: 'integer' as const }, key: true },
  { name: 'v', rule: { kind: 'varchar' as const, bytes: 100 }, key: false },
];

function body(...rows: [number, string][]) {
  return encodeBodies(
    columns,
    rows.map(([id, v]) => ({ kind: 'upsert' as const, row: { id, v } })),
    1 << 30,
  ).bodies[0]!;
}

let labelCounter = 0;
const nextLabel = () => `test_label_${labelCounter++}`;

async function createTable(emulator: StarRocksEmulator, table: string): Promise<void> {
  const sink = createStarRocksSink({ datasource: datasourceOf(emulator), minLoadIntervalMs: 0 });
  await sink.ensureTable({
    table: { schema: 'public', name: table },
    columns: [
      { name: 'id', type: int4, nullable: false },
      { name: 'v', type: text, nullable: true },
    ],
    primaryKey: ['id'],
  });
  await sink.close();
}

function datasourceOf(
  emulator: StarRocksEmulator,
  extra: Partial<StarRocksDatasource> = {},
): StarRocksDatasource {
  return {
    name: 'emulated',
    host: '127.0.0.1',
    queryPort: emulator.mysqlPort,
    httpPort: emulator.fePort,
    user: emulator.user,
    password: emulator.password,
    database: DATABASE,
    ...extra,
  };
}

describe('Stream Load client', () => {
  let emulator: StarRocksEmulator;
  const client = (options: Partial<StreamLoadClientOptions> = {}, extra: Partial<StarRocksDatasource> = {}) =>
    createStreamLoadClient({
      datasource: datasourceOf(emulator, extra),
      retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
      labelWaitMs: 10_000,
      ...options,
    });

  beforeAll(async () => {
    emulator = await startStarRocksEmulator({ user: 'loader', password: 'load-secret' });
    await createTable(emulator, 't');
  });
  afterAll(() => emulator?.stop());

  it('follows the FE redirect to the BE on another port and sends Authorization there again', async () => {
    const label = nextLabel();
    const result = await client().load({ table: 't', label, body: body([1, 'a']) });
    expect(result).toMatchObject({ status: 'Success', loadedRows: 1, attempts: 1 });
    const requests = emulator.requests.filter((request) => request.label === label);
    expect(requests.map((request) => request.port)).toEqual(['fe', 'be']);
    expect(emulator.fePort).not.toBe(emulator.bePort);
    for (const request of requests) {
      expect(request.authorization).toBe('valid');
      expect(request.expectContinue).toBe(true);
    }
    expect(emulator.rows(DATABASE, 't')).toContainEqual({ id: 1, v: 'a' });
  });

  it('sends every load in strict mode with no filtered row allowed, so StarRocks never loads a failed conversion as NULL', async () => {
    const label = nextLabel();
    await client().load({ table: 't', label, body: body([5, 'e']) });
    const load = emulator.loads.find((entry) => entry.label === label);
    expect(load?.headers).toMatchObject({ strict_mode: 'true', max_filter_ratio: '0' });
  });

  it('retries a connection reset mid-body under the same label and applies the load once', async () => {
    const label = nextLabel();
    emulator.faults.inject({ kind: 'reset-mid-body', table: 't' });
    const result = await client().load({ table: 't', label, body: body([2, 'b']) });
    expect(result).toMatchObject({ status: 'Success', attempts: 2 });
    expect(emulator.loads.filter((load) => load.label === label).map((load) => load.status)).toEqual([
      'Success',
    ]);
    expect(emulator.labelState(DATABASE, label)).toBe('VISIBLE');
  });

  it('recognises a load whose answer was lost after commit, so the retry never applies it twice', async () => {
    const label = nextLabel();
    emulator.faults.inject({ kind: 'reset-after-commit', table: 't' });
    const result = await client().load({ table: 't', label, body: body([3, 'c']) });
    expect(result).toMatchObject({ status: 'Label Already Exists', attempts: 2, loadedRows: 0 });
    // One load applied; the retry reached the BE and was refused as a duplicate.
    expect(emulator.loads.filter((load) => load.label === label)).toHaveLength(1);
    expect(
      emulator.requests.filter((request) => request.label === label && request.port === 'be'),
    ).toHaveLength(2);
  });

  it('counts Label Already Exists with a FINISHED job as success', async () => {
    emulator.faults.inject({ kind: 'label-exists', existing: 'FINISHED', table: 't' });
    const result = await client().load({ table: 't', label: nextLabel(), body: body([4, 'd']) });
    expect(result).toMatchObject({ status: 'Label Already Exists', attempts: 1 });
  });

  it('polls get_load_state for a RUNNING label until it is visible', async () => {
    const label = nextLabel();
    emulator.faults.inject({
      kind: 'label-exists',
      existing: 'RUNNING',
      settle: 'VISIBLE',
      pollsBeforeSettling: 2,
    });
    const result = await client().load({ table: 't', label, body: body([5, 'e']) });
    expect(result).toMatchObject({ status: 'Label Already Exists', attempts: 1 });
    const polls = emulator.requests.filter(
      (request) => request.path.includes('get_load_state') && request.path.includes(label),
    );
    expect(polls).toHaveLength(3);
    expect(polls.every((request) => request.authorization === 'valid')).toBe(true);
    expect(emulator.rows(DATABASE, 't')).toContainEqual({ id: 5, v: 'e' });
  });

  it('loads again under the same label when the RUNNING load it collided with aborts', async () => {
    const label = nextLabel();
    emulator.faults.inject({
      kind: 'label-exists',
      existing: 'RUNNING',
      settle: 'ABORTED',
      pollsBeforeSettling: 0,
    });
    const result = await client().load({ table: 't', label, body: body([6, 'f']) });
    expect(result).toMatchObject({ status: 'Success', attempts: 2, label });
    expect(emulator.rows(DATABASE, 't')).toContainEqual({ id: 6, v: 'f' });
  });

  it('treats Publish Timeout as committed and does not retry', async () => {
    const label = nextLabel();
    emulator.faults.inject({ kind: 'publish-timeout', table: 't' });
    const result = await client().load({ table: 't', label, body: body([7, 'g']) });
    expect(result).toMatchObject({ status: 'Publish Timeout', attempts: 1 });
    expect(
      emulator.requests.filter((request) => request.label === label && request.port === 'be'),
    ).toHaveLength(1);
  });

  it('retries Fail, HTTP 5xx from FE and BE, too many versions and the concurrency limit with the same label', async () => {
    const label = nextLabel();
    emulator.faults.inject({ kind: 'fail', table: 't' });
    emulator.faults.inject({ kind: 'http-error', port: 'fe', status: 502, table: 't' });
    emulator.faults.inject({ kind: 'http-error', port: 'be', status: 500, table: 't' });
    emulator.faults.inject({ kind: 'too-many-versions', table: 't' });
    emulator.faults.inject({ kind: 'concurrency-limit', table: 't' });
    const result = await client({ retry: { attempts: 6, baseDelayMs: 1, maxDelayMs: 5 } }).load({
      table: 't',
      label,
      body: body([8, 'h']),
    });
    expect(result).toMatchObject({ status: 'Success', attempts: 6 });
    const labels = new Set(
      emulator.requests.filter((request) => request.port === 'be' && request.label).map((r) => r.label),
    );
    expect(labels.has(label)).toBe(true);
    expect(emulator.faults.pending()).toEqual([]);
  });

  it('times out a slow answer and retries', async () => {
    emulator.faults.inject({ kind: 'slow', port: 'be', delayMs: 5_000, table: 't' });
    const result = await client({ requestTimeoutMs: 500 }).load({
      table: 't',
      label: nextLabel(),
      body: body([9, 'i']),
    });
    expect(result.status).toBe('Success');
    expect(result.attempts).toBeGreaterThanOrEqual(2);
  });

  it('stops at once with an operator error on a 4xx that retrying cannot fix', async () => {
    emulator.faults.inject({ kind: 'http-error', port: 'fe', status: 404, table: 't' });
    const error = await client()
      .load({ table: 't', label: nextLabel(), body: body([11, 'k']) })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ kind: 'operator', solution: expect.stringMatching(/http_port/) });
    expect((error as Error).message).toMatch(/HTTP 404/);
  });

  it('gives up with a transient error once the attempts are spent', async () => {
    const label = nextLabel();
    for (let i = 0; i < 3; i++) emulator.faults.inject({ kind: 'fail', message: 'disk is full', table: 't' });
    const error = await client({ retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } })
      .load({ table: 't', label, body: body([10, 'j']) })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StarRocksError);
    expect(error).toMatchObject({ kind: 'transient', label });
    expect((error as Error).message).toMatch(/disk is full.*gave up after 3 attempts/);
  });

  it('stops with an operator error for an unknown table, read from the FE’s error shape', async () => {
    const error = await client()
      .load({ table: 'missing', label: nextLabel(), body: body([1, 'a']) })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ kind: 'operator' });
    expect((error as Error).message).toMatch(/unknown table, tableName=missing/);
    expect(emulator.requests.at(-1)?.port).toBe('fe');
  });

  it('rewrites a loopback Location to the FE host only when asked', async () => {
    const detour = await startStarRocksEmulator({ redirectHost: '127.0.0.9' });
    try {
      await createTable(detour, 't');
      const base = {
        name: 'detour',
        host: '127.0.0.1',
        queryPort: detour.mysqlPort,
        httpPort: detour.fePort,
        user: 'root',
        password: '',
        database: DATABASE,
      };
      const direct = createStreamLoadClient({ datasource: base, retry: { attempts: 1 } });
      await expect(
        direct.load({ table: 't', label: nextLabel(), body: body([1, 'a']) }),
      ).rejects.toMatchObject({ kind: 'transient' });
      const rewriting = createStreamLoadClient({
        datasource: { ...base, rewriteLoopbackRedirect: true },
        retry: { attempts: 1 },
      });
      await expect(
        rewriting.load({ table: 't', label: nextLabel(), body: body([1, 'a']) }),
      ).resolves.toMatchObject({ status: 'Success' });
    } finally {
      await detour.stop();
    }
  });

  it('refuses to follow the FE to a public host with the credentials, naming the host and the fix', async () => {
    // A hostile or misconfigured FE points the load (Authorization included) at a host of its choosing.
    const outside = await startStarRocksEmulator({ redirectHost: '203.0.113.7' });
    try {
      await createTable(outside, 't');
      const started = Date.now();
      const error = await createStreamLoadClient({
        datasource: datasourceOf(outside, { user: 'root', password: '' }),
        retry: { attempts: 3, baseDelayMs: 1 },
        requestTimeoutMs: 5_000,
      })
        .load({ table: 't', label: nextLabel(), body: body([1, 'a']) })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StarRocksError);
      expect(error).toMatchObject({ kind: 'operator' });
      expect((error as StarRocksError).message).toMatch(
        /redirected Stream Load to 203\.0\.113\.7 \(a public address\).*refusing to send the credentials/,
      );
      expect((error as StarRocksError).solution).toMatch(/priority_networks/);
      // Refused, not tried: no connection to 203.0.113.7 was attempted (that would have taken the timeout).
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await outside.stop();
    }
  });

  it('refuses a link-local (cloud metadata) redirect target and a name that does not resolve', async () => {
    for (const redirectHost of ['169.254.169.254', 'be.invalid']) {
      const outside = await startStarRocksEmulator({ redirectHost });
      try {
        await createTable(outside, 't');
        const error = await createStreamLoadClient({
          datasource: datasourceOf(outside, { user: 'root', password: '' }),
          retry: { attempts: 1 },
          requestTimeoutMs: 5_000,
        })
          .load({ table: 't', label: nextLabel(), body: body([1, 'a']) })
          .catch((caught: unknown) => caught);
        expect((error as StarRocksError).message).toContain(`redirected Stream Load to ${redirectHost}`);
      } finally {
        await outside.stop();
      }
    }
  });

  it('the FE refuses a Stream Load without Expect: 100-continue', async () => {
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(
        {
          host: '127.0.0.1',
          port: emulator.fePort,
          method: 'PUT',
          path: `/api/${DATABASE}/t/_stream_load`,
          headers: {
            authorization: `Basic ${Buffer.from('loader:load-secret').toString('base64')}`,
            'content-length': 2,
          },
        },
        (response) => {
          let text = '';
          response.on('data', (part) => (text += part));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        },
      );
      request.on('error', reject);
      request.end('[]');
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({
      status: 'FAILED',
      msg: 'There is no 100-continue header',
    });
  });
});

describe('Stream Load with TLS', () => {
  let emulator: StarRocksEmulator;
  let ca: string;

  beforeAll(async () => {
    const authority = await createTestCa('Sluice StarRocks Test CA');
    const server = await authority.issueServer(['127.0.0.1', 'localhost']);
    ca = authority.certPem;
    emulator = await startStarRocksEmulator({ tls: server });
    await createTable(emulator, 't');
  });
  afterAll(() => emulator?.stop());

  it('refuses to follow a redirect to a plain-HTTP BE, and says how to allow it', async () => {
    const datasource = datasourceOf(emulator, { ssl: { ca } });
    const error = await createStreamLoadClient({ datasource, retry: { attempts: 2, baseDelayMs: 1 } })
      .load({ table: 't', label: nextLabel(), body: body([1, 'secret row']) })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ kind: 'operator' });
    expect((error as StarRocksError).message).toMatch(
      /plain-HTTP http:\/\/127\.0\.0\.1:\d+.*refusing to send rows in clear/,
    );
    expect((error as StarRocksError).solution).toMatch(/allowPlaintextBeRedirect/);
    // The FE was reached over TLS; the BE never saw a byte.
    expect(emulator.requests.filter((request) => request.port === 'be')).toEqual([]);
  });

  it('sends to a plain-HTTP BE only when the operator allowed it', async () => {
    const datasource = datasourceOf(emulator, { ssl: { ca }, allowPlaintextBeRedirect: true });
    const result = await createStreamLoadClient({ datasource }).load({
      table: 't',
      label: nextLabel(),
      body: body([2, 'ok']),
    });
    expect(result.status).toBe('Success');
  });

  it('refuses an FE certificate from an unknown CA', async () => {
    const stranger = await createTestCa('Some Other CA');
    const datasource = datasourceOf(emulator, {
      ssl: { ca: stranger.certPem },
      allowPlaintextBeRedirect: true,
    });
    const error = await createStreamLoadClient({ datasource, retry: { attempts: 1 } })
      .load({ table: 't', label: nextLabel(), body: body([3, 'x']) })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ kind: 'operator' });
    expect((error as Error).message).toMatch(/TLS certificate not trusted/);
  });

  it('refuses a MySQL port without TLS instead of falling back to plain text', async () => {
    const sink = createStarRocksSink({ datasource: datasourceOf(emulator, { ssl: { ca } }) });
    const error = await sink
      .ensureTable({
        table: { schema: 'public', name: 'x' },
        columns: [{ name: 'id', type: int4, nullable: false }],
        primaryKey: ['id'],
      })
      .catch((caught: unknown) => caught);
    await sink.close();
    expect(error).toMatchObject({ kind: 'operator' });
    expect((error as Error).message).toMatch(/does not offer TLS on its MySQL port/);
    expect(emulator.statements.some((statement) => statement.includes('`x`'))).toBe(false);
  });
});

describe('Stream Load TLS verifies the FE certificate names the host', () => {
  let authority: Awaited<ReturnType<typeof createTestCa>>;
  const emulators: StarRocksEmulator[] = [];

  beforeAll(async () => {
    authority = await createTestCa('Sluice StarRocks Names Test CA');
  });
  afterAll(async () => {
    for (const emulator of emulators) await emulator.stop();
  });

  async function emulatorFor(names: string[]): Promise<StarRocksEmulator> {
    const emulator = await startStarRocksEmulator({ tls: await authority.issueServer(names) });
    emulators.push(emulator);
    await createTable(emulator, 't');
    return emulator;
  }

  async function loadVia(emulator: StarRocksEmulator, host: string) {
    const datasource = datasourceOf(emulator, {
      host,
      ssl: { ca: authority.certPem },
      allowPlaintextBeRedirect: true,
    });
    return createStreamLoadClient({ datasource, retry: { attempts: 1 } })
      .load({ table: 't', label: nextLabel(), body: body([1, 'row']) })
      .catch((caught: unknown) => caught);
  }

  it('refuses a trusted certificate issued for another name, before sending credentials', async () => {
    const emulator = await emulatorFor(['starrocks.other.example']);
    const error = await loadVia(emulator, 'localhost');
    expect(error).toBeInstanceOf(StarRocksError);
    expect(error).toMatchObject({ kind: 'operator' });
    const message = (error as StarRocksError).message;
    expect(message).toContain(`at localhost:${emulator.fePort}`);
    expect(message).toContain('not valid for the expected name "localhost"');
    expect(message).toContain('DNS:starrocks.other.example');
    // The TLS handshake failed: the FE never saw a request, so never the Authorization header.
    expect(emulator.requests).toEqual([]);
  });

  it('checks an address against the IP SANs, and accepts the name the certificate holds', async () => {
    const emulator = await emulatorFor(['localhost']);
    const refused = await loadVia(emulator, '127.0.0.1');
    expect(refused).toBeInstanceOf(StarRocksError);
    expect((refused as StarRocksError).message).toContain('not valid for the expected name "127.0.0.1"');
    expect(emulator.requests).toEqual([]);
    expect(await loadVia(emulator, 'localhost')).toMatchObject({ status: 'Success' });
  });
});
