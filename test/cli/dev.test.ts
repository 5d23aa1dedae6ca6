// `sluice dev` (what `npm start` runs) from an empty directory with no configuration: it starts, prints the
// URL and the admin login, the demo job reaches the streaming phase (read back with the CLI, using the
// session it prints), its state is private, and SIGINT stops everything — no PostgreSQL is left behind.
import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServiceProcess, waitFor } from '@sluice/testkit';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

const MAIN = path.resolve(import.meta.dirname, '../../packages/cli/main.ts');

type Row = Record<string, unknown>;

const DEMO_TABLES: Array<[string, string, string]> = [
  ['customers', 'id, name, email, country', 'id'],
  ['orders', 'id, customer_id, status, total', 'id'],
  ['order_items', 'order_id, line_no, product, quantity, unit_price', 'order_id, line_no'],
];

/** Values as text, numbers in one canonical form (the sink may answer 12.30 as 12.3, bigint as number). */
function normalize(rows: Row[]): string[][] {
  return rows.map((row) =>
    Object.values(row).map((value) => {
      const text = String(value);
      return /^-?\d+(\.\d+)?$/.test(text) ? String(Number(text)) : text;
    }),
  );
}

function postgresProcessesUnder(dir: string): string[] {
  const lines = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n');
  return lines.filter((line) => line.includes('postgres') && line.includes(dir));
}

describe('sluice dev', () => {
  let work: string | undefined;

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('starts everything from nothing, streams the demo job into a sink equal to the source, and stops cleanly on SIGINT', {
    timeout: 240_000,
  }, async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sluice-dev-'));
    // As root, the embedded PostgreSQL servers run as `postgres` and must traverse to their directories.
    await chmod(work, 0o711);
    const scratch = path.join(work, 'tmp');
    await mkdir(scratch, { mode: 0o711 });
    const dev = startServiceProcess({
      entry: MAIN,
      args: ['dev', '--listen', '127.0.0.1:0', '--trickle-transactions', '40'],
      cwd: work,
      // The demo PostgreSQL's data directory goes under TMPDIR: every server of this run is findable by path.
      env: { TMPDIR: scratch },
      name: 'sluice dev',
    });
    try {
      const urlLine = await dev.waitForLine(/control plane\s+https:\/\/127\.0\.0\.1:\d+/, 180_000);
      const url = /https:\/\/127\.0\.0\.1:\d+/.exec(urlLine)![0];
      const state = path.join(work, '.sluice', 'dev');
      expect(await dev.waitForLine(/admin login/)).toContain(
        `admin, password in ${state}/secrets/admin.password`,
      );
      const sessionLine = await dev.waitForLine(/export SLUICE_STATE_DIR=/);
      const cliState = /SLUICE_STATE_DIR=(\S+)/.exec(sessionLine)![1]!;
      expect(cliState).toBe(path.join(state, 'cli'));
      await dev.waitForLine(/npx sluice job status demo/);

      // Private state: generated secrets 0600, their directory 0700, nothing readable by others.
      for (const name of ['encryption.key', 'jwt.secret', 'admin.password'])
        expect((await stat(path.join(state, 'secrets', name))).mode & 0o777).toBe(0o600);
      expect((await stat(path.join(state, 'secrets'))).mode & 0o777).toBe(0o700);
      expect((await stat(state)).mode & 0o066).toBe(0);
      expect((await stat(path.join(cliState, 'session.json'))).mode & 0o777).toBe(0o600);
      const adminPassword = (await readFile(path.join(state, 'secrets', 'admin.password'), 'utf8')).trim();

      // What the printed commands show: the job, through the CLI and the session dev left.
      const status = await waitFor(
        async () => {
          const stdout = await new Promise<string>((resolve, reject) =>
            execFile(
              process.execPath,
              [MAIN, 'job', 'status', 'demo', '--json'],
              { env: { PATH: process.env.PATH, HOME: work, SLUICE_STATE_DIR: cliState } },
              (error, out) => (error ? reject(error) : resolve(out)),
            ),
          );
          const parsed = JSON.parse(stdout);
          return parsed.state === 'JOB_STATE_RUNNING' && parsed.phase === 'JOB_PHASE_STREAMING' && parsed;
        },
        { timeoutMs: 120_000, intervalMs: 1_000, description: 'the demo job running in the streaming phase' },
      );
      expect(status.tables.map((t: { table: { name: string } }) => t.table.name).sort()).toEqual([
        'customers',
        'order_items',
        'orders',
      ]);
      await dev.waitForLine(/job demo: running, phase streaming/, 60_000);
      expect(dev.output()).toContain(url);

      // After the demo writes stop, the sink converges on the source: every row of every demo table.
      await dev.waitForLine(/demo writes stopped after 40 transactions/, 60_000);
      const demo = JSON.parse(await readFile(path.join(state, 'demo.json'), 'utf8'));
      expect((await stat(path.join(state, 'demo.json'))).mode & 0o777).toBe(0o600);
      const source = new pg.Client({
        host: demo.source.host,
        port: demo.source.port,
        database: demo.source.database,
        user: demo.source.user,
        password: demo.source.password,
        ssl: { ca: demo.source.caPem, servername: 'localhost' },
      });
      await source.connect();
      const sink = await mysql.createConnection({
        host: demo.sink.host,
        port: demo.sink.mysqlPort,
        user: demo.sink.user,
        password: demo.sink.password,
        database: demo.sink.database,
      });
      try {
        for (const [table, columns, key] of DEMO_TABLES) {
          const expected = normalize(
            (await source.query(`select ${columns} from ${table} order by ${key}`)).rows as Row[],
          );
          expect(expected.length).toBeGreaterThan(1000);
          await waitFor(
            async () => {
              const [rows] = await sink.query(`select ${columns} from ${table} order by ${key}`);
              return JSON.stringify(normalize(rows as Row[])) === JSON.stringify(expected);
            },
            { timeoutMs: 60_000, intervalMs: 500, description: `sink ${table} equal to the source` },
          );
        }
      } finally {
        await source.end();
        await sink.end();
      }
      expect(dev.output()).not.toContain(adminPassword);

      // Both PostgreSQL servers (catalog and demo source) run under this directory, until SIGINT.
      expect(postgresProcessesUnder(work).length).toBeGreaterThanOrEqual(2);
      const code = await dev.stop('SIGINT', 60_000);
      expect(code).toBe(0);
      expect(dev.output()).toContain('sluice dev: stopped');
      expect(postgresProcessesUnder(work)).toEqual([]);
    } finally {
      await dev.stop('SIGKILL');
    }
  });
});
