// A quick local measurement, not a test: how fast the source turns a large transaction into change events.
// Run: node packages/cdc/source/postgres/testing/decode-throughput.ts [rows]
// 1. end to end: START_REPLICATION → events for one committed N-row transaction (includes the server's
//    own decoding, like pg_recvlogical's figure in the reference);
// 2. decoder only: the same XLogData payloads decoded again from memory.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createTestDatabase, findSystemPostgres, startPostgres } from '@sluice/testkit';
import type { ChangeEvent } from '../../../change-event.ts';
import { PgoutputDecoder, PostgresSource } from '../index.ts';
import { testConnection } from './memory-table.ts';

const report = (line: string) => process.stdout.write(`${line}\n`);

const rows = Number(process.argv[2] ?? 1_000_000);
const server = await startPostgres({ tls: false, settings: { shared_buffers: '512MB' } });
try {
  const db = await createTestDatabase('bench', server);
  await db.client.query(`create table bench (id int8 primary key, name text, email text, amount numeric(12,2),
    created timestamptz, flag bool, payload text)`);
  const source = new PostgresSource({
    connection: testConnection(server, db.name),
    job: 'bench',
    tables: [{ schema: 'public', name: 'bench' }],
  });
  await source.setup();
  await db.client.query(`select pg_create_logical_replication_slot('bench_recv', 'pgoutput')`);
  await db.client.query(
    `insert into bench select g, 'name ' || g, 'user' || g || '@example.com', g * 1.25, now(), g % 2 = 0,
       repeat(md5(g::text), 3) from generate_series(1, ${rows}) g`,
  );
  const captured: Buffer[] = [];
  const recvlogical = `${findSystemPostgres(15) ?? '/usr/lib/postgresql/15/bin'}/pg_recvlogical`;
  if (existsSync(recvlogical)) {
    const end = await db.client.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    const t0 = performance.now();
    execFileSync(
      recvlogical,
      [
        '-d',
        `host=${server.host} port=${server.port} dbname=${db.name} user=${server.user}`,
        '--slot=bench_recv',
        '--start',
        '-o',
        'proto_version=1',
        '-o',
        'publication_names=sluice_bench',
        '-E',
        end.rows[0]!.lsn,
        '-f',
        '/dev/null',
      ],
      { env: { ...process.env, PGPASSWORD: server.password } },
    );
    report(
      `reference pg_recvlogical (same transaction, same server): ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
  }
  const stream = await source.stream({ streaming: false, heartbeatIntervalMs: 0 });
  const started = performance.now();
  let inserts = 0;
  let firstAt = 0;
  outer: for await (const batch of stream) {
    firstAt ||= performance.now();
    for (const event of batch) {
      if (event.kind === 'insert') inserts++;
      if (event.kind === 'commit' && inserts >= rows) break outer;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const rss = process.memoryUsage().rss / 1024 / 1024;
  const delivery = (performance.now() - firstAt) / 1000;
  report(
    `first event after ${((firstAt - started) / 1000).toFixed(2)} s (server decoding); delivery ${Math.round(inserts / delivery)} rows/s`,
  );
  report(
    `end to end: ${inserts} rows in ${seconds.toFixed(2)} s = ${Math.round(inserts / seconds)} rows/s, RSS ${rss.toFixed(0)} MB`,
  );
  await source.close();

  const { waitFor } = await import('@sluice/testkit');
  await waitFor(async () => {
    const active = await db.client.query(
      "select 1 from pg_replication_slots where slot_name = 'sluice_bench' and active",
    );
    return active.rowCount === 0;
  });
  // Decoder only: capture pgoutput messages with pg_logical_slot_peek_binary_changes, then decode them.
  const peekStarted = performance.now();
  const peek = await db.client.query<{ lsn: string; data: Buffer }>(
    `select lsn::text, data from pg_logical_slot_peek_binary_changes('sluice_bench', null, null,
       'proto_version', '1', 'publication_names', 'sluice_bench')`,
  );
  report(`server-side peek of the same changes: ${((performance.now() - peekStarted) / 1000).toFixed(2)} s`);
  for (const row of peek.rows) {
    const framed = Buffer.allocUnsafe(25 + row.data.length);
    framed.fill(0, 0, 25);
    row.data.copy(framed, 25);
    captured.push(framed);
  }
  const client = await source.connect();
  const { TypeCatalog } = await import('../source-schema.ts');
  const types = new TypeCatalog();
  const { rows: columns } = await client.query<{ atttypid: number }>(
    `select atttypid::int4 from pg_attribute where attrelid = 'bench'::regclass and attnum > 0`,
  );
  await types.load(
    client,
    columns.map((column) => column.atttypid),
  );
  await client.end();
  for (let round = 0; round < 3; round++) {
    const decoder = new PgoutputDecoder({
      protocolVersion: 1,
      describe: (relation) => ({
        table: { schema: relation.schema, name: relation.name },
        columns: relation.columns.map((column) => ({
          name: column.name,
          type: types.resolve(column.typeOid, column.modifier),
          nullable: true,
        })),
        primaryKey: ['id'],
      }),
    });
    const out: ChangeEvent[] = [];
    let decoded = 0;
    const t0 = performance.now();
    for (const message of captured) {
      decoder.decode(message, 25, 0n, out);
      if (out.length >= 4096) {
        decoded += out.length;
        out.length = 0;
      }
    }
    decoded += out.length;
    const s = (performance.now() - t0) / 1000;
    report(
      `decoder only (round ${round + 1}): ${decoded} events in ${s.toFixed(2)} s = ${Math.round(decoded / s)} events/s`,
    );
  }
  await db.drop();
} catch (error) {
  report(error instanceof Error ? error.message : String(error));
} finally {
  await server.stop();
}
