// Applies catalog/migrations/*.sql in file-name order, each once, inside its own transaction. A session-level
// advisory lock makes concurrent starts (two control planes on one catalog) take turns: the second one finds
// every migration recorded and applies nothing.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';

const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations');
/** Arbitrary but fixed: "sluice" in ASCII; shared by every control plane on the catalog. */
const MIGRATION_LOCK_KEY = 0x736c75696365;

export interface MigrationResult {
  /** File names applied by this call (empty when another process already did it). */
  applied: string[];
}

export async function migrate(pool: pg.Pool): Promise<MigrationResult> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((name) => name.endsWith('.sql')).sort();
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(
        'create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())',
      );
      const done = new Set(
        (await client.query<{ version: string }>('select version from schema_migrations')).rows.map(
          (row) => row.version,
        ),
      );
      for (const file of files) {
        if (done.has(file)) continue;
        const sql = await readFile(path.join(MIGRATIONS_DIR, file), 'utf8');
        await client.query('begin');
        try {
          await client.query(sql);
          await client.query('insert into schema_migrations (version) values ($1)', [file]);
          await client.query('commit');
        } catch (error) {
          await client.query('rollback');
          throw new Error(`catalog migration ${file} failed: ${(error as Error).message}`);
        }
        applied.push(file);
      }
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
  return { applied };
}
