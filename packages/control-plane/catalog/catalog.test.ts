import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_OWNER, type Catalog, openCatalog } from './catalog.ts';

const logger = pino({ level: 'silent' });

describe('the embedded catalog', () => {
  let parent: string;
  let dataDir: string;

  beforeAll(async () => {
    parent = await mkdtemp(path.join(tmpdir(), 'sluice-catalog-'));
    // As root, the embedded PostgreSQL runs as `postgres`, which must be able to traverse to its directory.
    await chmod(parent, 0o711);
    dataDir = path.join(parent, 'data');
  });
  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  async function superuserOf(catalog: Catalog): Promise<pg.Client> {
    const { port } = catalog.pool.options as { port: number };
    const password = (await readFile(path.join(dataDir, 'catalog.password'), 'utf8')).trim();
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'sluice' });
    await client.connect();
    return client;
  }

  it('hands the control plane a session that is not a superuser, and can do nothing a superuser can', async () => {
    const catalog = await openCatalog({ kind: 'embedded', dataDir }, logger);
    try {
      const who = await catalog.pool.query<{ user: string; rolsuper: boolean; db_owner: string }>(
        `select current_user as user, rolsuper,
                (select pg_get_userbyid(datdba) from pg_database where datname = current_database()) as db_owner
           from pg_roles where rolname = current_user`,
      );
      expect(who.rows[0]).toEqual({ user: CATALOG_OWNER, rolsuper: false, db_owner: CATALOG_OWNER });
      // What an injected statement would try as a superuser.
      await expect(catalog.pool.query("select pg_read_file('PG_VERSION')")).rejects.toThrow(
        /permission denied/,
      );
      await expect(catalog.pool.query("copy (select 1) to program 'true'")).rejects.toThrow(
        /permission denied|must be superuser|not allowed/,
      );
      await expect(catalog.pool.query('create role intruder superuser')).rejects.toThrow(/permission denied/);
      // The migrations ran as the owner: it owns the tables it uses.
      const owners = await catalog.pool.query<{ owner: string }>(
        "select distinct pg_get_userbyid(relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and relkind = 'r'",
      );
      expect(owners.rows).toEqual([{ owner: CATALOG_OWNER }]);
    } finally {
      await catalog.close();
    }
  });

  it('takes over a catalog the superuser migrated (a data directory from before the owner role)', async () => {
    let catalog = await openCatalog({ kind: 'embedded', dataDir }, logger);
    const admin = await superuserOf(catalog);
    try {
      // Undo the hand-over, as an older control plane left things.
      await admin.query('alter database sluice owner to postgres');
      const tables = await admin.query<{ name: string }>(
        "select c.oid::regclass::text as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and relkind = 'r'",
      );
      for (const { name } of tables.rows) await admin.query(`alter table ${name} owner to postgres`);
      await admin.query('alter function audit_events_append_only() owner to postgres');
      await admin.query(`alter role ${CATALOG_OWNER} superuser`);
    } finally {
      await admin.end();
      await catalog.close();
    }
    catalog = await openCatalog({ kind: 'embedded', dataDir }, logger);
    try {
      const who = await catalog.pool.query<{ rolsuper: boolean }>(
        'select rolsuper from pg_roles where rolname = current_user',
      );
      expect(who.rows[0]?.rolsuper).toBe(false);
      const foreign = await catalog.pool.query(
        "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and relkind in ('r', 'S') and relowner <> (select oid from pg_roles where rolname = current_user)",
      );
      expect(foreign.rowCount).toBe(0);
      await catalog.pool.query('select count(*) from schema_migrations');
    } finally {
      await catalog.close();
    }
  });
});
