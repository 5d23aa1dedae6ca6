import { ConnectError } from '@connectrpc/connect';
import { createKeyring, generateEncryptionKey } from '@sluice/crypto';
import {
  AuthService,
  DatasourceService,
  JobService,
  KeyService,
  Role,
  SslMode,
  UserService,
} from '@sluice/proto';
import { createTestDatabase, plantCanary, type TestDatabase } from '@sluice/testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptDatasourceSecrets, wipePlaintexts } from './catalog/datasource-secrets.ts';
import { rotateEncryptionKeys } from './catalog/rotate-encryption-keys.ts';
import { decryptField, SECRET_COLUMNS } from './catalog/secret-columns.ts';
import { startTestControlPlane, type TestControlPlane, testPems } from './test-control-plane.ts';

const CANARY_PASSWORD = plantCanary('CANARY-pw-7f3a9c1e', 'secrets.test datasource password');
const CANARY_SR_PASSWORD = plantCanary('CANARY-sr-5d2b8e40', 'secrets.test StarRocks password');
const CANARY_CS_PASSWORD = plantCanary('CANARY-cs-91b2d7aa', 'secrets.test connection-string password');
const CANARY_USER_PASSWORD = plantCanary('CANARY-user-3e8f61c0', 'secrets.test user password');
const CANARY_CONNECTION_STRING = `postgresql://replicator:${CANARY_CS_PASSWORD}@db.example.com:6432/app?sslmode=require`;

function dump(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? String(v) : v));
}

/** Every text, bytea and jsonb value of every table in the catalog's public schema. */
async function catalogValues(client: pg.Client | pg.Pool): Promise<Array<{ where: string; value: Buffer }>> {
  const columns = await client.query<{ table_name: string; column_name: string; data_type: string }>(
    `select table_name, column_name, data_type from information_schema.columns
     where table_schema = 'public' and data_type in ('text', 'bytea', 'jsonb', 'json', 'character varying')`,
  );
  const out: Array<{ where: string; value: Buffer }> = [];
  for (const { table_name, column_name, data_type } of columns.rows) {
    const rows = await client.query(
      `select "${column_name}" as v from "${table_name}" where "${column_name}" is not null`,
    );
    for (const row of rows.rows as Array<{ v: unknown }>) {
      const value =
        data_type === 'bytea'
          ? (row.v as Buffer)
          : Buffer.from(typeof row.v === 'string' ? row.v : JSON.stringify(row.v), 'utf8');
      out.push({ where: `${table_name}.${column_name}`, value });
    }
  }
  return out;
}

describe('secrets stored through the API', () => {
  let db: TestDatabase;
  let t: TestControlPlane;
  const oldKey = generateEncryptionKey();
  const thirdKey = generateEncryptionKey();
  const responses: string[] = [];
  let canaryKeyPem: string;
  let canaries: string[];

  beforeAll(async () => {
    db = await createTestDatabase('cp_secrets');
    t = await startTestControlPlane({ db, keyring: createKeyring(oldKey) });
    const pems = await testPems();
    canaryKeyPem = pems.clientKey;
    // The key's base64 body lines are what a leak would show; the PEM armour alone is not secret.
    const keyBody = canaryKeyPem
      .split('\n')
      .filter((line) => line && !line.startsWith('-----'))
      .join('');
    canaries = [
      CANARY_PASSWORD,
      CANARY_SR_PASSWORD,
      CANARY_CS_PASSWORD,
      CANARY_USER_PASSWORD,
      CANARY_CONNECTION_STRING,
      keyBody.slice(0, 40),
      keyBody.slice(-40),
    ];
    const admin = await t.adminToken();
    const record = (value: unknown) => {
      responses.push(dump(value));
      return value;
    };
    const recordError = (error: unknown) => {
      responses.push(error instanceof ConnectError ? error.rawMessage : String(error));
    };
    const datasources = t.client(DatasourceService, admin);
    const full = record(
      await datasources.createDatasource({
        name: 'canary-pg',
        spec: {
          case: 'postgres',
          value: {
            host: 'db.example.com',
            database: 'app',
            username: 'replicator',
            sslMode: SslMode.VERIFY_FULL,
            password: CANARY_PASSWORD,
            sslRootCert: pems.rootCert,
            sslClientCert: pems.clientCert,
            sslClientKey: canaryKeyPem,
          },
        },
      }),
    ) as { datasource: { id: string } };
    record(
      await datasources.createDatasource({
        name: 'canary-cs',
        spec: { case: 'postgres', value: { connectionString: CANARY_CONNECTION_STRING } },
      }),
    );
    const sink = record(
      await datasources.createDatasource({
        name: 'canary-sr',
        spec: {
          case: 'starrocks',
          value: {
            feHost: 'sr.example.com',
            username: 'loader',
            database: 'dw',
            password: CANARY_SR_PASSWORD,
            sslEnabled: true,
            caCert: pems.rootCert,
          },
        },
      }),
    ) as { datasource: { id: string } };
    record(await datasources.getDatasource({ id: full.datasource.id }));
    record(await datasources.listDatasources({}));
    // Refused inputs must not echo the secret either.
    await datasources
      .createDatasource({
        name: 'canary-bad',
        spec: {
          case: 'postgres',
          value: { connectionString: `postgresql://u:${CANARY_CS_PASSWORD}@h:99999/db` },
        },
      })
      .catch(recordError);
    await datasources
      .createDatasource({
        name: 'canary-bad2',
        spec: {
          case: 'postgres',
          value: {
            host: 'h.example',
            database: 'd',
            username: 'u',
            sslMode: SslMode.REQUIRE,
            sslClientKey: `${canaryKeyPem}x`,
            password: CANARY_PASSWORD,
          },
        },
      })
      .catch(recordError);
    record(
      await t.client(JobService, admin).createJob({
        name: 'canary-job',
        sourceId: full.datasource.id,
        sinkId: sink.datasource.id,
        tables: [{ schema: 'public', name: 'customers' }],
        options: {
          hashColumns: [{ table: { schema: 'public', name: 'customers' }, column: 'email' }],
          keyedHashing: true,
        },
      }),
    );
    record(
      await t
        .client(UserService, admin)
        .createUser({ username: 'canary-user', password: CANARY_USER_PASSWORD, role: Role.OPERATOR }),
    );
    record(await t.client(UserService, admin).listUsers({}));
    // A failed login with a secret as the user name and as the password.
    await t
      .client(AuthService)
      .login({ username: 'canary-user', password: CANARY_PASSWORD })
      .catch(recordError);
    await t
      .client(AuthService)
      .login({ username: CANARY_PASSWORD, password: CANARY_PASSWORD })
      .catch(recordError);
    record(await t.client(AuthService).login({ username: 'canary-user', password: CANARY_USER_PASSWORD }));
  });

  afterAll(async () => {
    await t?.stop();
    await db?.drop();
  });

  it('never returns a canary in any API response or error', () => {
    expect(responses.length).toBeGreaterThan(8);
    for (const response of responses) for (const canary of canaries) expect(response).not.toContain(canary);
    expect(responses.join('\n')).toContain('"hasPassword":true');
  });

  it('never writes a canary to a log line', () => {
    expect(t.logs.length).toBeGreaterThan(0);
    const logs = t.logs.join('');
    for (const canary of canaries) expect(logs).not.toContain(canary);
  });

  it('never writes a canary to the audit trail', async () => {
    // Failed logins are audited as summary rows per window: write the pending one now.
    await t.cp.flushFailureSummary();
    const audit = await t.cp.pool.query('select * from audit_events');
    expect(audit.rows.length).toBeGreaterThan(5);
    const text = dump(audit.rows);
    for (const canary of canaries) expect(text).not.toContain(canary);
    expect(
      audit.rows.some(
        (row: { action: string; outcome: string }) =>
          row.action === 'login.failed' && row.outcome === 'denied',
      ),
    ).toBe(true);
  });

  it('keeps no canary in plaintext in any text, bytea or jsonb column of the catalog', async () => {
    const values = await catalogValues(db.client);
    expect(values.some((v) => v.where === 'datasources.ssl_client_key_ciphertext')).toBe(true);
    for (const { where, value } of values) {
      for (const canary of canaries) {
        expect(value.includes(Buffer.from(canary)), `${where} holds a canary`).toBe(false);
      }
    }
  });

  it('re-encrypts every secret under the new key, online and offline, and each still decrypts', async () => {
    await t.stop();
    const newKey = generateEncryptionKey();
    const rotatingKeyring = createKeyring(newKey, [oldKey]);
    t = await startTestControlPlane({ db, keyring: rotatingKeyring });
    const oldKeyId = createKeyring(oldKey).currentKeyId;
    expect(rotatingKeyring.currentKeyId).not.toBe(oldKeyId);

    const admin = await t.adminToken();
    const result = await t.client(KeyService, admin, 'grpc').rotateEncryptionKeys({});
    expect(result.keyId).toBe(rotatingKeyring.currentKeyId);

    const newOnly = createKeyring(newKey);
    const checkAllUnder = async (keyring: ReturnType<typeof createKeyring>, keyId: string) => {
      let count = 0;
      for (const { table, idColumn, column, field } of SECRET_COLUMNS) {
        const rows = await db.client.query<{ id: string; ct: Buffer }>(
          `select "${idColumn}"::text as id, "${column}" as ct from "${table}" where "${column}" is not null`,
        );
        for (const row of rows.rows) {
          expect(keyring.keyIdOf(row.ct), `${table}.${column} of ${row.id}`).toBe(keyId);
          if (table === 'datasources' && field === 'password') {
            // Bound to the connection target as well: opened through the datasource helper.
            const opened = await decryptDatasourceSecrets(db.client as unknown as pg.Pool, keyring, row.id);
            expect(opened?.password?.length).toBeGreaterThan(0);
            if (opened) wipePlaintexts(opened);
          } else {
            const plain = decryptField(keyring, table, row.id, field, row.ct);
            expect(plain.length).toBeGreaterThan(0);
            plain.fill(0);
          }
          count += 1;
        }
      }
      return count;
    };
    const count = await checkAllUnder(newOnly, rotatingKeyring.currentKeyId);
    // Postgres: password, root, client cert, key; connection-string one: password; StarRocks: password, CA;
    // the job's PII key; the internal CA key.
    expect(count).toBe(9);
    expect(Number(result.reencrypted)).toBe(count);

    const id = (await db.client.query<{ id: string }>("select id from datasources where name = 'canary-pg'"))
      .rows[0]!.id;
    const opened = await decryptDatasourceSecrets(db.client as unknown as pg.Pool, newOnly, id);
    expect(opened?.password?.toString()).toBe(CANARY_PASSWORD);

    // The CLI's offline path: the exported function on a bare pool, to a third key.
    const offline = await rotateEncryptionKeys(t.cp.pool, createKeyring(thirdKey, [newKey]));
    expect(offline.reencrypted).toBe(count);
    expect(await checkAllUnder(createKeyring(thirdKey), offline.keyId)).toBe(count);
  });
  it('answers a failure it did not expect with a bare Internal and logs only a scrubbed summary', async () => {
    await t.stop();
    t = await startTestControlPlane({ db, keyring: createKeyring(thirdKey) });
    const keyBefore = await db.client.query<{ ct: Buffer }>(
      "select ssl_client_key_ciphertext as ct from datasources where name = 'canary-pg'",
    );
    // Corrupt the last secret rotation visits (the internal CA key), so the call fails after rewriting every
    // datasource secret inside its transaction: an error no handler anticipates.
    await db.client.query(
      'update internal_ca set key_ciphertext = set_byte(key_ciphertext, 40, get_byte(key_ciphertext, 40) # 1)',
    );
    const before = t.logs.length;
    const error = await t
      .client(KeyService, await t.adminToken())
      .rotateEncryptionKeys({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).rawMessage).toBe('internal error');
    const logged = t.logs.slice(before).join('');
    expect(logged).toContain('unexpected error in RPC handler');
    expect(logged).toContain('KeyringError');
    for (const canary of canaries) expect(logged).not.toContain(canary);
    // The failed rotation changed nothing (one transaction): a rewritten ciphertext would have a new IV.
    const keyAfter = await db.client.query<{ ct: Buffer }>(
      "select ssl_client_key_ciphertext as ct from datasources where name = 'canary-pg'",
    );
    expect(keyAfter.rows[0]!.ct.equals(keyBefore.rows[0]!.ct)).toBe(true);
  });
});
