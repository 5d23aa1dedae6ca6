// DatasourceService: PostgreSQL sources and StarRocks sinks. Non-secret settings go to a jsonb column; every
// secret (password, certificates, keys) is validated, encrypted with its row identity as AAD, and only its
// presence is ever returned. A connection string is parsed into fields and never stored as given.
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import {
  type Datasource,
  DatasourceKind,
  DatasourceSchema,
  type DatasourceService,
  PostgresDatasourceSchema,
  type PostgresDatasourceSpec,
  SslMode,
  StarRocksDatasourceSchema,
  type StarRocksDatasourceSpec,
  type TableRef,
} from '@sluice/proto';
import type pg from 'pg';
import type { AuditOutcome } from '../audit/audit-log.ts';
import { auditNoteKey, callerKey, peerKey } from '../call-context.ts';
import {
  currentTargetDigest,
  DatasourceTargetMismatchError,
  decryptDatasourceSecrets,
  encryptDatasourcePassword,
  targetDigest,
  targetFields,
  wipePlaintexts,
} from '../catalog/datasource-secrets.ts';
import { encryptField } from '../catalog/secret-columns.ts';
import { hostAllowed } from '../config.ts';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  isUniqueViolation,
  notFound,
  permissionDenied,
} from '../errors.ts';
import { parseConnectionString } from './connection-string.ts';
import { runConnectionTest, workerOnline } from './connection-tests.ts';
import type { ServiceDeps } from './service-deps.ts';
import {
  requireCertificatePem,
  requireHost,
  requireId,
  requireIdentifier,
  requireMaxLength,
  requireName,
  requirePort,
  requirePrivateKeyPem,
} from './validation.ts';

const TABLE = 'datasources';

interface PostgresConfig {
  host: string;
  port: number;
  database: string;
  username: string;
  sslMode: SslModeName;
}

interface StarRocksConfig {
  feHost: string;
  httpPort: number;
  mysqlPort: number;
  username: string;
  database: string;
  sslEnabled: boolean;
  allowPlaintextBeRedirect: boolean;
  rewriteLoopbackRedirect: boolean;
}

type SslModeName = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

const SSL_MODE_NAMES: Record<number, SslModeName> = {
  [SslMode.DISABLE]: 'disable',
  [SslMode.ALLOW]: 'allow',
  [SslMode.PREFER]: 'prefer',
  [SslMode.REQUIRE]: 'require',
  [SslMode.VERIFY_CA]: 'verify-ca',
  [SslMode.VERIFY_FULL]: 'verify-full',
};
const SSL_MODE_VALUES: Record<SslModeName, SslMode> = {
  disable: SslMode.DISABLE,
  allow: SslMode.ALLOW,
  prefer: SslMode.PREFER,
  require: SslMode.REQUIRE,
  'verify-ca': SslMode.VERIFY_CA,
  'verify-full': SslMode.VERIFY_FULL,
};

/** A secret column's change: keep what is stored, clear it, or store a new value. */
type SecretChange = { op: 'keep' } | { op: 'clear' } | { op: 'set'; value: string };

type SecretField = 'password' | 'ssl_root_cert' | 'ssl_client_cert' | 'ssl_client_key' | 'ca_cert';

interface DatasourceRow {
  id: string;
  name: string;
  kind: 'postgres' | 'starrocks';
  config: PostgresConfig | StarRocksConfig;
  has_password: boolean;
  has_ssl_root_cert: boolean;
  has_ssl_client_cert: boolean;
  has_ssl_client_key: boolean;
  has_ca_cert: boolean;
  created_at: Date;
  updated_at: Date;
}

const SELECT = `select id, name, kind, config,
  password_ciphertext is not null as has_password,
  ssl_root_cert_ciphertext is not null as has_ssl_root_cert,
  ssl_client_cert_ciphertext is not null as has_ssl_client_cert,
  ssl_client_key_ciphertext is not null as has_ssl_client_key,
  ca_cert_ciphertext is not null as has_ca_cert,
  created_at, updated_at
  from datasources`;

interface Resolved {
  kind: 'postgres' | 'starrocks';
  config: PostgresConfig | StarRocksConfig;
  secrets: Partial<Record<SecretField, SecretChange>>;
}

/** What is stored now, for rules that depend on the stored secrets (update keeps omitted ones). */
interface Stored {
  has: Record<SecretField, boolean>;
}

const NOTHING_STORED: Stored = {
  has: {
    password: false,
    ssl_root_cert: false,
    ssl_client_cert: false,
    ssl_client_key: false,
    ca_cert: false,
  },
};

function secretChange(
  field: SecretField,
  value: string | undefined,
  check: (field: string, value: string) => string,
): SecretChange {
  if (value === undefined) return { op: 'keep' };
  if (value === '') return { op: 'clear' };
  return { op: 'set', value: check(field, value) };
}

function effective(stored: Stored, change: SecretChange | undefined, field: SecretField): boolean {
  if (!change || change.op === 'keep') return stored.has[field];
  return change.op === 'set';
}

function checkPassword(field: string, value: string): string {
  return requireMaxLength(field, value, 1024);
}

function resolvePostgres(spec: PostgresDatasourceSpec, stored: Stored): Resolved {
  const fromString = spec.connectionString !== undefined ? parseConnectionString(spec.connectionString) : {};
  const host = requireHost('postgres.host', spec.host || fromString.host || '');
  const port = requirePort('postgres.port', spec.port || fromString.port || 0, 5432);
  const database = requireIdentifier('postgres.database', spec.database || fromString.database || '');
  const username = requireIdentifier('postgres.username', spec.username || fromString.username || '');
  const modeValue = spec.sslMode || fromString.sslMode || SslMode.VERIFY_FULL;
  const sslMode = SSL_MODE_NAMES[modeValue];
  if (!sslMode) throw invalidArgument(`postgres.ssl_mode ${modeValue} is not a known mode`);
  const password = spec.password ?? fromString.password;
  const secrets: Resolved['secrets'] = {
    password: secretChange('password', password, (f, v) => checkPassword(`postgres.${f}`, v)),
    ssl_root_cert: secretChange('ssl_root_cert', spec.sslRootCert, (f, v) =>
      requireCertificatePem(`postgres.${f}`, v),
    ),
    ssl_client_cert: secretChange('ssl_client_cert', spec.sslClientCert, (f, v) =>
      requireCertificatePem(`postgres.${f}`, v),
    ),
    ssl_client_key: secretChange('ssl_client_key', spec.sslClientKey, (f, v) =>
      requirePrivateKeyPem(`postgres.${f}`, v),
    ),
  };
  if (
    (sslMode === 'verify-ca' || sslMode === 'verify-full') &&
    !effective(stored, secrets.ssl_root_cert, 'ssl_root_cert')
  )
    throw invalidArgument(`postgres.ssl_mode ${sslMode} needs postgres.ssl_root_cert to verify the server`);
  const hasCert = effective(stored, secrets.ssl_client_cert, 'ssl_client_cert');
  const hasKey = effective(stored, secrets.ssl_client_key, 'ssl_client_key');
  if (hasCert !== hasKey)
    throw invalidArgument('postgres.ssl_client_cert and postgres.ssl_client_key must be given together');
  if (sslMode === 'disable' && (hasCert || effective(stored, secrets.ssl_root_cert, 'ssl_root_cert')))
    throw invalidArgument('postgres.ssl_mode disable would ignore the certificates given; choose a TLS mode');
  return { kind: 'postgres', config: { host, port, database, username, sslMode }, secrets };
}

function resolveStarRocks(spec: StarRocksDatasourceSpec, stored: Stored): Resolved {
  const feHost = requireHost('starrocks.fe_host', spec.feHost);
  const httpPort = requirePort('starrocks.http_port', spec.httpPort, 8030);
  const mysqlPort = requirePort('starrocks.mysql_port', spec.mysqlPort, 9030);
  const username = requireIdentifier('starrocks.username', spec.username);
  const database = requireIdentifier('starrocks.database', spec.database);
  const secrets: Resolved['secrets'] = {
    password: secretChange('password', spec.password, (f, v) => checkPassword(`starrocks.${f}`, v)),
    ca_cert: secretChange('ca_cert', spec.caCert, (f, v) => requireCertificatePem(`starrocks.${f}`, v)),
  };
  if (!spec.sslEnabled && effective(stored, secrets.ca_cert, 'ca_cert'))
    throw invalidArgument('starrocks.ca_cert is given but starrocks.ssl_enabled is false');
  return {
    kind: 'starrocks',
    config: {
      feHost,
      httpPort,
      mysqlPort,
      username,
      database,
      sslEnabled: spec.sslEnabled,
      allowPlaintextBeRedirect: spec.allowPlaintextBeRedirect,
      rewriteLoopbackRedirect: spec.rewriteLoopbackRedirect,
    },
    secrets,
  };
}

type SpecCase = CreateSpec['spec'];
interface CreateSpec {
  spec:
    | { case: 'postgres'; value: PostgresDatasourceSpec }
    | { case: 'starrocks'; value: StarRocksDatasourceSpec }
    | { case: undefined; value?: undefined };
}

function resolve(spec: SpecCase, stored: Stored): Resolved {
  if (spec.case === 'postgres') return resolvePostgres(spec.value, stored);
  if (spec.case === 'starrocks') return resolveStarRocks(spec.value, stored);
  throw invalidArgument('spec is required: postgres or starrocks');
}

function toDatasource(row: DatasourceRow): Datasource {
  const base = {
    id: row.id,
    name: row.name,
    createdAt: timestampFromDate(row.created_at),
    updatedAt: timestampFromDate(row.updated_at),
  };
  if (row.kind === 'postgres') {
    const config = row.config as PostgresConfig;
    return create(DatasourceSchema, {
      ...base,
      kind: DatasourceKind.POSTGRES,
      config: {
        case: 'postgres',
        value: create(PostgresDatasourceSchema, {
          host: config.host,
          port: config.port,
          database: config.database,
          username: config.username,
          sslMode: SSL_MODE_VALUES[config.sslMode],
          hasPassword: row.has_password,
          hasSslRootCert: row.has_ssl_root_cert,
          hasSslClientCert: row.has_ssl_client_cert,
          hasSslClientKey: row.has_ssl_client_key,
        }),
      },
    });
  }
  const config = row.config as StarRocksConfig;
  return create(DatasourceSchema, {
    ...base,
    kind: DatasourceKind.STARROCKS,
    config: {
      case: 'starrocks',
      value: create(StarRocksDatasourceSchema, {
        feHost: config.feHost,
        httpPort: config.httpPort,
        mysqlPort: config.mysqlPort,
        username: config.username,
        database: config.database,
        sslEnabled: config.sslEnabled,
        hasPassword: row.has_password,
        hasCaCert: row.has_ca_cert,
        allowPlaintextBeRedirect: config.allowPlaintextBeRedirect,
        rewriteLoopbackRedirect: config.rewriteLoopbackRedirect,
      }),
    },
  });
}

/** Loads one datasource without secrets, or throws NotFound. */
export async function loadDatasource(db: pg.Pool | pg.PoolClient, id: string): Promise<Datasource> {
  const result = await db.query<DatasourceRow>(`${SELECT} where id = $1`, [id]);
  const row = result.rows[0];
  if (!row) throw notFound('datasource', id);
  return toDatasource(row);
}

function noteResource(ctx: HandlerContext, id: string): void {
  const note = ctx.values.get(auditNoteKey);
  if (note) note.resourceId = id;
}

/**
 * Column assignments for the secret changes of one row (encrypting each new value with its AAD; a new password
 * with the digest of the connection target it is entered for, and its AAD version).
 */
function secretAssignments(
  deps: ServiceDeps,
  id: string,
  secrets: Resolved['secrets'],
  digest: string,
): Array<{ column: string; value: Buffer | number | null }> {
  const out: Array<{ column: string; value: Buffer | number | null }> = [];
  for (const [field, change] of Object.entries(secrets) as Array<[SecretField, SecretChange]>) {
    if (change.op === 'keep') continue;
    let value: Buffer | null = null;
    if (change.op === 'set')
      value =
        field === 'password'
          ? encryptDatasourcePassword(deps.keyring, id, digest, change.value)
          : encryptField(deps.keyring, TABLE, id, field, change.value);
    out.push({ column: `${field}_ciphertext`, value });
    if (field === 'password') out.push({ column: 'password_aad', value: 2 });
  }
  return out;
}

/** The CA that verifies the server: its secret field per kind. */
function caField(kind: Resolved['kind']): SecretField {
  return kind === 'postgres' ? 'ssl_root_cert' : 'ca_cert';
}

/** The CA a resolved spec leaves in place: the new one, none, or (kept) the stored one. */
function effectiveCa(resolved: Resolved, stored: string | undefined): string | undefined {
  const change = resolved.secrets[caField(resolved.kind)];
  if (!change || change.op === 'keep') return stored;
  return change.op === 'set' ? change.value : undefined;
}

const TARGET_FIELD_NAMES: Record<Resolved['kind'], string[]> = {
  postgres: ['kind', 'host', 'port', 'database', 'username', 'ssl_mode', 'ssl_root_cert'],
  starrocks: [
    'kind',
    'fe_host',
    'http_port',
    'mysql_port',
    'username',
    'ssl_enabled',
    'allow_plaintext_be_redirect',
    'rewrite_loopback_redirect',
    'ca_cert',
  ],
};

/** The API names of the target fields that differ (for the "give the password again" message). */
function changedTargetFields(
  kind: Resolved['kind'],
  before: { config: PostgresConfig | StarRocksConfig; ca: string | undefined },
  after: { config: PostgresConfig | StarRocksConfig; ca: string | undefined },
): string[] {
  const a = targetFields(kind, before.config as unknown as Record<string, unknown>, before.ca);
  const b = targetFields(kind, after.config as unknown as Record<string, unknown>, after.ca);
  const names = TARGET_FIELD_NAMES[kind];
  return names.filter((_, i) => JSON.stringify(a[i]) !== JSON.stringify(b[i])).map((n) => `${kind}.${n}`);
}

/** The host a datasource connects to, by kind. */
function hostOf(kind: Resolved['kind'], config: PostgresConfig | StarRocksConfig): string {
  return kind === 'postgres' ? (config as PostgresConfig).host : (config as StarRocksConfig).feHost;
}

/** SLUICE_DATASOURCE_HOSTS: refuse a host outside the allowlist (when one is configured). */
function requireAllowedHost(deps: ServiceDeps, kind: Resolved['kind'], host: string): void {
  if (!deps.datasourceHosts || hostAllowed(deps.datasourceHosts, host)) return;
  const field = kind === 'postgres' ? 'postgres.host' : 'starrocks.fe_host';
  throw invalidArgument(
    `${field} ${JSON.stringify(host)} is not allowed by the control plane's SLUICE_DATASOURCE_HOSTS ` +
      '(--datasource-hosts) setting; ask an administrator to add a pattern for it',
  );
}

const SSL_MODE_RANK: Record<SslModeName, number> = {
  disable: 0,
  allow: 1,
  prefer: 2,
  require: 3,
  'verify-ca': 4,
  'verify-full': 5,
};

/**
 * Choosing a PostgreSQL sslmode below verify-full (on create, or lowering it on update) lets a password go to
 * a server nobody verified: admins only, and audited as its own action (`datasource.tls_weaken`).
 * Returns whether the call weakens TLS (so the caller audits its success).
 */
async function checkTlsWeakening(
  deps: ServiceDeps,
  ctx: HandlerContext,
  id: string,
  resolved: Resolved,
  before: PostgresConfig | undefined,
): Promise<boolean> {
  if (resolved.kind !== 'postgres') return false;
  const mode = (resolved.config as PostgresConfig).sslMode;
  if (mode === 'verify-full') return false;
  if (before && SSL_MODE_RANK[mode] >= SSL_MODE_RANK[before.sslMode]) return false;
  const caller = ctx.values.get(callerKey);
  if (caller?.role === 'admin') return true;
  await auditAction(deps, ctx, 'datasource.tls_weaken', 'denied', id);
  throw permissionDenied(
    `postgres.ssl_mode ${mode} is below verify-full (the server would not be verified before it is sent ` +
      'the password); only an admin may choose it. Use verify-full with postgres.ssl_root_cert, or ask an admin',
  );
}

async function auditAction(
  deps: ServiceDeps,
  ctx: HandlerContext,
  action: string,
  outcome: AuditOutcome,
  resourceId: string,
): Promise<void> {
  if (!deps.audit) return;
  const caller = ctx.values.get(callerKey);
  await deps
    .audit({
      action,
      outcome,
      resourceId,
      ipAddress: ctx.values.get(peerKey).remoteAddress,
      ...(caller && { userId: caller.userId }),
    })
    .catch((error: unknown) =>
      deps.logger.error({ action, errorType: (error as Error).name }, 'audit append failed'),
    );
}

/** Tables a connection test checks: valid identifiers, at most 1,000, no repeats. */
function resolveTestTables(tables: TableRef[]): Array<{ schema: string; name: string }> {
  if (tables.length > 1000) throw invalidArgument('tables has more than 1000 entries');
  const seen = new Set<string>();
  return tables.map((table, i) => {
    const schema = requireIdentifier(`tables[${i}].schema`, table.schema);
    const name = requireIdentifier(`tables[${i}].name`, table.name);
    const key = JSON.stringify([schema, name]);
    if (seen.has(key)) throw invalidArgument(`tables[${i}] (--table) repeats ${schema}.${name}`);
    seen.add(key);
    return { schema, name };
  });
}

export function createDatasourceService(deps: ServiceDeps): ServiceImpl<typeof DatasourceService> {
  const { pool } = deps;
  return {
    async createDatasource(req, ctx) {
      const name = requireName('name', req.name);
      const resolved = resolve(req.spec as SpecCase, NOTHING_STORED);
      const id = randomUUID();
      noteResource(ctx, id);
      requireAllowedHost(deps, resolved.kind, hostOf(resolved.kind, resolved.config));
      const weakens = await checkTlsWeakening(deps, ctx, id, resolved, undefined);
      const digest = targetDigest(
        resolved.kind,
        resolved.config as unknown as Record<string, unknown>,
        effectiveCa(resolved, undefined),
      );
      const assignments = secretAssignments(deps, id, resolved.secrets, digest);
      const columns = ['id', 'name', 'kind', 'config', ...assignments.map((a) => a.column)];
      const values = [
        id,
        name,
        resolved.kind,
        JSON.stringify(resolved.config),
        ...assignments.map((a) => a.value),
      ];
      try {
        await pool.query(
          `insert into datasources (${columns.join(', ')}) values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
          values,
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw alreadyExists(`datasource name ${JSON.stringify(name)} is taken`);
        throw error;
      }
      if (weakens) await auditAction(deps, ctx, 'datasource.tls_weaken', 'success', id);
      return { datasource: await loadDatasource(pool, id) };
    },

    async getDatasource(req) {
      return { datasource: await loadDatasource(pool, requireId('datasource', req.id)) };
    },

    async listDatasources(req) {
      const kind =
        req.kind === DatasourceKind.POSTGRES
          ? 'postgres'
          : req.kind === DatasourceKind.STARROCKS
            ? 'starrocks'
            : '';
      if (req.kind !== DatasourceKind.UNSPECIFIED && !kind)
        throw invalidArgument(`kind ${req.kind} is not a known datasource kind`);
      const result = await pool.query<DatasourceRow>(
        `${SELECT} ${kind ? 'where kind = $1' : ''} order by name`,
        kind ? [kind] : [],
      );
      return { datasources: result.rows.map(toDatasource) };
    },

    async updateDatasource(req, ctx) {
      const id = requireId('datasource', req.id);
      noteResource(ctx, id);
      const name = req.name !== undefined ? requireName('name', req.name) : undefined;
      const client = await pool.connect();
      let weakens = false;
      try {
        await client.query('begin');
        const current = (await client.query<DatasourceRow>(`${SELECT} where id = $1 for update`, [id]))
          .rows[0];
        if (!current) throw notFound('datasource', id);
        const sets: string[] = [];
        const values: unknown[] = [];
        const set = (column: string, value: unknown) => {
          values.push(value);
          sets.push(`${column} = $${values.length}`);
        };
        if (name !== undefined) set('name', name);
        const spec = req.spec as SpecCase;
        if (spec.case !== undefined) {
          if (spec.case !== current.kind)
            throw invalidArgument(`datasource ${id} is a ${current.kind} datasource; its kind can't change`);
          const stored: Stored = {
            has: {
              password: current.has_password,
              ssl_root_cert: current.has_ssl_root_cert,
              ssl_client_cert: current.has_ssl_client_cert,
              ssl_client_key: current.has_ssl_client_key,
              ca_cert: current.has_ca_cert,
            },
          };
          const resolved = resolve(spec, stored);
          requireAllowedHost(deps, resolved.kind, hostOf(resolved.kind, resolved.config));
          // The password is bound to the connection target: a new target needs the password again, or an
          // operator could send the stored one to a server of their choosing.
          const before = await currentTargetDigest(client, deps.keyring, id);
          const newCa = effectiveCa(resolved, before?.caPem);
          const digest = targetDigest(
            resolved.kind,
            resolved.config as unknown as Record<string, unknown>,
            newCa,
          );
          const passwordChange = resolved.secrets.password;
          if (
            current.has_password &&
            before?.digest !== digest &&
            (!passwordChange || passwordChange.op === 'keep')
          ) {
            const changed = changedTargetFields(
              resolved.kind,
              { config: current.config, ca: before?.caPem },
              { config: resolved.config, ca: newCa },
            );
            throw failedPrecondition(
              `changing ${changed.join(', ') || 'the connection target'} of datasource ${JSON.stringify(current.name)} ` +
                `requires its password again in the same update (${resolved.kind}.password; ` +
                'sluice datasource update: add --password-file), or clearing it: a stored password is only ' +
                'ever sent to the target it was entered for',
            );
          }
          weakens = await checkTlsWeakening(
            deps,
            ctx,
            id,
            resolved,
            current.kind === 'postgres' ? (current.config as PostgresConfig) : undefined,
          );
          set('config', JSON.stringify(resolved.config));
          for (const { column, value } of secretAssignments(deps, id, resolved.secrets, digest))
            set(column, value);
        }
        if (sets.length > 0) {
          set('updated_at', new Date());
          values.push(id);
          await client.query(
            `update datasources set ${sets.join(', ')} where id = $${values.length}`,
            values,
          );
        }
        await client.query('commit');
      } catch (error) {
        await client.query('rollback');
        if (isUniqueViolation(error)) throw alreadyExists(`datasource name ${JSON.stringify(name)} is taken`);
        throw error;
      } finally {
        client.release();
      }
      if (weakens) await auditAction(deps, ctx, 'datasource.tls_weaken', 'success', id);
      return { datasource: await loadDatasource(pool, id) };
    },

    async deleteDatasource(req, ctx) {
      const id = requireId('datasource', req.id);
      noteResource(ctx, id);
      const client = await pool.connect();
      try {
        await client.query('begin');
        const exists = await client.query('select 1 from datasources where id = $1 for update', [id]);
        if (exists.rowCount === 0) throw notFound('datasource', id);
        const users = await client.query<{ name: string }>(
          'select name from jobs where source_id = $1 or sink_id = $1 order by name limit 5',
          [id],
        );
        if (users.rows.length > 0)
          throw failedPrecondition(
            `datasource ${id} is used by job(s) ${users.rows.map((r) => r.name).join(', ')}; delete them first`,
          );
        const cleanups = await client.query(
          'select 1 from job_cleanups where source_id = $1 and done_at is null limit 1',
          [id],
        );
        if (cleanups.rowCount)
          throw failedPrecondition(
            `datasource ${id} still has a replication slot waiting to be dropped by a worker; retry later`,
          );
        await client.query('delete from job_cleanups where source_id = $1', [id]);
        await client.query('delete from datasources where id = $1', [id]);
        await client.query('commit');
      } catch (error) {
        await client.query('rollback');
        throw error;
      } finally {
        client.release();
      }
      return {};
    },

    async testDatasource(req, ctx) {
      const id = requireId('datasource', req.id);
      noteResource(ctx, id);
      if (req.waitMs > 60_000) throw invalidArgument(`wait_ms ${req.waitMs} is above the maximum of 60000`);
      const waitMs = req.waitMs || 15_000;
      const datasource = await loadDatasource(pool, id);
      const config = datasource.config;
      if (config.case === 'postgres') requireAllowedHost(deps, 'postgres', config.value.host);
      else if (config.case === 'starrocks') requireAllowedHost(deps, 'starrocks', config.value.feHost);
      // Refuse here, before any worker is involved, when the stored password no longer opens for the
      // target the row names (its target was changed outside the API).
      try {
        const opened = await decryptDatasourceSecrets(pool, deps.keyring, id);
        if (opened) wipePlaintexts(opened);
      } catch (error) {
        if (error instanceof DatasourceTargetMismatchError)
          await auditAction(deps, ctx, 'datasource.target_mismatch', 'denied', id);
        throw error;
      }
      const tables = resolveTestTables(req.tables);
      if (tables.length > 0 && datasource.config.case !== 'postgres')
        throw invalidArgument(
          `tables (--table) can only be checked on a PostgreSQL source; ${datasource.name} is StarRocks`,
        );
      if (!(await workerOnline(pool)))
        throw failedPrecondition(
          'no active worker to run the test; the control plane never connects to datasources itself',
        );
      const signal = AbortSignal.any([ctx.signal, deps.shutdownSignal]);
      const outcome = await runConnectionTest(pool, id, tables, { waitMs, signal });
      if (outcome) return outcome;
      throw new ConnectError(`no worker ran the connection test within ${waitMs} ms`, Code.DeadlineExceeded);
    },
  };
}
