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

describe('StarRocks load semantics (followed from StarRocks source)', () => {
  beforeAll(async () => {
    await sql.query(
      'create table d.v (id int not null, d date null, dt datetime null, n decimal(5,2) null, s varchar(4) null, ' +
        'c char(2) null, f float null, x double null, j json null, b varbinary null, a array<int> null, ' +
        'ad array<date> null, av array<varchar(10)> null, i int null) primary key (id) distributed by hash(id)',
    );
    await sql.query(
      'create table d.nn (id int not null, v int not null) primary key (id) distributed by hash(id)',
    );
  });
  const row = (id: number) => emulator.rows('d', 'v').find((r) => r.id === id);

  it('loads a value that fails conversion as NULL without strict_mode, answering Success with no filtered rows', async () => {
    const answer = await streamLoad(
      [{ id: 1, d: 'not a date', dt: '10000-01-01 00:00:00', n: 'NaN', i: 'abc', s: 'toolong' }],
      {},
      'v',
    );
    expect(answer.json).toMatchObject({ Status: 'Success', NumberLoadedRows: 1, NumberFilteredRows: 0 });
    expect(row(1)).toMatchObject({ d: null, dt: null, n: null, i: null, s: null });
  });

  it('filters such rows under strict_mode, failing the load with max_filter_ratio 0', async () => {
    for (const fields of [
      { d: 'not a date' },
      { dt: '10000-01-01' },
      { n: '1234.5' },
      { i: 'abc' },
      { s: 'toolong' },
    ]) {
      const answer = await streamLoad([{ id: 2, ...fields }], { strict_mode: 'true' }, 'v');
      expect(answer.json).toMatchObject({
        Status: 'Fail',
        NumberFilteredRows: 1,
        ErrorURL: expect.any(String),
      });
    }
    expect(row(2)).toBeUndefined();
  });

  it('filters NULL in a NOT NULL column in both modes, and fails a load leaving a NOT NULL column without default', async () => {
    for (const strict of ['false', 'true']) {
      const answer = await streamLoad([{ id: 1, v: 'abc' }], { strict_mode: strict }, 'nn');
      expect(answer.json).toMatchObject({ Status: 'Fail', NumberFilteredRows: 1 });
    }
    const unlisted = await streamLoad([{ id: 1 }], { columns: 'id' }, 'nn');
    expect(unlisted.json).toMatchObject({
      Status: 'Fail',
      Message: 'Column has no default value. column: v',
    });
  });

  it('reads year-month-day and ignores what follows, so 0044-03-15 BC loads as 0044-03-15 in both modes', async () => {
    for (const strict of ['false', 'true']) {
      const answer = await streamLoad(
        [{ id: 3, d: '0044-03-15 BC', dt: '2024-01-02 10:20:30.5+02 junk' }],
        { strict_mode: strict },
        'v',
      );
      expect(answer.json).toMatchObject({ Status: 'Success', NumberFilteredRows: 0 });
      expect(row(3)).toMatchObject({ d: '0044-03-15', dt: '2024-01-02 10:20:30.500000' });
    }
    await streamLoad([{ id: 4, d: '20240229', dt: '2023-02-29 00:00:00' }], {}, 'v');
    expect(row(4)).toMatchObject({ d: '2024-02-29', dt: null });
  });

  it('refuses VARCHAR and CHAR values over their byte length (NULL without strict_mode, filtered with it)', async () => {
    await streamLoad([{ id: 5, s: 'äää', c: 'abc' }], {}, 'v');
    expect(row(5)).toMatchObject({ s: null, c: null });
    await streamLoad([{ id: 5, s: 'ää', c: 'ab' }], { strict_mode: 'true' }, 'v');
    expect(row(5)).toMatchObject({ s: 'ää', c: 'ab' });
  });

  it('rounds DECIMAL fractions half up in both modes and refuses too many integer digits', async () => {
    await streamLoad(
      [
        { id: 6, n: '1.005' },
        { id: 7, n: -2.675 },
        { id: 8, n: '999.995' },
      ],
      { strict_mode: 'true', max_filter_ratio: '1' },
      'v',
    );
    expect(row(6)?.n).toBe('1.01');
    expect(row(7)?.n).toBe('-2.68');
    expect(row(8)).toBeUndefined();
  });

  it('takes NaN and Infinity strings into FLOAT/DOUBLE, keeps -0.0 negative and reads -0 as the integer 0', async () => {
    await streamLoad([{ id: 9, f: 'NaN', x: '-Infinity' }], { strict_mode: 'true' }, 'v');
    expect(row(9)).toMatchObject({ f: Number.NaN, x: Number.NEGATIVE_INFINITY });
    await streamLoad('[{"id": 10, "f": -0, "x": -0.0, "j": {"z": -0.0, "a": -0}}]', {}, 'v');
    expect(Object.is(row(10)?.f, 0)).toBe(true);
    expect(Object.is(row(10)?.x, -0)).toBe(true);
    expect(row(10)?.j).toBe('{"a": 0, "z": -0}');
    const [rows] = await sql.query('select x from d.v where id = 10');
    expect(rows).toEqual([{ x: '-0' }]);
  });

  it('stores JSON as int64/uint64/double: a JSON null field is SQL NULL, a string stays a string, an integer beyond 64 bits fails', async () => {
    await streamLoad(
      '[{"id": 11, "j": null}, {"id": 12, "j": "{\\"a\\": 1}"}, {"id": 13, "j": {"b": 1e400, "a": 1.0}}, ' +
        '{"id": 14, "j": [18446744073709551615, 1.5e300, {"k": 1, "k": 2}]}, {"id": 15, "j": 12345678901234567890123}]',
      {},
      'v',
    );
    expect(row(11)?.j).toBeNull();
    expect(row(12)?.j).toBe('"{\\"a\\": 1}"');
    expect(row(13)?.j).toBeNull(); // 1e400 is out of double range: simdjson refuses the number
    expect(row(14)?.j).toBe('[18446744073709551615, 1.5e+300, {"k": 1, "k": 2}]');
    expect(row(15)?.j).toBeNull();
    const strict = await streamLoad(
      '[{"id": 16, "j": 12345678901234567890123}]',
      { strict_mode: 'true' },
      'v',
    );
    expect(strict.json).toMatchObject({ Status: 'Fail', NumberFilteredRows: 1 });
  });

  it('copies a JSON string into VARBINARY byte for byte (no hex decoding) and answers VARBINARY as bytes over MySQL', async () => {
    await streamLoad([{ id: 17, b: 'DEADBEEF' }], {}, 'v');
    expect(row(17)?.b).toEqual(Buffer.from('DEADBEEF'));
    const [rows] = await sql.query('select b, s from d.v where id = 17');
    expect(rows).toEqual([{ b: Buffer.from('DEADBEEF'), s: null }]);
  });

  it('matches fields to the columns header names, computes b=hex_decode_binary(__hex_b), and reads missing fields as NULL', async () => {
    const answer = await streamLoad(
      [
        { id: 18, __hex_b: '00ff10', __op: 0 },
        { id: 19, __hex_b: 'abc' },
        { id: 20, __hex_b: 'zz' },
        { id: 21, __hex_b: '' },
        { id: 22 },
      ],
      { columns: 'id, __hex_b, b=hex_decode_binary(__hex_b), __op', strict_mode: 'true' },
      'v',
    );
    expect(answer.json).toMatchObject({ Status: 'Success', NumberLoadedRows: 5 });
    expect(row(18)?.b).toEqual(Buffer.from([0, 255, 16]));
    expect(row(19)?.b).toEqual(Buffer.alloc(0));
    expect(row(20)?.b).toEqual(Buffer.alloc(0));
    expect(row(21)?.b).toEqual(Buffer.alloc(0));
    expect(row(22)?.b).toBeNull();
    const partial = await streamLoad(
      [
        { id: 18, __hex_b: '41', __op: 0 },
        { id: 19, __op: 1 },
      ],
      {
        columns: 'id,__hex_b,b=hex_decode_binary(__hex_b),__op',
        partial_update: 'true',
      },
      'v',
    );
    expect(partial.json.Status).toBe('Success');
    expect(row(18)?.b).toEqual(Buffer.from('A'));
    expect(row(19)).toBeUndefined();
    const unsupported = await streamLoad([{ id: 23 }], { columns: 'id, x, b=unhex(x)' }, 'v');
    expect(unsupported.json).toMatchObject({
      Status: 'Fail',
      Message: "the emulator does not support expression 'unhex(x)' in the columns header",
    });
  });

  it('reads array elements that fail conversion as NULL elements even under strict_mode', async () => {
    const answer = await streamLoad(
      [{ id: 24, a: [1, 'x', 2.7, [3]], ad: ['2024-01-01', 'nope'], av: [[1, 2], 'abcdefghijkl', 'ok'] }],
      { strict_mode: 'true' },
      'v',
    );
    expect(answer.json).toMatchObject({ Status: 'Success', NumberFilteredRows: 0 });
    expect(row(24)).toMatchObject({
      a: [1, null, 2, null],
      ad: ['2024-01-01', null],
      av: ['[1,2]', null, 'ok'],
    });
  });

  it('ignores JSON fields that name no column, as StarRocks does (unknownFields: filter is opt-in)', async () => {
    const answer = await streamLoad([{ id: 25, nope: 1 }], {}, 'v');
    expect(answer.json).toMatchObject({ Status: 'Success', NumberLoadedRows: 1 });
  });

  it('applies a delete then a re-upsert of one key in order on shared-nothing, and loses the re-upsert on shared-data', async () => {
    const rows = [{ id: 26 }, { id: 26, __op: 1 }, { id: 26, i: 5 }];
    await streamLoad(rows, {}, 'v');
    expect(row(26)).toMatchObject({ i: 5 });
    const shared = await startStarRocksEmulator({ sharedData: true });
    try {
      const admin = await mysql.createConnection({ host: '127.0.0.1', port: shared.mysqlPort, user: 'root' });
      await admin.query('create database d');
      await admin.query(
        'create table d.v (id int not null, i int null) primary key (id) distributed by hash(id)',
      );
      await admin.end();
      const all = { authorization: `Basic ${Buffer.from('root:').toString('base64')}` };
      await streamLoad(rows, all, 'v', shared);
      expect(shared.rows('d', 'v')).toEqual([]);
    } finally {
      await shared.stop();
    }
  });

  it('gives rows that existed before ADD COLUMN … DEFAULT the default, with either quote style', async () => {
    await sql.query('create table d.w (id int not null) primary key (id) distributed by hash(id)');
    await streamLoad([{ id: 1 }], {}, 'w');
    await sql.query('alter table d.w add column k varchar(8) not null default "dflt"');
    await sql.query("alter table d.w add column m int null default '3'");
    const [rows] = await sql.query('select id, k, m from d.w');
    expect(rows).toEqual([{ id: '1', k: 'dflt', m: '3' }]);
  });
});
