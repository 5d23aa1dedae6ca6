import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CERT_AUTH_USER, connectionConfig, findSystemPostgres, startPostgres } from './postgres-server.ts';
import { createTestCa } from './test-ca.ts';
import { createTestDatabase, sharedPostgres, type TestDatabase } from './test-database.ts';

describe('the shared embedded PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('harness');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('is PostgreSQL 18 with logical replication enabled', async () => {
    const server = sharedPostgres();
    expect(server.majorVersion).toBe(18);
    const { rows } = await db.client.query<{ wal_level: string }>('show wal_level');
    expect(rows[0]?.wal_level).toBe('logical');
  });

  it('accepts verify-full TLS against the test CA and creates and drops a pgoutput slot', async () => {
    const server = sharedPostgres();
    // verify-full: the CA is checked and the host name must match the certificate (node's default).
    const client = new pg.Client({
      ...connectionConfig(server, db.name),
      ssl: { ca: server.caPem, servername: 'localhost' },
    });
    await client.connect();
    try {
      const tls = await client.query<{ ssl: boolean; version: string }>(
        'select ssl, version from pg_stat_ssl where pid = pg_backend_pid()',
      );
      expect(tls.rows[0]).toEqual({ ssl: true, version: 'TLSv1.3' });

      const slot = `sluice_harness_${process.pid}`;
      const created = await client.query<{ slot_name: string; lsn: string }>(
        "select slot_name, lsn from pg_create_logical_replication_slot($1, 'pgoutput')",
        [slot],
      );
      expect(created.rows[0]?.slot_name).toBe(slot);
      expect(created.rows[0]?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      const listed = await client.query('select plugin from pg_replication_slots where slot_name = $1', [
        slot,
      ]);
      expect(listed.rows).toEqual([{ plugin: 'pgoutput' }]);

      await client.query('select pg_drop_replication_slot($1)', [slot]);
      const after = await client.query('select 1 from pg_replication_slots where slot_name = $1', [slot]);
      expect(after.rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('refuses a TLS connection verified against another CA', async () => {
    const server = sharedPostgres();
    const otherCa = await createTestCa('Unrelated CA');
    const client = new pg.Client({ ...connectionConfig(server, db.name), ssl: { ca: otherCa.certPem } });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow(
      /self-signed certificate in certificate chain|unable to verify/,
    );
  });

  it('refuses verify-full when the host name is not in the certificate', async () => {
    const server = sharedPostgres();
    const client = new pg.Client({
      ...connectionConfig(server, db.name),
      ssl: { ca: server.caPem, servername: 'db.example.com' },
    });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow(/Hostname\/IP does not match|altnames/);
  });

  it('authenticates the certificate user by its client certificate', async () => {
    const server = sharedPostgres();
    await db.client.query(`create role ${CERT_AUTH_USER} login`).catch((error: Error) => {
      if (!/already exists/.test(error.message)) throw error;
    });
    const client = new pg.Client({
      host: server.host,
      port: server.port,
      user: CERT_AUTH_USER,
      database: db.name,
      ssl: {
        ca: server.caPem,
        servername: 'localhost',
        cert: server.clientCert?.certPem,
        key: server.clientCert?.keyPem,
      },
    });
    await client.connect();
    const { rows } = await client.query<{ current_user: string }>('select current_user');
    await client.end();
    expect(rows[0]?.current_user).toBe(CERT_AUTH_USER);
  });

  it('gives every test its own database', async () => {
    const other = await createTestDatabase('harness');
    try {
      expect(other.name).not.toBe(db.name);
      await other.client.query('create table only_here (id int primary key)');
      const seen = await db.client.query("select 1 from pg_tables where tablename = 'only_here'");
      expect(seen.rowCount).toBe(0);
    } finally {
      await other.drop();
    }
    const admin = new pg.Client(connectionConfig(sharedPostgres()));
    await admin.connect();
    const gone = await admin.query('select 1 from pg_database where datname = $1', [other.name]);
    await admin.end();
    expect(gone.rowCount).toBe(0);
  });
});

describe('extra servers', () => {
  it('starts a separate plain-TCP server that a TLS client cannot use', async () => {
    const server = await startPostgres({ tls: false });
    try {
      const plain = new pg.Client(server.connectionConfig());
      await plain.connect();
      const { rows } = await plain.query<{ ssl: boolean }>(
        'select ssl from pg_stat_ssl where pid = pg_backend_pid()',
      );
      await plain.end();
      expect(rows[0]?.ssl).toBe(false);

      const tls = new pg.Client({ ...server.connectionConfig(), ssl: { rejectUnauthorized: false } });
      tls.on('error', () => undefined);
      await expect(tls.connect()).rejects.toThrow(/does not support SSL/);
    } finally {
      await server.stop();
    }
  });

  it('survives SIGKILL and restarts on the same data directory', async () => {
    const server = await startPostgres();
    try {
      const before = new pg.Client(server.connectionConfig());
      await before.connect();
      await before.query('create table kept (id int primary key); insert into kept values (1), (2)');
      before.on('error', () => undefined);
      await server.kill();
      await server.restart();
      const after = new pg.Client(server.connectionConfig());
      await after.connect();
      const { rows } = await after.query('select count(*)::int as n from kept');
      await after.end();
      expect(rows[0]).toEqual({ n: 2 });
    } finally {
      await server.stop();
    }
  });

  const pg15 = findSystemPostgres(15);
  it.skipIf(!pg15)(
    'runs the system PostgreSQL 15 as a second version, with TLS and logical replication',
    async () => {
      const server = await startPostgres({ binDir: pg15, tls: true });
      try {
        expect(server.majorVersion).toBe(15);
        const client = new pg.Client(server.connectionConfig());
        await client.connect();
        const { rows } = await client.query<{ wal_level: string }>('show wal_level');
        await client.query("select pg_create_logical_replication_slot('pg15_slot', 'pgoutput')");
        await client.query("select pg_drop_replication_slot('pg15_slot')");
        await client.end();
        expect(rows[0]?.wal_level).toBe('logical');
      } finally {
        await server.stop();
      }
    },
  );
});
