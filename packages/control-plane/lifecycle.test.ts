import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { createKeyring, generateEncryptionKey } from '@sluice/crypto';
import { AuthService, health } from '@sluice/proto';
import { createTestDatabase, waitFor } from '@sluice/testkit';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrate } from './catalog/migrate.ts';
import { rotateCatalogKeys } from './catalog/rotate-encryption-keys.ts';
import { loadConfig } from './config.ts';
import { startControlPlane } from './control-plane.ts';
import { devCertificatePaths } from './dev-certificates.ts';
import { ADMIN, startTestControlPlane } from './test-control-plane.ts';

const MIGRATIONS = (await readdir(path.join(import.meta.dirname, 'catalog', 'migrations'))).filter((f) =>
  f.endsWith('.sql'),
);

describe('starting and stopping', () => {
  it('migrates one catalog safely when two control planes start at once', async () => {
    const db = await createTestDatabase('cp_two');
    try {
      // Four bare migrations racing: every file is applied exactly once in total.
      const pools = Array.from({ length: 4 }, () => new pg.Pool({ ...db.config, max: 2 }));
      try {
        const results = await Promise.all(pools.map((pool) => migrate(pool)));
        expect(results.flatMap((r) => r.applied).sort()).toEqual(MIGRATIONS.sort());
      } finally {
        await Promise.all(pools.map((pool) => pool.end()));
      }
      const recorded = await db.client.query('select version from schema_migrations order by version');
      expect(recorded.rows.map((r: { version: string }) => r.version)).toEqual(MIGRATIONS.sort());

      // Two whole control planes starting together on that catalog agree on one internal CA and both serve.
      const keyring = createKeyring(generateEncryptionKey());
      const [a, b] = await Promise.all([
        startTestControlPlane({ db, keyring }),
        startTestControlPlane({ db, keyring }),
      ]);
      try {
        expect(a.cp.internalCa.certPem).toBe(b.cp.internalCa.certPem);
        for (const t of [a, b]) {
          const status = await createClient(health.Health, t.transport('grpc')).check({});
          expect(status.status).toBe(health.HealthCheckResponse_ServingStatus.SERVING);
        }
        // Each test replica has its own JWT secret, so each is checked with its own login.
        expect((await a.client(AuthService, await a.adminToken()).whoAmI({})).user?.username).toBe(
          ADMIN.username,
        );
        expect((await b.client(AuthService, await b.adminToken()).whoAmI({})).user?.username).toBe(
          ADMIN.username,
        );
        const admins = await db.client.query("select count(*)::int as n from users where role = 'admin'");
        expect(admins.rows[0].n).toBe(1);
        const cas = await db.client.query('select count(*)::int as n from internal_ca');
        expect(cas.rows[0].n).toBe(1);
      } finally {
        await a.stop();
        await b.stop();
      }
      // Starting again applies nothing.
      const pool = new pg.Pool(db.config);
      try {
        expect((await migrate(pool)).applied).toEqual([]);
      } finally {
        await pool.end();
      }
    } finally {
      await db.drop();
    }
  });

  it('lets an in-flight call finish while refusing new ones during shutdown', async () => {
    const t = await startTestControlPlane({ label: 'cp_shutdown' });
    const token = await t.adminToken();
    const blocker = new pg.Client(t.db.config);
    await blocker.connect();
    try {
      // Hold a lock the next call needs, so it is provably in flight when shutdown starts.
      await blocker.query('begin');
      await blocker.query('lock table users in access exclusive mode');
      const inFlight = t.client(AuthService, token).whoAmI({});
      await waitFor(
        async () => {
          const waiting = await blocker.query(
            "select count(*)::int as n from pg_locks where relation = 'users'::regclass and not granted",
          );
          return waiting.rows[0].n > 0;
        },
        { description: 'the call to wait on the users lock' },
      );
      const watcher = createClient(health.Health, t.transport('grpc'));
      const watched: number[] = [];
      const watching = (async () => {
        for await (const update of watcher.watch({})) watched.push(update.status);
      })();
      await waitFor(() => watched.length > 0, { description: 'the health watch to report' });
      const stopping = t.cp.stop();
      // A new connection is refused while the old call is still waiting.
      const fresh = createClient(
        health.Health,
        createConnectTransport({ baseUrl: t.cp.url, httpVersion: '2', nodeOptions: { ca: t.ca.certPem } }),
      );
      const refused = await waitFor(
        () =>
          fresh.check({}).then(
            () => false,
            (error: unknown) => error,
          ),
        { description: 'new calls to be refused' },
      );
      expect(refused).toBeInstanceOf(ConnectError);
      expect((refused as ConnectError).code).toBe(Code.Unavailable);
      await blocker.query('commit');
      const me = await inFlight;
      expect(me.user?.username).toBe(ADMIN.username);
      await stopping;
      await watching;
      const { SERVING, NOT_SERVING } = health.HealthCheckResponse_ServingStatus;
      expect(watched).toEqual([SERVING, NOT_SERVING]);
    } finally {
      await blocker.end();
      await t.db.drop();
    }
  });

  it('starts from the environment alone: embedded catalog and dev certificates in the data directory', async () => {
    const parent = await mkdtemp(path.join(tmpdir(), 'sluice-cp-'));
    // As root, the embedded PostgreSQL runs as `postgres`, which must be able to traverse to its directory.
    await chmod(parent, 0o711);
    const dataDir = path.join(parent, 'data');
    const env = {
      CONFIG_ENCRYPTION_KEY: generateEncryptionKey(),
      JWT_SECRET: generateEncryptionKey(),
      SLUICE_DATA_DIR: dataDir,
      SLUICE_LISTEN: '127.0.0.1:0',
      SLUICE_ADMIN_USERNAME: 'root-admin',
      SLUICE_ADMIN_PASSWORD: 'first-admin-password',
      SLUICE_LOG_LEVEL: 'warn',
    };
    const logs: string[] = [];
    const options = { logDestination: { write: (line: string) => void logs.push(line) } };
    // As if the key came from the real environment: the embedded PostgreSQL must not inherit it.
    process.env.CONFIG_ENCRYPTION_KEY = env.CONFIG_ENCRYPTION_KEY;
    let cp = await startControlPlane(loadConfig(env), options).finally(() => {
      delete process.env.CONFIG_ENCRYPTION_KEY;
    });
    try {
      // The postmaster's (backends overwrite theirs with their process title).
      const postmasterPid = (await readFile(path.join(dataDir, 'catalog', 'postmaster.pid'), 'utf8')).split(
        '\n',
      )[0];
      const environ = await readFile(`/proc/${postmasterPid}/environ`, 'utf8');
      expect(environ).toContain('PATH=');
      expect(environ).not.toContain(env.CONFIG_ENCRYPTION_KEY);
      expect(environ).not.toContain('CONFIG_ENCRYPTION_KEY');

      const paths = devCertificatePaths(dataDir);
      expect((await stat(paths.key)).mode & 0o777).toBe(0o600);
      expect((await stat(paths.cert)).mode & 0o777).toBe(0o600);
      const ca = await readFile(paths.ca, 'utf8');
      expect(ca).toBe(cp.trustedCaPem);
      const call = async () => {
        const transport = createConnectTransport({ baseUrl: cp.url, httpVersion: '2', nodeOptions: { ca } });
        const res = await createClient(AuthService, transport).login({
          username: 'root-admin',
          password: 'first-admin-password',
        });
        return res.user?.username;
      };
      expect(await call()).toBe('root-admin');
      const certBefore = await readFile(paths.cert, 'utf8');
      await cp.stop();
      // A restart reuses the catalog, the CA and the certificate.
      cp = await startControlPlane(loadConfig(env), options);
      expect(await readFile(paths.cert, 'utf8')).toBe(certBefore);
      expect(await call()).toBe('root-admin');

      // The offline rotation the CLI runs, then a start with only the new key.
      await cp.stop();
      const newKey = generateEncryptionKey();
      const rotated = await rotateCatalogKeys(
        loadConfig({
          ...env,
          CONFIG_ENCRYPTION_KEY: newKey,
          CONFIG_ENCRYPTION_PREVIOUS_KEYS: env.CONFIG_ENCRYPTION_KEY,
        }),
        options,
      );
      expect(rotated.reencrypted).toBe(1); // the internal CA key: no datasource exists here
      cp = await startControlPlane(loadConfig({ ...env, CONFIG_ENCRYPTION_KEY: newKey }), options);
      expect(await call()).toBe('root-admin');
    } finally {
      await cp.stop();
      await rm(parent, { recursive: true, force: true });
    }
  });
});
