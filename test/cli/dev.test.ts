// `sluice dev` (what `npm start` runs) from an empty directory with no configuration: it starts, prints the
// URL and the admin login, the demo job reaches the streaming phase (read back with the CLI, using the
// session it prints), its state is private, and SIGINT stops everything — no PostgreSQL is left behind.
import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServiceProcess, waitFor } from '@sluice/testkit';
import { afterAll, describe, expect, it } from 'vitest';

const MAIN = path.resolve(import.meta.dirname, '../../packages/cli/main.ts');

function postgresProcessesUnder(dir: string): string[] {
  const lines = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n');
  return lines.filter((line) => line.includes('postgres') && line.includes(dir));
}

describe('sluice dev', () => {
  let work: string | undefined;

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('starts everything from nothing, streams the demo job, and stops cleanly on SIGINT', {
    timeout: 240_000,
  }, async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sluice-dev-'));
    // As root, the embedded PostgreSQL servers run as `postgres` and must traverse to their directories.
    await chmod(work, 0o711);
    const scratch = path.join(work, 'tmp');
    await mkdir(scratch, { mode: 0o711 });
    const dev = startServiceProcess({
      entry: MAIN,
      args: ['dev', '--listen', '127.0.0.1:0'],
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
