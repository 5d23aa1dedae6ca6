// Whether a job's tables can be replicated, checked before the job exists (`sluice job create`, `sluice
// datasource test --table`): each must exist, be readable by the role, and have a key the stream can carry —
// a primary key, or a usable replica identity. The first table that fails is named with the statement that
// fixes it. Runs on a worker (the control plane never connects to customer databases).
import type pg from 'pg';
import { qualifiedName, quoteIdent, type TableRef } from '../../change-event.ts';
import { SourceError } from './source-error.ts';
import { loadTableDetails, type TableDetails } from './source-schema.ts';

/**
 * Throws a `SourceError` (code `table`) naming the first table that does not exist, is not readable, or has
 * neither a primary key nor a usable replica identity (NOTHING is never usable; DEFAULT and FULL need a
 * primary key, since StarRocks upserts by key; USING INDEX is usable), with the fix as its `solution`.
 */
export async function checkReplicableTables(client: pg.Client, tables: readonly TableRef[]): Promise<void> {
  for (const table of tables) {
    const details = await loadTableDetails(client, table);
    if (!details) throw await missingTable(client, table);
    await checkReadable(client, table, details);
    checkKey(table, details, await identityCandidate(client, details.oid));
  }
}

async function missingTable(client: pg.Client, table: TableRef): Promise<SourceError> {
  const name = qualifiedName(table);
  // Something by that name that is not a table, or a table whose name differs only in case.
  const { rows } = await client.query<{ schema: string; name: string; relkind: string }>(
    `select n.nspname as schema, c.relname as name, c.relkind
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where lower(n.nspname) = lower($1) and lower(c.relname) = lower($2)
        and c.relkind in ('r', 'p', 'v', 'm', 'f')
      order by (n.nspname = $1 and c.relname = $2) desc, n.nspname, c.relname
      limit 1`,
    [table.schema, table.name],
  );
  const found = rows[0];
  if (found && found.schema === table.schema && found.name === table.name) {
    const kind =
      { v: 'a view', m: 'a materialized view', f: 'a foreign table' }[found.relkind] ?? 'not a table';
    return new SourceError('table', `${name} is ${kind}; only tables can be replicated`, {
      solution: `remove ${name} from the job's tables`,
    });
  }
  if (found && (found.relkind === 'r' || found.relkind === 'p')) {
    const other = qualifiedName({ schema: found.schema, name: found.name });
    return new SourceError('table', `table ${name} does not exist`, {
      solution: `did you mean ${found.schema}.${found.name} (${other})? Names are case-sensitive`,
    });
  }
  return new SourceError('table', `table ${name} does not exist`, {
    solution: `create it, or remove ${name} from the job's tables`,
  });
}

async function checkReadable(client: pg.Client, table: TableRef, details: TableDetails): Promise<void> {
  const { rows } = await client.query<{ role: string; usage: boolean; select: boolean }>(
    `select current_user as role,
            has_schema_privilege(c.relnamespace, 'usage') as usage,
            has_table_privilege(c.oid, 'select') as select
       from pg_class c where c.oid = $1`,
    [details.oid],
  );
  const access = rows[0];
  if (!access) throw new SourceError('table', `table ${qualifiedName(table)} does not exist`);
  const role = quoteIdent(access.role);
  if (!access.usage)
    throw new SourceError('table', `role ${role} may not use schema ${quoteIdent(table.schema)}`, {
      solution: `run: grant usage on schema ${quoteIdent(table.schema)} to ${role}`,
    });
  if (!access.select)
    throw new SourceError('table', `role ${role} may not read table ${qualifiedName(table)}`, {
      solution: `run: grant select on table ${qualifiedName(table)} to ${role}`,
    });
}

/** A unique index PostgreSQL accepts as replica identity: not partial, no expressions, immediate, all NOT NULL. */
async function identityCandidate(client: pg.Client, oid: number): Promise<string | undefined> {
  const { rows } = await client.query<{ name: string }>(
    `select ic.relname as name
       from pg_index i join pg_class ic on ic.oid = i.indexrelid
      where i.indrelid = $1 and i.indisunique and i.indimmediate and i.indisvalid
        and i.indpred is null and i.indexprs is null
        and not exists (
          select 1 from unnest(i.indkey::int2[]) as k(attnum)
            join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
           where not a.attnotnull)
      order by i.indisprimary desc, i.indnatts, ic.relname
      limit 1`,
    [oid],
  );
  return rows[0]?.name;
}

function checkKey(table: TableRef, details: TableDetails, candidate: string | undefined): void {
  const name = qualifiedName(table);
  const identity = details.replicaIdentity;
  // `key` is the primary key's columns unless the identity is an index; for NOTHING it is the primary key.
  if (identity === 'n') {
    const solution =
      details.key.length > 0
        ? `run: alter table ${name} replica identity default (it uses the primary key)`
        : noKeySolution(name, candidate);
    throw new SourceError(
      'table',
      `table ${name} has REPLICA IDENTITY NOTHING: its updates and deletes carry no key`,
      {
        solution,
      },
    );
  }
  if (details.key.length > 0) return;
  // FULL carries whole old rows, but a StarRocks Primary Key table still needs a key to upsert by.
  const what =
    identity === 'i'
      ? 'has no primary key and its replica identity index is gone'
      : identity === 'f'
        ? 'has REPLICA IDENTITY FULL but no primary key: StarRocks needs a key to upsert and delete by'
        : 'has no primary key or replica identity';
  throw new SourceError('table', `table ${name} ${what}`, { solution: noKeySolution(name, candidate) });
}

function noKeySolution(name: string, candidate: string | undefined): string {
  if (candidate) return `run: alter table ${name} replica identity using index ${quoteIdent(candidate)}`;
  return `run: alter table ${name} add primary key (<key columns>)`;
}
