// The emulator's own rules, checked with plain clients (mysql2 and node:http) so a sink bug can't hide one.
import http from 'node:http';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StarRocksEmulator, startStarRocksEmulator } from './starrocks-emulator.ts';

let emulator: StarRocksEmulator;
let sql: mysql.Connection;

beforeAll(async () => {
  emulator = await startStarRocksEmulator({ user: 'admin', password: 'p@ss' });
  sql = await mysql.createConnection({
    host: '127.0.0.1',
    port: emulator.mysqlPort,
    user: 'admin',
    password: 'p@ss',
  });
  await sql.query('create database d');
  await sql.query(
    'create table d.t (id int not null, name varchar(4) null, n decimal(5,2) null, at datetime null) primary key (id) distributed by hash(id) buckets 1 properties ("replication_num" = "1")',
  );
});
afterAll(async () => {
  await sql?.end();
  await emulator?.stop();
});

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

function exchange(
  port: number,
  path: string,
  headers: http.OutgoingHttpHeaders,
  body: string,
): Promise<http.IncomingMessage & { text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1',
      port,
      method: 'PUT',
      path,
      headers: { ...headers, 'content-length': Buffer.byteLength(body) },
    });
    request.on('continue', () => request.end(body));
    request.on('response', (response) => {
      let text = '';
      response.on('data', (part) => (text += part));
      response.on('end', () => {
        request.destroy();
        resolve(Object.assign(response, { text }));
      });
    });
    request.on('error', reject);
    request.flushHeaders();
  });
}

/** A curl --location-trusted style Stream Load of `rows` into d.t. */
async function streamLoad(
  rows: unknown,
  headers: http.OutgoingHttpHeaders = {},
  table = 't',
  target: StarRocksEmulator = emulator,
): Promise<Answer> {
  const all = {
    authorization: `Basic ${Buffer.from('admin:p@ss').toString('base64')}`,
    expect: '100-continue',
    format: 'json',
    strip_outer_array: 'true',
    ...headers,
  };
  const body = typeof rows === 'string' ? rows : JSON.stringify(rows);
  let response = await exchange(target.fePort, `/api/d/${table}/_stream_load`, all, body);
  if (response.statusCode === 307) {
    const location = new URL(response.headers.location ?? '');
    response = await exchange(Number(location.port), location.pathname, all, body);
  }
  return {
    status: response.statusCode ?? 0,
    json: response.text ? (JSON.parse(response.text) as Record<string, unknown>) : {},
  };
}

describe('StarRocks emulator', () => {
  it('refuses a wrong password on the MySQL port and on the FE', async () => {
    await expect(
      mysql.createConnection({
        host: '127.0.0.1',
        port: emulator.mysqlPort,
        user: 'admin',
        password: 'nope',
      }),
    ).rejects.toMatchObject({ code: 'ER_ACCESS_DENIED_ERROR' });
    const answer = await exchange(
      emulator.fePort,
      '/api/d/t/_stream_load',
      { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}`, expect: '100-continue' },
      '[]',
    );
    expect(answer.statusCode).toBe(401);
  });

  it.each([
    [
      'key columns not first',
      'create table d.x (v int null, id int not null) primary key (id) distributed by hash(id)',
      /ordered prefix/,
    ],
    ['a nullable key', 'create table d.x (id int null) primary key (id) distributed by hash(id)', /NOT NULL/],
    [
      'a FLOAT key',
      'create table d.x (id float not null) primary key (id) distributed by hash(id)',
      /key column/,
    ],
    [
      'a non-key distribution column',
      'create table d.x (id int not null, v int null) primary key (id) distributed by hash(v)',
      /Distribution column/,
    ],
    ['ADD COLUMN IF NOT EXISTS', 'alter table d.t add column if not exists z int null', /IF NOT EXISTS/],
    ['dropping a key column', 'alter table d.t drop column id', /key column/],
    ['a duplicate column', 'alter table d.t add column NAME int null', /Duplicate column/],
    ['an unsupported statement', 'delete from d.t where id = 1', /syntax/],
  ])('refuses DDL StarRocks refuses: %s', async (_what, statement, message) => {
    await expect(sql.query(statement)).rejects.toThrow(message);
  });

  it('loads with __op, checks types, and lists filtered rows at the ErrorURL', async () => {
    const ok = await streamLoad([
      { id: 1, name: 'ab', n: '1.5', at: '2024-01-01 00:00:00' },
      { id: 2, name: 'cd', __op: 0 },
      { id: 2, __op: 1 },
    ]);
    expect(ok.json).toMatchObject({ Status: 'Success', NumberLoadedRows: 3 });
    expect(emulator.rows('d', 't')).toEqual([{ id: 1, name: 'ab', n: '1.50', at: '2024-01-01 00:00:00' }]);

    const bad = await streamLoad(
      [
        { id: 3, name: 'toolong' },
        { id: 4, at: 'not a date' },
        { id: 5, n: 'NaN' },
        { id: 6, name: 'ok' },
      ],
      { strict_mode: 'true' },
    );
    expect(bad.json).toMatchObject({
      Status: 'Fail',
      Message: 'too many filtered rows',
      NumberFilteredRows: 3,
    });
    const log = await new Promise<string>((resolve) => {
      http.get(bad.json.ErrorURL as string, (response) => {
        let text = '';
        response.on('data', (part) => (text += part));
        response.on('end', () => resolve(text));
      });
    });
    expect(log.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/beyond the capacity.*Row: \{"id":3,"name":"toolong"\}/),
      expect.stringMatching(/Value 'not a date' is out of range. The type of 'at' is DATETIME/),
      expect.stringMatching(/Value 'NaN' is out of range. The type of 'n' is DECIMAL\(5,2\)/),
    ]);
    expect(emulator.rows('d', 't').map((row) => row.id)).toEqual([1]);

    const tolerant = await streamLoad([{ id: 7, name: 'toolong' }, { id: 8 }], {
      max_filter_ratio: '0.5',
      strict_mode: 'true',
    });
    expect(tolerant.json).toMatchObject({ Status: 'Success', NumberLoadedRows: 1, NumberFilteredRows: 1 });
    expect(tolerant.json.ErrorURL).toEqual(expect.any(String));
  });

  it('de-duplicates labels: finished labels answer FINISHED, aborted ones can be reused', async () => {
    const first = await streamLoad([{ id: 10 }], { label: 'dedup_1' });
    expect(first.json.Status).toBe('Success');
    const again = await streamLoad([{ id: 11 }], { label: 'dedup_1' });
    expect(again.json).toMatchObject({ Status: 'Label Already Exists', ExistingJobStatus: 'FINISHED' });
    const failed = await streamLoad([{ id: 'x' }], { label: 'dedup_2' });
    expect(failed.json.Status).toBe('Fail');
    expect(emulator.labelState('d', 'dedup_2')).toBe('ABORTED');
    expect((await streamLoad([{ id: 12 }], { label: 'dedup_2' })).json.Status).toBe('Success');
    expect(emulator.rows('d', 't').map((row) => row.id)).toEqual(expect.arrayContaining([10, 12]));
    expect(emulator.rows('d', 't').map((row) => row.id)).not.toContain(11);
  });

  it('applies partial updates to the listed columns only, and requires the key among them', async () => {
    await streamLoad([{ id: 20, name: 'keep', n: '1.00' }]);
    const partial = await streamLoad([{ id: 20, n: '2.00' }], {
      partial_update: 'true',
      columns: 'id,n,__op',
    });
    expect(partial.json.Status).toBe('Success');
    expect(emulator.rows('d', 't').find((row) => row.id === 20)).toMatchObject({ name: 'keep', n: '2.00' });
    const keyless = await streamLoad([{ n: '3.00' }], { partial_update: 'true', columns: 'n' });
    expect(keyless.json).toMatchObject({
      Status: 'Fail',
      Message: 'key column id not in partial update columns',
    });
  });

  it('answers selects and information_schema lookups over the MySQL port', async () => {
    const [version] = await sql.query('select current_version() as v');
    expect(version).toEqual([{ v: '3.3.5-emulator' }]);
    const [columns] = await sql.query(
      "select column_name, column_type, column_key from information_schema.columns where table_schema = 'd' and table_name = 't' order by ordinal_position",
    );
    expect(columns).toEqual([
      { column_name: 'id', column_type: 'int', column_key: 'PRI' },
      { column_name: 'name', column_type: 'varchar(4)', column_key: '' },
      { column_name: 'n', column_type: 'decimal(5,2)', column_key: '' },
      { column_name: 'at', column_type: 'datetime', column_key: '' },
    ]);
    const [count] = await sql.query("select count(*) as c from d.t where name = 'keep'");
    expect(count).toEqual([{ c: '1' }]);
  });
});
