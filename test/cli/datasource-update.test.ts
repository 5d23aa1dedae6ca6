// `sluice datasource update` as a child process against a live control plane (a real process, TLS 1.3): an
// operator moving a datasource to another host without giving its password again is refused, naming the
// flag to add, and nothing changes; with --password-file it succeeds; a new CA without the password is
// refused by the server and shown in flag spelling; a weakened sslmode is admin-only; a viewer can't update.
// The planted canary password never shows in any output.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomToken } from '@sluice/crypto';
import { Role, UserService } from '@sluice/proto';
import { createTestCa, createTestDatabase, plantCanary, type TestDatabase } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClients,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  startControlPlaneProcess,
} from '../e2e/cluster.ts';

const MAIN = path.resolve(import.meta.dirname, '../../packages/cli/main.ts');
const DB_PASSWORD = plantCanary(`canary-update-${randomToken(16)}`, 'datasource-update password');
const NEW_DB_PASSWORD = plantCanary(`canary-update-new-${randomToken(16)}`, 'datasource-update new password');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let db: TestDatabase;
let secrets: ClusterSecrets;
let cp: ControlPlaneProcess;
const stateDirs: Record<string, string> = {};
const outputs: string[] = [];
const file = (name: string) => path.join(secrets.dir, name);

function sluice(as: 'operator' | 'viewer', args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      {
        env: { PATH: process.env.PATH, HOME: secrets.dir, SLUICE_STATE_DIR: stateDirs[as] },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        outputs.push(stdout, stderr);
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(as: 'operator' | 'viewer', args: string[]): Promise<Run> {
  const run = await sluice(as, args);
  expect(run.code, `sluice ${args.join(' ')} failed: ${run.stderr}`).toBe(0);
  return run;
}

async function shown(): Promise<{ name: string; postgres: Record<string, unknown> }> {
  return JSON.parse((await ok('viewer', ['datasource', 'show', 'app', '--json'])).stdout);
}

describe('sluice datasource update against a live control plane', () => {
  beforeAll(async () => {
    db = await createTestDatabase('cli_update');
    secrets = await clusterSecrets();
    cp = await startControlPlaneProcess(db, secrets);
    const admin = await adminClients(cp);
    for (const [username, role] of [
      ['olivia', Role.OPERATOR],
      ['victor', Role.VIEWER],
    ] as const) {
      const password = `${username}-${randomToken(16)}`;
      await admin.client(UserService).createUser({ username, password, role });
      await writeFile(file(`${username}.login`), password, { mode: 0o600 });
    }
    await writeFile(file('db.pw'), `${DB_PASSWORD}\n`, { mode: 0o600 });
    await writeFile(file('db-new.pw'), NEW_DB_PASSWORD, { mode: 0o600 });
    await writeFile(file('root.crt'), cp.caPem);
    await writeFile(file('other-root.crt'), (await createTestCa('Another Root')).certPem);
    for (const [as, username] of [
      ['operator', 'olivia'],
      ['viewer', 'victor'],
    ] as const) {
      stateDirs[as] = await mkdtemp(path.join(secrets.dir, `${as}-state-`));
      await ok(as, [
        'login',
        '--control-plane',
        cp.url,
        '--ca-file',
        cp.caFile,
        '--username',
        username,
        '--password-file',
        file(`${username}.login`),
      ]);
    }
    await ok('operator', [
      'datasource',
      'add',
      'postgres',
      '--name',
      'app',
      '--host',
      'db1.example.internal',
      '--database',
      'app',
      '--username',
      'sluice_repl',
      '--password-file',
      file('db.pw'),
      '--ssl-root-cert',
      file('root.crt'),
    ]);
  }, 180_000);

  afterAll(async () => {
    await cp?.process.stop();
    await db?.drop();
  });

  it('refuses to move a datasource to another host without --password-file, naming the flag, and changes nothing', async () => {
    const before = await shown();
    const run = await sluice('operator', ['datasource', 'update', 'app', '--host', 'db2.example.internal']);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('changing --host of datasource app needs its password again');
    expect(run.stderr).toContain('add --password-file FILE');
    expect(await shown()).toEqual(before);
  });

  it("shows the server's refusal of a new CA without the password in flag spelling, and changes nothing", async () => {
    const before = await shown();
    const run = await sluice('operator', [
      'datasource',
      'update',
      'app',
      '--ssl-root-cert',
      file('other-root.crt'),
    ]);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('changing --ssl-root-cert of datasource app needs its password again');
    expect(run.stderr).not.toContain('postgres.');
    expect(await shown()).toEqual(before);
  });

  it('moves the datasource with --password-file and prints what changed', async () => {
    const run = await ok('operator', [
      'datasource',
      'update',
      'app',
      '--host',
      'db2.example.internal',
      '--port',
      '6432',
      '--password-file',
      file('db-new.pw'),
      '--json',
    ]);
    const answer = JSON.parse(run.stdout);
    expect(answer.changed).toEqual([
      { field: 'host', from: 'db1.example.internal', to: 'db2.example.internal' },
      { field: 'port', from: '5432', to: '6432' },
      { field: 'password', from: 'stored', to: 'replaced' },
    ]);
    expect((await shown()).postgres).toMatchObject({
      host: 'db2.example.internal',
      port: 6432,
      database: 'app',
      hasPassword: true,
      hasSslRootCert: true,
    });
    const human = await ok('operator', ['datasource', 'update', 'app', '--rename', 'app']);
    expect(human.stdout).toContain('datasource app unchanged');
  });

  it('refuses an operator an sslmode below verify-full (exit 3), naming the flags to use', async () => {
    const run = await sluice('operator', [
      'datasource',
      'update',
      'app',
      '--ssl-mode',
      'require',
      '--password-file',
      file('db-new.pw'),
    ]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('--ssl-mode require is below verify-full');
    expect((await shown()).postgres.sslMode).toBe('SSL_MODE_VERIFY_FULL');
  });

  it('refuses a viewer (exit 3) and changes nothing', async () => {
    const before = await shown();
    expect((await sluice('viewer', ['datasource', 'update', 'app', '--rename', 'mine'])).code).toBe(3);
    const move = await sluice('viewer', [
      'datasource',
      'update',
      'app',
      '--host',
      'db3.example.internal',
      '--password-file',
      file('db-new.pw'),
    ]);
    expect(move.code).toBe(3);
    expect(await shown()).toEqual(before);
  });

  it('never shows a datasource password in any output', () => {
    const all = outputs.join('\n');
    expect(all).not.toContain(DB_PASSWORD);
    expect(all).not.toContain(NEW_DB_PASSWORD);
  });
});
