// Scenario 1, streaming decode: the same WAL read three ways, each from its own slot created before the
// WAL was written — pg_recvlogical with pgoutput to /dev/null (the reference: the walsender's own limit),
// npm pg-logical-replication decoding to objects (a peer), and Sluice's source into a null consumer that
// acknowledges every commit. All three ask for pgoutput protocol 1 without streaming of in-progress
// transactions, so the server does the same work for each.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PostgresSource } from '@sluice/cdc';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { round, startSelfSpan } from './measure.ts';
import { type ResultRow, ratio } from './report.ts';
import { type BenchContext, type Scenario, type ScenarioOutcome, skipped } from './scenario.ts';
import {
  type BenchDatabase,
  CREATE_TABLE,
  createDatabase,
  currentLsn,
  insertRange,
  insertTransactions,
  libpqEnv,
  TABLE,
} from './workload.ts';

/** Rounds of each reader in a full run (one in --quick). */
const REPEATS = 2;

interface DecodeCase {
  key: string;
  label: string;
  rows: number;
  perTransaction: number;
}

export function decodeCases(quick: boolean): DecodeCase[] {
  const rows = quick ? 20_000 : 1_000_000;
  return [
    { key: 'large', label: `1 txn × ${rows.toLocaleString('en-US')} rows`, rows, perTransaction: rows },
    {
      key: 'small',
      label: `${(rows / 10).toLocaleString('en-US')} txns × 10 rows`,
      rows,
      perTransaction: 10,
    },
  ];
}

export const streamingDecode: Scenario = {
  name: 'streaming-decode',
  title: '1. Streaming decode (pgoutput v1, same WAL, own slot each)',
  async run(context) {
    if (!existsSync(path.join(context.postgresBinDir, 'pg_recvlogical')))
      return skipped('no pg_recvlogical (the reference) found');
    const cases = decodeCases(context.quick);
    const rows: ResultRow[] = [];
    for (const decodeCase of cases) rows.push(...(await runCase(context, decodeCase)));
    return {
      status: 'ok',
      parameters: { rows: cases[0]!.rows, rowBytes: 200, protocol: 1 },
      rows,
    } satisfies ScenarioOutcome;
  },
};

async function runCase(context: BenchContext, decodeCase: DecodeCase): Promise<ResultRow[]> {
  const db = await createDatabase(context.postgres, `decode_${decodeCase.key}`);
  const repeats = context.quick ? 1 : REPEATS;
  const sources: PostgresSource[] = [];
  try {
    await db.client.query(CREATE_TABLE);
    // One slot per reader and repeat, all before the WAL is written: each read decodes the same WAL afresh.
    let publication = '';
    for (let repeat = 0; repeat < repeats; repeat++) {
      const job = `decode_${decodeCase.key}_${repeat}`;
      const source = new PostgresSource({ connection: db.connection, job, tables: [TABLE] });
      sources.push(source);
      publication = (await source.setup()).name;
      await db.client.query(
        `select pg_create_logical_replication_slot('bench_recv_${repeat}', 'pgoutput'),
                pg_create_logical_replication_slot('bench_peer_${repeat}', 'pgoutput')`,
      );
    }
    context.log(`decode ${decodeCase.label}: writing the WAL`);
    await db.client.query(
      decodeCase.perTransaction >= decodeCase.rows
        ? insertRange(1, decodeCase.rows)
        : insertTransactions(decodeCase.rows, decodeCase.perTransaction),
    );
    const end = await currentLsn(db.client);
    const transactions = Math.ceil(decodeCase.rows / decodeCase.perTransaction);

    // Interleaved rounds, best of each: other load on the machine hits every reader alike, and the
    // fastest round is the closest to what the reader can do.
    const runs: { reference: (Reader & { bytes: number })[]; peer: Reader[]; sluice: Reader[] } = {
      reference: [],
      peer: [],
      sluice: [],
    };
    for (let repeat = 0; repeat < repeats; repeat++) {
      const tag = repeats > 1 ? ` (round ${repeat + 1}/${repeats})` : '';
      context.log(`decode ${decodeCase.label}: pg_recvlogical${tag}`);
      runs.reference.push(await readWithRecvlogical(context, db, `bench_recv_${repeat}`, publication, end));
      context.log(`decode ${decodeCase.label}: pg-logical-replication${tag}`);
      runs.peer.push(await readWithPeer(db, `bench_peer_${repeat}`, publication, decodeCase.rows));
      context.log(`decode ${decodeCase.label}: Sluice source${tag}`);
      runs.sluice.push(await readWithSluice(sources[repeat]!, decodeCase.rows, transactions));
      await sources[repeat]!.close();
    }
    // A pgoutput Insert of these rows is ~215 bytes: a round with less output stopped early.
    const complete = runs.reference.filter((run) => run.bytes >= decodeCase.rows * 190);
    if (complete.length < runs.reference.length)
      context.log(`decode ${decodeCase.label}: discarded a pg_recvlogical round that stopped short`);
    if (complete.length === 0) throw new Error('pg_recvlogical stopped before the end of the WAL');
    runs.reference = complete;
    const reference = best(runs.reference);
    const referenceRate = decodeCase.rows / reference.seconds;
    context.references.set(decodeCase.key, referenceRate);

    const row = (subject: string, all: Reader[], withCpu: boolean): ResultRow => {
      const span = best(all);
      const rate = decodeCase.rows / span.seconds;
      return {
        case: decodeCase.label,
        subject,
        metric: 'rows/s',
        value: round(rate),
        reference: round(referenceRate),
        ratio: round(ratio(rate, referenceRate) ?? 0),
        details: {
          seconds: round(span.seconds),
          ...(all.length > 1 && { slowestSeconds: round(Math.max(...all.map((run) => run.seconds))) }),
          ...(withCpu && { cpuUsPerRow: round((span.cpuSeconds * 1e6) / decodeCase.rows) }),
        },
      };
    };
    const referenceRow = row('pg_recvlogical → discarded (reference)', runs.reference, false);
    referenceRow.details = { ...referenceRow.details, outputMB: round(reference.bytes / 1e6) };
    return [
      referenceRow,
      row('pg-logical-replication 2.5 → objects', runs.peer, true),
      row('Sluice source → null consumer', runs.sluice, true),
    ];
  } finally {
    for (const source of sources) await source.close().catch(() => undefined);
    await db.drop();
  }
}

function best<T extends Reader>(runs: T[]): T {
  return runs.reduce((fastest, run) => (run.seconds < fastest.seconds ? run : fastest));
}

interface Reader {
  seconds: number;
  cpuSeconds: number;
}

/**
 * pg_recvlogical writing to stdout, counted and discarded here: the count shows it really read the whole
 * WAL (it stops at `--endpos`, and a round that stops short must not pass for a fast one).
 */
async function readWithRecvlogical(
  context: BenchContext,
  db: BenchDatabase,
  slot: string,
  publication: string,
  end: string,
): Promise<Reader & { bytes: number }> {
  const started = performance.now();
  const args = ['-d', db.libpq, `--slot=${slot}`, '--start', '-o', 'proto_version=1'];
  args.push('-o', `publication_names=${publication}`, '-E', end, '-f', '-');
  const bytes = await new Promise<number>((resolve, reject) => {
    const child = spawn(path.join(context.postgresBinDir, 'pg_recvlogical'), args, {
      env: libpqEnv(context.postgres),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    });
    let count = 0;
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => {
      count += chunk.length;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(count) : reject(new Error(`pg_recvlogical exited ${code}: ${errors.trim()}`)),
    );
  });
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: Number.NaN, bytes };
}

/** The peer as its README recommends for a sink that must not lose data: acknowledge at each commit. */
async function readWithPeer(
  db: BenchDatabase,
  slot: string,
  publication: string,
  rows: number,
): Promise<Reader> {
  const service = new LogicalReplicationService(db.pgConfig, {
    acknowledge: { auto: false, timeoutSeconds: 10 },
  });
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
  const span = startSelfSpan();
  let inserts = 0;
  const done = new Promise<void>((resolve, reject) => {
    service.on('error', reject);
    service.on('data', (lsn: string, message: { tag: string }) => {
      if (message.tag === 'insert') inserts++;
      else if (message.tag === 'commit') {
        void service.acknowledge(lsn);
        if (inserts >= rows) resolve();
      }
    });
    // Resolves only when replication ends; a failure to start ends the wait at once.
    service.subscribe(plugin, slot).catch(reject);
  });
  try {
    await withTimeout(done, 600_000, 'pg-logical-replication did not finish');
    return span.stop();
  } finally {
    await service.stop().catch(() => undefined);
  }
}

async function readWithSluice(source: PostgresSource, rows: number, transactions: number): Promise<Reader> {
  const span = startSelfSpan();
  const stream = await source.stream({ streaming: false, heartbeatIntervalMs: 0, maxProtocolVersion: 1 });
  let inserts = 0;
  let commits = 0;
  outer: for await (const batch of stream) {
    for (const event of batch) {
      if (event.kind === 'insert') inserts++;
      else if (event.kind === 'commit') {
        stream.acknowledge(event.endLsn);
        commits++;
        if (inserts >= rows && commits >= transactions) break outer;
      }
    }
  }
  return span.stop();
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
