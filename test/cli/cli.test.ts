// The `sluice` CLI as a child process against a live control plane (a real process, TLS 1.3): login with a
// password file, datasources, a job, status as JSON while a real worker runs it, the audit trail — and the
// exit codes of the failures scripts must tell apart. Planted canary passwords must never show in any output
// or in the session file.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomToken } from '@sluice/crypto';
import {
  createTestDatabase,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
  waitFor,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  freePort,
  PLACEHOLDER_WORKER_ENTRY,
  startControlPlaneProcess,
  startWorkerProcess,
} from '../e2e/cluster.ts';

const MAIN = path.resolve(import.meta.dirname, '../../packages/cli/main.ts');
const SOURCE_PASSWORD = `canary-cli-source-${randomToken(16)}`;
const SINK_PASSWORD = `canary-cli-sink-${randomToken(16)}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let db: TestDatabase;
let secrets: ClusterSecrets;
let cp: ControlPlaneProcess;
let worker: ServiceProcess | undefined;
let stateDir: string;
const outputs: string[] = [];

function sluice(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      {
        env: { PATH: process.env.PATH, HOME: secrets.dir, SLUICE_STATE_DIR: stateDir, ...env },
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

async function ok(args: string[], env?: Record<string, string>): Promise<Run> {
  const run = await sluice(args, env);
  expect(run.code, `sluice ${args.join(' ')} failed: ${run.stderr}`).toBe(0);
  return run;
}

describe('sluice CLI against a live control plane', () => {
  beforeAll(async () => {
    db = await createTestDatabase('cli');
    secrets = await clusterSecrets();
    cp = await startControlPlaneProcess(db, secrets);
    stateDir = await mkdtemp(path.join(secrets.dir, 'cli-state-'));
    await writeFile(path.join(secrets.dir, 'source.pw'), `${SOURCE_PASSWORD}\n`, { mode: 0o600 });
    await writeFile(path.join(secrets.dir, 'sink.pw'), SINK_PASSWORD, { mode: 0o600 });
    await writeFile(path.join(secrets.dir, 'wrong.pw'), 'not-the-admin-password', { mode: 0o600 });
  });

  afterAll(async () => {
    await worker?.stop();
    await cp?.process.stop();
    await db?.drop();
  });

  it('refuses a wrong password with exit 3 and stores no session', async () => {
    const run = await sluice([
      'login',
      '--control-plane',
      cp.url,
      '--ca-file',
      cp.caFile,
      '--username',
      ADMIN.username,
      '--password-file',
      path.join(secrets.dir, 'wrong.pw'),
    ]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/sluice: .*(invalid|login|password|credentials)/i);
    await expect(stat(path.join(stateDir, 'session.json'))).rejects.toThrow();
  });

  it('refuses commands before login with exit 3, and an unreachable control plane with exit 4', async () => {
    expect((await sluice(['job', 'list', '--control-plane', cp.url])).code).toBe(3);
    const closed = await freePort();
    const run = await sluice([
      'login',
      '--control-plane',
      `https://127.0.0.1:${closed}`,
      '--ca-file',
      cp.caFile,
      '--username',
      ADMIN.username,
      '--password-file',
      secrets.adminPasswordFile,
    ]);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('unavailable');
  });

  it('logs in with a password file into a 0600 session file that holds tokens, never the password', async () => {
    const run = await ok([
      'login',
      '--control-plane',
      cp.url,
      '--ca-file',
      cp.caFile,
      '--username',
      ADMIN.username,
      '--password-file',
      secrets.adminPasswordFile,
      '--json',
    ]);
    expect(JSON.parse(run.stdout).user).toMatchObject({ username: ADMIN.username, role: 'admin' });
    const file = path.join(stateDir, 'session.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(stateDir)).mode & 0o077).toBe(0);
    const session = await readFile(file, 'utf8');
    expect(session).not.toContain(ADMIN.password);
    expect(JSON.parse(session)).toMatchObject({
      controlPlane: cp.url,
      caFile: cp.caFile,
      username: ADMIN.username,
    });
  });

  it('refreshes an expired access token with the refresh token, rotating both in the session file', async () => {
    const file = path.join(stateDir, 'session.json');
    const before = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...before, accessTokenExpiresAt: new Date(0).toISOString() }), {
      mode: 0o600,
    });
    await ok(['job', 'list']);
    const after = JSON.parse(await readFile(file, 'utf8'));
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(Date.parse(after.accessTokenExpiresAt)).toBeGreaterThan(Date.now());
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('exits 2 on bad usage: a missing required flag, an unknown flag, a password given as an argument', async () => {
    const missing = await sluice(['job', 'create', '--name', 'x']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--source is required');
    const unknown = await sluice(['datasource', 'list', '--colour']);
    expect(unknown.code).toBe(2);
    const argv = await sluice([
      'datasource',
      'add',
      'postgres',
      '--name',
      'x',
      '--password',
      'hunter2hunter2',
    ]);
    expect(argv.code).toBe(2);
    expect(argv.stderr).not.toContain('hunter2hunter2');
  });

  let jobId = '';
  let sourceId = '';

  it('creates datasources with passwords read from files, and a job, by name', async () => {
    const pemFile = path.join(secrets.dir, 'root.crt');
    await writeFile(pemFile, cp.caPem);
    const source = await ok([
      'datasource',
      'add',
      'postgres',
      '--name',
      'cli-source',
      '--host',
      'db.example.internal',
      '--port',
      '5432',
      '--database',
      'app',
      '--username',
      'sluice_repl',
      '--password-file',
      path.join(secrets.dir, 'source.pw'),
      '--ssl-mode',
      'verify-full',
      '--ssl-root-cert',
      pemFile,
      '--json',
    ]);
    const created = JSON.parse(source.stdout);
    sourceId = created.id;
    expect(created.postgres).toMatchObject({
      host: 'db.example.internal',
      hasPassword: true,
      hasSslRootCert: true,
    });
    await ok([
      'datasource',
      'add',
      'starrocks',
      '--name',
      'cli-sink',
      '--fe-host',
      'starrocks.example.internal',
      '--http-port',
      '8030',
      '--mysql-port',
      '9030',
      '--username',
      'sluice',
      '--password-file',
      path.join(secrets.dir, 'sink.pw'),
      '--database',
      'demo',
    ]);
    const shown = await ok(['datasource', 'show', 'cli-source']);
    expect(shown.stdout).toContain('stored (encrypted)');
    const list = JSON.parse((await ok(['datasource', 'list', '--json'])).stdout);
    expect(list.datasources.map((d: { name: string }) => d.name).sort()).toEqual(['cli-sink', 'cli-source']);

    const job = await ok([
      'job',
      'create',
      '--name',
      'cli-job',
      '--source',
      'cli-source',
      '--sink',
      'cli-sink',
      '--table',
      'public.customers',
      '--table',
      'orders',
      '--json',
    ]);
    const parsed = JSON.parse(job.stdout);
    jobId = parsed.id;
    expect(parsed).toMatchObject({ name: 'cli-job', state: 'JOB_STATE_CREATED' });
    expect(parsed.tables).toEqual([
      { schema: 'public', name: 'customers' },
      { schema: 'public', name: 'orders' },
    ]);
  });

  it('rotates the encryption keys through the control plane', async () => {
    const rotated = JSON.parse((await ok(['keys', 'rotate', '--json'])).stdout);
    expect(rotated.keyId).not.toBe('');
    expect(rotated.reencrypted).toBeGreaterThanOrEqual(2);
  });

  it('exits 5 for an unknown job and for a change the job state forbids', async () => {
    const unknown = await sluice(['job', 'status', 'no-such-job']);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toContain('job "no-such-job" not found');
    const pause = await sluice(['job', 'pause', 'cli-job']);
    expect(pause.code).toBe(5);
  });

  it('reads the status as JSON while a worker registered with a CLI token runs the job', async () => {
    const token = JSON.parse((await ok(['token', 'create', '--ttl', '15m', '--json'])).stdout);
    expect(token.secret).toMatch(/^[A-Za-z0-9_.-]{16,}$/);
    // The datasources above point nowhere: the worker runs the placeholder runner, which reports phases.
    worker = await startWorkerProcess(cp, {
      entry: PLACEHOLDER_WORKER_ENTRY,
      token: token.secret,
      stateDir: await mkdtemp(path.join(secrets.dir, 'worker-')),
    });
    await ok(['job', 'start', 'cli-job']);
    const status = await waitFor(
      async () => {
        const run = await ok(['job', 'status', 'cli-job', '--json']);
        const parsed = JSON.parse(run.stdout);
        return parsed.state === 'JOB_STATE_RUNNING' && parsed.phase === 'JOB_PHASE_STREAMING' && parsed;
      },
      { timeoutMs: 60_000, description: 'the job running and streaming' },
    );
    expect(status.jobId).toBe(jobId);
    expect(status.workerId).not.toBe('');
    const human = await ok(['job', 'status', 'cli-job']);
    expect(human.stdout).toContain('phase streaming');
    expect(human.stdout).toContain('public.customers');
    expect(human.stdout).toMatch(/lag .* s/);
    // --watch follows WatchJobStatus: one JSON object per line until Ctrl-C.
    const watching = startServiceProcess({
      entry: MAIN,
      args: ['job', 'status', 'cli-job', '--watch', '--json'],
      env: { HOME: secrets.dir, SLUICE_STATE_DIR: stateDir },
      name: 'sluice job status --watch',
    });
    const line = await watching.waitForLine(/JOB_PHASE_STREAMING/);
    expect(JSON.parse(line)).toMatchObject({ jobId, state: 'JOB_STATE_RUNNING' });
    expect(await watching.stop('SIGINT')).toBe(0);
    outputs.push(watching.output());
    const workers = JSON.parse((await ok(['worker', 'list', '--json'])).stdout);
    expect(workers.workers.map((w: { id: string }) => w.id)).toContain(status.workerId);
    await ok(['job', 'stop', 'cli-job']);
    await ok(['job', 'rm', 'cli-job']);
    expect((await sluice(['job', 'status', 'cli-job'])).code).toBe(5);
  });

  it('shows the actions in the audit trail and verifies its hash chain', async () => {
    const audit = JSON.parse((await ok(['audit', 'list', '--limit', '1000', '--json'])).stdout);
    const actions = audit.events.map((e: { action: string }) => e.action);
    expect(actions).toContain('auth.login');
    expect(actions).toContain('datasource.create');
    expect(audit.events.some((e: { resourceId: string }) => e.resourceId === sourceId)).toBe(true);
    expect(audit.events.some((e: { resourceId: string }) => e.resourceId === jobId)).toBe(true);
    const verified = await ok(['audit', 'verify', '--json']);
    expect(JSON.parse(verified.stdout).ok).toBe(true);
    expect((await ok(['audit', 'verify'])).stdout).toContain('audit chain intact');
  });

  it('refuses a second first admin offline with exit 5', async () => {
    const run = await sluice(
      ['admin', 'create', '--username', 'second-admin', '--password-file', secrets.adminPasswordFile],
      { DATABASE_URL: cp.env.DATABASE_URL!, SLUICE_LOG_LEVEL: 'silent' },
    );
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('an admin already exists');
  });

  it('generates keys and rotates them offline in the catalog (the last step: the running control plane keeps the old key)', async () => {
    const generated = (await ok(['keys', 'generate'])).stdout.trim();
    expect(generated).toMatch(/^[0-9a-f]{64}$/);
    const keyFile = path.join(secrets.dir, 'new.key');
    await ok(['keys', 'generate', '--output', keyFile]);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const rotated = await ok(
      [
        'keys',
        'rotate',
        '--offline',
        '--encryption-key-file',
        keyFile,
        '--previous-keys-file',
        secrets.encryptionKeyFile,
        '--json',
      ],
      { DATABASE_URL: cp.env.DATABASE_URL!, SLUICE_LOG_LEVEL: 'silent' },
    );
    expect(JSON.parse(rotated.stdout).reencrypted).toBeGreaterThanOrEqual(2);
  });

  it('never shows a password in any CLI output or in the session file', async () => {
    const session = await readFile(path.join(stateDir, 'session.json'), 'utf8');
    for (const secret of [SOURCE_PASSWORD, SINK_PASSWORD, ADMIN.password]) {
      expect(session).not.toContain(secret);
      for (const output of outputs) expect(output).not.toContain(secret);
    }
    expect(outputs.join('\n')).not.toContain(secrets.encryptionKey);
  });
});
