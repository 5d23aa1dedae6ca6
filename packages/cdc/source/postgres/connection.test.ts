import {
  CERT_AUTH_USER,
  createTestCa,
  createTestDatabase,
  type PostgresServer,
  sharedPostgres,
  startPostgres,
  type TestDatabase,
} from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type ConnectionOptions,
  createConnector,
  parseConnectionString,
  type SslMode,
} from './connection.ts';
import { SourceError } from './source-error.ts';

async function sslUsed(options: ConnectionOptions): Promise<boolean> {
  const client = await createConnector(options).connect();
  try {
    const { rows } = await client.query<{ ssl: boolean }>(
      'select ssl from pg_stat_ssl where pid = pg_backend_pid()',
    );
    return rows[0]!.ssl;
  } finally {
    await client.end();
  }
}

async function failure(promise: Promise<unknown>): Promise<SourceError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SourceError);
    return error as SourceError;
  }
  throw new Error('expected a failure');
}

describe('sslmode against a TLS server', () => {
  let db: TestDatabase;
  let base: ConnectionOptions;
  let otherCa: string;
  beforeAll(async () => {
    db = await createTestDatabase('tls');
    const server = sharedPostgres();
    base = {
      host: server.host,
      port: server.port,
      database: db.name,
      user: server.user,
      password: server.password,
    };
    otherCa = (await createTestCa('Unrelated CA')).certPem;
  });
  afterAll(async () => {
    await db?.drop();
  });

  it.each<[SslMode, boolean]>([
    ['disable', false],
    ['allow', false],
    ['prefer', true],
    ['require', true],
  ])('%s without a root certificate connects with TLS = %s', async (sslMode, tls) => {
    expect(await sslUsed({ ...base, sslMode })).toBe(tls);
  });

  it('binds SCRAM to the TLS channel (SCRAM-SHA-256-PLUS) over TLS, and uses plain SCRAM without TLS', async () => {
    // pg's Connection is not exported under a stable name everywhere; the prototype of a live client's is.
    const probe = new pg.Client();
    const prototype = Object.getPrototypeOf((probe as unknown as { connection: object }).connection) as {
      sendSASLInitialResponseMessage(mechanism: string, response: string): void;
    };
    const spy = vi.spyOn(prototype, 'sendSASLInitialResponseMessage');
    try {
      const ca = sharedPostgres().caPem!;
      expect(await sslUsed({ ...base, sslMode: 'verify-full', sslRootCert: ca })).toBe(true);
      expect(spy.mock.calls.map(([mechanism]) => mechanism)).toEqual(['SCRAM-SHA-256-PLUS']);
      spy.mockClear();
      expect(await sslUsed({ ...base, sslMode: 'disable' })).toBe(false);
      expect(spy.mock.calls.map(([mechanism]) => mechanism)).toEqual(['SCRAM-SHA-256']);
    } finally {
      spy.mockRestore();
    }
  });

  it('require, verify-ca and verify-full verify the chain against the root certificate', async () => {
    const ca = sharedPostgres().caPem!;
    for (const sslMode of ['require', 'verify-ca', 'verify-full'] as const) {
      expect(await sslUsed({ ...base, sslMode, sslRootCert: ca })).toBe(true);
      const error = await failure(sslUsed({ ...base, sslMode, sslRootCert: otherCa }));
      expect(error.code).toBe('tls');
      expect(error.message).toMatch(/not trusted/);
    }
  });

  it('verify-full with a host name the certificate does not hold fails; verify-ca does not check the name', async () => {
    const ca = sharedPostgres().caPem!;
    const elsewhere = { ...base, host: 'db.example.com', hostaddr: '127.0.0.1', sslRootCert: ca };
    const error = await failure(sslUsed({ ...elsewhere, sslMode: 'verify-full' }));
    expect(error.code).toBe('tls');
    expect(error.message).toMatch(/does not name the host db\.example\.com/);
    expect(await sslUsed({ ...elsewhere, sslMode: 'verify-ca' })).toBe(true);
  });

  it('verify-ca without a root certificate is a configuration error, before any connection', () => {
    expect(() => createConnector({ ...base, sslMode: 'verify-ca' })).toThrow(
      expect.objectContaining({ code: 'config', message: expect.stringMatching(/needs a root certificate/) }),
    );
  });

  it('allow retries with TLS when the server refuses plaintext, and a client certificate authenticates', async () => {
    const server = sharedPostgres();
    await db.client.query(`create role ${CERT_AUTH_USER} login`).catch((error: Error) => {
      if (!/already exists/.test(error.message)) throw error;
    });
    const certificate = {
      ...base,
      user: CERT_AUTH_USER,
      password: undefined,
      sslClientCert: server.clientCert!.certPem,
      sslClientKey: server.clientCert!.keyPem,
    };
    expect(await sslUsed({ ...certificate, sslMode: 'allow' })).toBe(true);
    expect(await sslUsed({ ...certificate, sslMode: 'verify-full', sslRootCert: server.caPem! })).toBe(true);
    const error = await failure(sslUsed({ ...certificate, sslMode: 'disable' }));
    expect(error.code).toBe('auth');
  });

  it('takes the password late, from a function called per connection, and never shows it', async () => {
    const canary = 'canary-Pa55word-7d1f';
    let calls = 0;
    const supplier = async () => {
      calls++;
      return calls === 1 ? (base.password as string) : canary;
    };
    expect(await sslUsed({ ...base, password: supplier, sslMode: 'require' })).toBe(true);
    expect(calls).toBe(1);
    const error = await failure(sslUsed({ ...base, password: supplier, sslMode: 'require' }));
    expect(error.code).toBe('auth');
    expect(`${error.message} ${JSON.stringify(error)} ${String(error.stack)}`).not.toContain(canary);
  });
});

describe('sslmode against a server without TLS', () => {
  let server: PostgresServer;
  let base: ConnectionOptions;
  beforeAll(async () => {
    server = await startPostgres({ tls: false });
    base = {
      host: server.host,
      port: server.port,
      database: 'postgres',
      user: server.user,
      password: server.password,
    };
  });
  afterAll(async () => {
    await server?.stop();
  });

  it.each<SslMode>(['disable', 'allow', 'prefer'])('%s connects in plaintext', async (sslMode) => {
    expect(await sslUsed({ ...base, sslMode })).toBe(false);
  });

  it.each<SslMode>(['require', 'verify-ca', 'verify-full'])(
    '%s refuses to fall back to plaintext',
    async (sslMode) => {
      const error = await failure(sslUsed({ ...base, sslMode, sslRootCert: sharedPostgres().caPem! }));
      expect(error.code).toBe('tls');
      expect(error.message).toMatch(/does not offer TLS/);
    },
  );
});

describe('connection strings', () => {
  it('parses libpq key=value strings with quoting and escapes', () => {
    expect(
      parseConnectionString(
        `host=db.internal port=6543 dbname='my db' user=u password='it\\'s a \\\\secret' sslmode=verify-ca`,
      ),
    ).toEqual({
      host: 'db.internal',
      port: 6543,
      database: 'my db',
      user: 'u',
      password: "it's a \\secret",
      sslMode: 'verify-ca',
    });
  });

  it('parses URIs with percent-encoding, IPv6 hosts and parameters', () => {
    expect(
      parseConnectionString(
        'postgresql://app%40x:p%3Ass@[::1]:5433/sales?sslmode=require&application_name=etl',
      ),
    ).toEqual({
      host: '::1',
      port: 5433,
      database: 'sales',
      user: 'app@x',
      password: 'p:ss',
      sslMode: 'require',
      applicationName: 'etl',
    });
    expect(parseConnectionString('postgres://u@h')).toEqual({ host: 'h', user: 'u', database: 'u' });
  });

  it.each([
    ['', /empty/],
    ['host', /malformed/],
    ['host=h user=u sslmode=bogus', /sslmode must be one of/],
    ['host=h user=u fallback_application=x', /fallback_application is not supported/],
    ["host=h user=u password='topsecret-unterminated", /password has no closing quote/],
    ['postgres://u:topsecret-pw@h:99999/db', /port must be an integer/],
    ['host=h1,h2 user=u password=topsecret-pw', /several hosts/],
    ['host=h user=u sslrootcert=/etc/ssl/topsecret', /sslrootcert is not supported/],
    ['postgres://u:%ZZtopsecret@h/db', /password has a malformed percent-encoding/],
    ['host=/var/run/postgresql user=u', /Unix-domain/],
    ['dbname=x user=u', /no host/],
    ['mysql://u:topsecret@h/db', /malformed/],
  ])('refuses %j precisely, without echoing secrets', (text, message) => {
    let caught: unknown;
    try {
      parseConnectionString(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SourceError);
    const error = caught as SourceError;
    expect(error.code).toBe('config');
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/topsecret/);
  });
});

describe('hostile configuration', () => {
  const base = { host: '127.0.0.1', database: 'd', user: 'u' };
  it.each<[string, Partial<ConnectionOptions>, RegExp]>([
    [
      'a root certificate that is not PEM',
      { sslRootCert: 'not a certificate' },
      /root certificate is not a PEM certificate/,
    ],
    [
      'a root certificate with a corrupt body',
      { sslRootCert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' },
      /root certificate is not a valid PEM certificate/,
    ],
    [
      'a client certificate without its key',
      { sslClientCert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' },
      /needs its private key/,
    ],
    ['an unknown sslmode', { sslMode: 'sometimes' as SslMode }, /unknown sslmode/],
    ['a port out of range', { port: 70000 }, /port must be/],
    ['a NUL in the user', { user: 'a\0b' }, /user must be/],
  ])('%s is a configuration error', (_what, options, message) => {
    expect(() => createConnector({ ...base, ...options })).toThrow(
      expect.objectContaining({ code: 'config', message: expect.stringMatching(message) }),
    );
  });

  it('a corrupt client key, or one of another certificate, is refused without echoing it', async () => {
    const ca = await createTestCa();
    const pair = await ca.issueClient('x');
    const other = await ca.issueClient('y');
    const lines = pair.keyPem.split('\n');
    const corrupt = [lines[0], 'topsecretTOPSECRET', ...lines.slice(2)].join('\n');
    for (const [key, message] of [
      [corrupt, /client key is not a valid PEM private key/],
      [other.keyPem, /client key does not belong to the ssl client certificate/],
    ] as const) {
      let caught: unknown;
      try {
        createConnector({ ...base, sslClientCert: pair.certPem, sslClientKey: key });
      } catch (error) {
        caught = error;
      }
      expect((caught as SourceError).message).toMatch(message);
      expect((caught as SourceError).message).not.toMatch(/topsecret|BEGIN/i);
    }
  });

  it('an unreachable server is a connection error naming host and port only', async () => {
    const error = await failure(
      createConnector({
        ...base,
        port: 1,
        password: 'topsecret-pw',
        sslMode: 'disable',
        connectTimeoutMs: 2000,
      }).connect(),
    );
    expect(error.code).toBe('connection');
    expect(error.transient).toBe(true);
    expect(error.message).toMatch(/127\.0\.0\.1:1/);
    expect(error.message).not.toMatch(/topsecret/);
  });
});
