// A datasource's password is bound to its connection target: the AAD of the password ciphertext is the
// record identity plus a digest of where the password may be sent (host, ports, database, user, TLS settings
// and the CA that verifies the server). Changing the target through the API requires the password again;
// changing it in the catalog by SQL leaves a ciphertext that no longer opens, so a worker is never handed
// the password for a target it was not entered for.
//
// `password_aad` records which AAD a row's password uses: 1 (identity only, rows written before the binding)
// or 2 (identity + target). Rows at 1 are re-encrypted to 2 when a control plane starts and by a key
// rotation; a version-1 ciphertext can't be passed off as 2 or the reverse, since the AAD differs.
import { createHash } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { type Keyring, KeyringError, wipe } from '@sluice/crypto';
import type pg from 'pg';
import { decryptField, encryptField } from './secret-columns.ts';

const TABLE = 'datasources';
export const PASSWORD_AAD_LEGACY = 1;
export const PASSWORD_AAD_TARGET = 2;

/** The stored non-secret configuration, as datasource-service writes it to the config column. */
export type DatasourceConfig = Record<string, unknown>;

/** Canonical encoding of the fields a password is bound to, in a fixed order (never the password). */
export function targetFields(
  kind: string,
  config: DatasourceConfig,
  caPem: string | Uint8Array | null | undefined,
): unknown[] {
  const ca = caPem && caPem.length > 0 ? createHash('sha256').update(caPem).digest('hex') : '';
  if (kind === 'postgres')
    return ['postgres', config.host, config.port, config.database, config.username, config.sslMode, ca];
  return [
    'starrocks',
    config.feHost,
    config.httpPort,
    config.mysqlPort,
    config.username,
    config.sslEnabled === true,
    config.allowPlaintextBeRedirect === true,
    config.rewriteLoopbackRedirect === true,
    ca,
  ];
}

/** SHA-256 (hex) of the canonical target: JSON of a fixed-order array, so field boundaries are unambiguous. */
export function targetDigest(
  kind: string,
  config: DatasourceConfig,
  caPem: string | Uint8Array | null | undefined,
): string {
  return createHash('sha256')
    .update('sluice.datasource-target.v1\n')
    .update(JSON.stringify(targetFields(kind, config, caPem)))
    .digest('hex');
}

/** The AAD field name of a password bound to `digest`. */
function boundField(digest: string): string {
  return `password@target:${digest}`;
}

export function encryptDatasourcePassword(
  keyring: Keyring,
  id: string,
  digest: string,
  password: string | Uint8Array,
): Buffer {
  return encryptField(keyring, TABLE, id, boundField(digest), password);
}

/** The stored password no longer opens for the row's current target (or was tampered with). */
export class DatasourceTargetMismatchError extends ConnectError {
  readonly classification = 'DATASOURCE_TARGET_MISMATCH';
  readonly datasourceId: string;

  constructor(id: string, name: string, options?: { cause?: unknown }) {
    super(
      `datasource ${JSON.stringify(name)} (${id}): its stored password was entered for a different connection ` +
        'target than the catalog row now names (host, port, database, user, TLS mode or CA changed outside ' +
        'the API?), so it is not used; set the password again with UpdateDatasource ' +
        '(sluice datasource update … --password-file)',
      Code.FailedPrecondition,
      undefined,
      undefined,
      options?.cause,
    );
    this.datasourceId = id;
  }
}

interface SecretRow {
  name: string;
  kind: string;
  config: DatasourceConfig;
  password_aad: number;
  password_ciphertext: Buffer | null;
  ssl_root_cert_ciphertext: Buffer | null;
  ssl_client_cert_ciphertext: Buffer | null;
  ssl_client_key_ciphertext: Buffer | null;
  ca_cert_ciphertext: Buffer | null;
}

/** Decrypted secrets of one datasource; the caller wipes every Buffer when done. */
export interface DatasourcePlaintexts {
  password?: Buffer;
  ssl_root_cert?: Buffer;
  ssl_client_cert?: Buffer;
  ssl_client_key?: Buffer;
  ca_cert?: Buffer;
}

const OTHER_FIELDS = ['ssl_root_cert', 'ssl_client_cert', 'ssl_client_key', 'ca_cert'] as const;

async function loadSecretRow(
  db: pg.Pool | pg.PoolClient,
  id: string,
  lock: boolean,
): Promise<SecretRow | undefined> {
  const result = await db.query<SecretRow>(
    `select name, kind, config, password_aad, password_ciphertext, ssl_root_cert_ciphertext,
            ssl_client_cert_ciphertext, ssl_client_key_ciphertext, ca_cert_ciphertext
       from datasources where id = $1${lock ? ' for update' : ''}`,
    [id],
  );
  return result.rows[0];
}

function openPassword(keyring: Keyring, id: string, row: SecretRow, caPem: Buffer | undefined): Buffer {
  const ciphertext = row.password_ciphertext;
  if (!ciphertext) throw new Error('no password stored');
  if (row.password_aad === PASSWORD_AAD_LEGACY)
    return decryptField(keyring, TABLE, id, 'password', ciphertext);
  const digest = targetDigest(row.kind, row.config, caPem);
  try {
    return decryptField(keyring, TABLE, id, boundField(digest), ciphertext);
  } catch (error) {
    if (error instanceof KeyringError && (error.code === 'AAD_MISMATCH' || error.code === 'TAMPERED'))
      throw new DatasourceTargetMismatchError(id, row.name, { cause: error });
    throw error;
  }
}

function openRow(keyring: Keyring, id: string, row: SecretRow): DatasourcePlaintexts {
  const out: DatasourcePlaintexts = {};
  try {
    for (const field of OTHER_FIELDS) {
      const ciphertext = row[`${field}_ciphertext`];
      if (ciphertext) out[field] = decryptField(keyring, TABLE, id, field, ciphertext);
    }
    if (row.password_ciphertext) {
      const ca = row.kind === 'postgres' ? out.ssl_root_cert : out.ca_cert;
      out.password = openPassword(keyring, id, row, ca);
    }
    return out;
  } catch (error) {
    wipePlaintexts(out);
    throw error;
  }
}

export function wipePlaintexts(plaintexts: DatasourcePlaintexts): void {
  wipe(...Object.values(plaintexts).filter((value): value is Buffer => value !== undefined));
}

/**
 * Decrypts every secret of one datasource, the password only if the row's target is the one it was entered
 * for (DatasourceTargetMismatchError otherwise). Undefined when the datasource does not exist.
 */
export async function decryptDatasourceSecrets(
  db: pg.Pool | pg.PoolClient,
  keyring: Keyring,
  id: string,
): Promise<DatasourcePlaintexts | undefined> {
  const row = await loadSecretRow(db, id, false);
  return row && openRow(keyring, id, row);
}

/** The digest of the target a row names now, and its stored CA (for update's "did the target change"). */
export async function currentTargetDigest(
  db: pg.Pool | pg.PoolClient,
  keyring: Keyring,
  id: string,
): Promise<{ digest: string; caPem: string | undefined } | undefined> {
  const row = await loadSecretRow(db, id, false);
  if (!row) return undefined;
  const caCiphertext = row.kind === 'postgres' ? row.ssl_root_cert_ciphertext : row.ca_cert_ciphertext;
  const field = row.kind === 'postgres' ? 'ssl_root_cert' : 'ca_cert';
  const ca = caCiphertext ? decryptField(keyring, TABLE, id, field, caCiphertext) : undefined;
  try {
    return { digest: targetDigest(row.kind, row.config, ca), caPem: ca?.toString('utf8') };
  } finally {
    if (ca) wipe(ca);
  }
}

/**
 * Re-encrypts every datasource password under the keyring's current key with the target-bound AAD, inside
 * the caller's transaction: rows still at version 1 are migrated, rows at 2 re-keyed. `onlyLegacy` limits it
 * to version-1 rows (what a start does). Returns how many passwords were rewritten.
 */
export async function rebindDatasourcePasswords(
  client: pg.PoolClient,
  keyring: Keyring,
  options: { onlyLegacy: boolean },
): Promise<number> {
  const ids = await client.query<{ id: string }>(
    `select id from datasources where ${options.onlyLegacy ? 'password_aad = 1' : 'true'} order by id for update`,
  );
  let rewritten = 0;
  for (const { id } of ids.rows) {
    const row = await loadSecretRow(client, id, true);
    if (!row) continue;
    if (!row.password_ciphertext) {
      await client.query('update datasources set password_aad = 2 where id = $1', [id]);
      continue;
    }
    const plain = openRow(keyring, id, row);
    try {
      const ca = row.kind === 'postgres' ? plain.ssl_root_cert : plain.ca_cert;
      const next = encryptDatasourcePassword(
        keyring,
        id,
        targetDigest(row.kind, row.config, ca),
        plain.password!,
      );
      await client.query('update datasources set password_ciphertext = $1, password_aad = 2 where id = $2', [
        next,
        id,
      ]);
      rewritten += 1;
    } finally {
      wipePlaintexts(plain);
    }
  }
  return rewritten;
}

/** At start: binds the passwords of rows written before the target binding existed, in one transaction. */
export async function bindLegacyDatasourcePasswords(pool: pg.Pool, keyring: Keyring): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    try {
      const count = await rebindDatasourcePasswords(client, keyring, { onlyLegacy: true });
      await client.query('commit');
      return count;
    } catch (error) {
      await client.query('rollback');
      throw error;
    }
  } finally {
    client.release();
  }
}
