// Preparing a source for a job: checks that say exactly what the operator must run, then the job's
// publication and logical replication slot, both named `sluice_<job>`. A new slot is created with an
// exported snapshot; the replication connection that created it stays open (and idle) while the snapshot
// is in use, because closing it ends the snapshot.
import type pg from 'pg';
import type { Lsn, TableRef, TableSchema } from '../../change-event.ts';
import { parseLsn, qualifiedName, quoteIdent } from '../../change-event.ts';
import type { Connector } from './connection.ts';
import { SourceError, serverMessage, sqlStateOf } from './source-error.ts';
import { loadTableSchema, type TypeCatalog } from './source-schema.ts';

/** `sluice_<job>`, the name of a job's slot and publication; job ids are UUIDs or similar. */
export function replicationName(job: string): string {
  const normal = job.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (!/[a-z0-9]/.test(normal) || normal.length > 56)
    throw new SourceError('config', 'job id must have 1–56 characters, letters or digits among them');
  return `sluice_${normal}`;
}

export interface SourceCheck {
  /** server_version_num, e.g. 180001. */
  serverVersion: number;
  /** The replicated tables' schemas, in the order asked. */
  schemas: TableSchema[];
  /** The tables' OIDs and page-size facts, for the snapshot planner. */
  tableOids: number[];
}

/** Everything the source needs, checked once, with a message telling the operator what to run. */
export async function checkSource(
  client: pg.Client,
  types: TypeCatalog,
  tables: readonly TableRef[],
): Promise<SourceCheck> {
  if (tables.length === 0) throw new SourceError('config', 'a job needs at least one table');
  const { rows } = await client.query<{
    wal_level: string;
    version: number;
    rolreplication: boolean;
    rolsuper: boolean;
    role: string;
    can_emit: boolean;
    signature: string | null;
  }>(
    `select current_setting('wal_level') as wal_level,
            current_setting('server_version_num')::int as version,
            r.rolreplication, r.rolsuper, current_user as role,
            coalesce(e.can_emit, false) as can_emit, e.signature
       from pg_roles r
       left join lateral (
         select has_function_privilege(p.oid, 'execute') as can_emit, p.oid::regprocedure::text as signature
           from pg_proc p
          where p.proname = 'pg_logical_emit_message' and p.pronamespace = 'pg_catalog'::regnamespace
            and p.proargtypes[2] = 'text'::regtype
          order by p.pronargs desc limit 1) e on true
      where r.rolname = current_user`,
  );
  const facts = rows[0];
  if (!facts) throw new SourceError('privilege', 'cannot read the current role from pg_roles');
  const role = quoteIdent(facts.role);
  if (facts.version < 140000)
    throw new SourceError('privilege', `PostgreSQL ${Math.floor(facts.version / 10000)} is too old`, {
      solution: 'Sluice needs PostgreSQL 14 or newer (pgoutput messages and streaming)',
    });
  if (facts.wal_level !== 'logical')
    throw new SourceError('privilege', `wal_level is ${facts.wal_level}, logical replication needs logical`, {
      solution: 'run: alter system set wal_level = logical; then restart PostgreSQL',
    });
  if (!facts.rolreplication && !facts.rolsuper)
    throw new SourceError('privilege', `role ${role} lacks the REPLICATION attribute`, {
      solution: `run: alter role ${role} with replication`,
    });
  if (!facts.can_emit)
    throw new SourceError('privilege', `role ${role} may not call pg_logical_emit_message (heartbeats)`, {
      solution: `run: grant execute on function ${facts.signature ?? 'pg_logical_emit_message(boolean, text, text)'} to ${role}`,
    });

  const schemas: TableSchema[] = [];
  const tableOids: number[] = [];
  for (const table of tables) {
    const { schema, details } = await loadTableSchema(client, types, table);
    const access = await client.query<{ ok: boolean }>(
      `select has_table_privilege($1::oid, 'select') as ok`,
      [details.oid],
    );
    if (!access.rows[0]?.ok)
      throw new SourceError('privilege', `role ${role} may not read table ${qualifiedName(table)}`, {
        solution: `run: grant select on table ${qualifiedName(table)} to ${role}`,
      });
    schemas.push(schema);
    tableOids.push(details.oid);
  }
  return { serverVersion: facts.version, schemas, tableOids };
}

/** Creates the publication, or makes an existing one publish exactly `tables`. */
export async function ensurePublication(
  client: pg.Client,
  name: string,
  tables: readonly TableRef[],
): Promise<void> {
  const list = tables.map(qualifiedName).join(', ');
  const existing = await client.query<{ schemaname: string; tablename: string }>(
    `select p.pubname, t.schemaname, t.tablename
       from pg_publication p left join pg_publication_tables t on t.pubname = p.pubname
      where p.pubname = $1`,
    [name],
  );
  let statement: string;
  if (existing.rowCount === 0) {
    // Via the root, so a partitioned table's changes carry the name the job asked for, not its leaves'.
    statement = `create publication ${quoteIdent(name)} for table ${list} with (publish_via_partition_root = true)`;
  } else {
    const have = new Set(
      existing.rows
        .filter((row) => row.tablename !== null)
        .map((row) => `${row.schemaname}\0${row.tablename}`),
    );
    const want = new Set(tables.map((table) => `${table.schema}\0${table.name}`));
    if (have.size === want.size && [...want].every((table) => have.has(table))) return;
    statement = `alter publication ${quoteIdent(name)} set table ${list}`;
  }
  try {
    await client.query(statement);
  } catch (error) {
    if (sqlStateOf(error) === '42501')
      throw new SourceError(
        'privilege',
        `cannot create or change publication ${name}: only the tables' owner can`,
        {
          solution: `run as the tables' owner: ${statement}`,
          cause: error,
          sqlState: '42501',
        },
      );
    throw new SourceError(
      'privilege',
      `cannot create or change publication ${name}: ${serverMessage(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** A job's slot, just created (with a live exported snapshot) or found from an earlier run. */
export interface SlotHandle {
  name: string;
  created: boolean;
  /**
   * Where the stream resumes: the consistent point of a new slot, or the confirmed_flush_lsn of an
   * existing one.
   */
  consistentPoint: Lsn;
  /** The snapshot exported when the slot was created; valid until `release()`. */
  snapshotName: string | undefined;
  /** Closes the replication connection that holds the exported snapshot. */
  release(): Promise<void>;
}

/** Finds the slot or creates it with an exported snapshot. */
export async function ensureSlot(
  connector: Connector,
  client: pg.Client,
  name: string,
  serverVersion: number,
): Promise<SlotHandle> {
  const found = await client.query<{
    plugin: string | null;
    database: string | null;
    confirmed_flush_lsn: string | null;
    max_slots: number;
    slots: number;
  }>(
    `select s.plugin, s.database, s.confirmed_flush_lsn::text,
            current_setting('max_replication_slots')::int as max_slots,
            (select count(*)::int from pg_replication_slots) as slots
       from (select 1) one left join pg_replication_slots s on s.slot_name = $1`,
    [name],
  );
  const slot = found.rows[0]!;
  if (slot.plugin !== null) {
    if (slot.plugin !== 'pgoutput' || slot.database !== connector.database)
      throw new SourceError(
        'slot',
        `replication slot ${name} exists but is not a pgoutput slot of this database`,
        {
          solution: `drop it (select pg_drop_replication_slot('${name}')) or give the job another id`,
        },
      );
    return {
      name,
      created: false,
      consistentPoint: parseLsn(slot.confirmed_flush_lsn ?? '0/0'),
      snapshotName: undefined,
      release: async () => undefined,
    };
  }
  if (slot.slots >= slot.max_slots)
    throw new SourceError('privilege', `all ${slot.max_slots} replication slots are in use`, {
      solution: 'raise max_replication_slots (and restart PostgreSQL) or drop unused slots',
    });

  const replication = await connector.connect({ replication: true });
  try {
    const syntax = serverVersion >= 150000 ? "(SNAPSHOT 'export')" : 'EXPORT_SNAPSHOT';
    const created = await replication.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${quoteIdent(name)} LOGICAL pgoutput ${syntax}`,
    );
    const row = created.rows[0];
    if (!row) throw new SourceError('protocol', 'CREATE_REPLICATION_SLOT returned no row');
    return {
      name,
      created: true,
      consistentPoint: parseLsn(row.consistent_point),
      snapshotName: row.snapshot_name,
      release: () => replication.end().catch(() => undefined),
    };
  } catch (error) {
    await replication.end().catch(() => undefined);
    if (error instanceof SourceError) throw error;
    throw new SourceError('slot', `cannot create replication slot ${name}: ${serverMessage(error)}`, {
      cause: error,
    });
  }
}

/** Drops the job's slot and publication (job deletion). Missing ones are fine. */
export async function dropReplication(client: pg.Client, name: string): Promise<void> {
  await client.query(
    `select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1`,
    [name],
  );
  await client.query(`drop publication if exists ${quoteIdent(name)}`);
}
