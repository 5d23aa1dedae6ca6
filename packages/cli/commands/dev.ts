// `sluice dev` (what `npm start` runs): everything on this machine with no configuration — an embedded
// catalog control plane with dev certificates, one worker, a demo PostgreSQL with a trickle of writes, a
// StarRocks sink (the emulator unless STARROCKS_FE_HOST names a real one) and a demo job, followed live.
// Keys, secrets, the catalog and certificates live in the state directory (0700, files 0600) and are reused;
// the demo source and the emulator are fresh on every run, so the demo job and datasources are recreated.
// The worker runs as `sluice worker`, so whichever job runner the worker package wires is what runs here.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import { generateEncryptionKey, Secret } from '@sluice/crypto';
import {
  AuthService,
  BootstrapTokenService,
  DatasourceService,
  type Job,
  JobService,
  JobState,
  type JobStatus,
  SslMode,
} from '@sluice/proto';
import { startChildService } from '../child-service.ts';
import { CliError, EXIT } from '../cli-error.ts';
import { type Connection, connect, isoOf, transportFor } from '../client.ts';
import type { CommandContext, CommandSpec } from '../command-table.ts';
import { integerFlag, stringFlag } from '../command-table.ts';
import { renderJobStatus, statusLine } from '../job-status-view.ts';
import { visible } from '../output.ts';
import { saveSession } from '../session.ts';
import { parseTable } from './job.ts';

const ADMIN_USERNAME = 'admin';
const JOB_NAME = 'demo';
const SOURCE_NAME = 'demo-source';
const SINK_NAME = 'demo-sink';
const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

export const devCommand: CommandSpec = {
  name: 'dev',
  summary: 'Run Sluice on this machine: control plane, worker, demo PostgreSQL, sink and a live demo job',
  description:
    'Needs nothing configured. State (keys, secrets, catalog, certificates, logs) goes to --dir and is\n' +
    'reused next time; the demo PostgreSQL and the StarRocks emulator are new on every run. Set\n' +
    'STARROCKS_FE_HOST (with STARROCKS_HTTP_PORT, STARROCKS_QUERY_PORT, STARROCKS_USER, STARROCKS_PASSWORD)\n' +
    'to replicate into a real StarRocks instead of the emulator. Ctrl-C stops everything.',
  flags: {
    dir: { type: 'string', value: 'DIR', default: '.sluice/dev', description: 'state directory' },
    'trickle-transactions': {
      type: 'string',
      value: 'N',
      description: 'stop the demo writes after N transactions (default: write until stopped)',
    },
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      default: '127.0.0.1:8443',
      description: "the control plane's address (port 0 picks a free one)",
    },
  },
  run: runDev,
};

async function runDev(context: CommandContext): Promise<number> {
  const dir = path.resolve(stringFlag(context.flags, 'dir') ?? '.sluice/dev');
  const listen = stringFlag(context.flags, 'listen') ?? '127.0.0.1:8443';
  const transactions = integerFlag(context.flags, 'trickle-transactions', { min: 0, max: 1_000_000_000 });
  const say = (text: string) => context.stdout.write(`${text}\n`);
  const cleanup: Array<() => Promise<unknown>> = [];
  let stopping = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
    finish(code);
  };
  /** Registers how to stop something; once stopping has begun, stops it at once (it came up late). */
  const own = (stop: () => Promise<unknown>) => {
    if (stopping) void stop().catch(() => undefined);
    else cleanup.push(stop);
  };
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // The same Ctrl-C often arrives twice (from the terminal and from npm); a later one means: now.
      if (Date.now() - firstSignalAt > 2_000) process.exit(130);
      return;
    }
    firstSignalAt = Date.now();
    context.stderr.write(`\nsluice dev: ${signal}, stopping (worker, control plane, PostgreSQL, sink)…\n`);
    void stopAll(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed terminal (SIGHUP) must stop everything too, or the services outlive the session.
  process.on('SIGHUP', onSignal);
  // A closed terminal or pipe must not crash the shutdown half-way (children would be left behind).
  for (const stream of [context.stdout, context.stderr]) stream.on?.('error', () => undefined);

  try {
    const state = await prepareState(dir);
    await claimDirectory(dir);
    own(() => rm(path.join(dir, 'dev.pid'), { force: true }));
    say(`sluice dev: state in ${dir}`);

    // The demo source and sink start while the control plane does.
    const sourcePromise = startDemoSource();
    const sinkPromise = startSink();
    sourcePromise.then(
      async (s) => {
        await recordDemoSource(dir, s.port);
        own(async () => {
          await s.stop();
          await rm(path.join(dir, 'demo-source.json'), { force: true });
        });
      },
      () => undefined,
    );
    sinkPromise.then(
      (s) => own(() => s.stop()),
      () => undefined,
    );

    const controlPlane = startChildService({
      name: 'control plane',
      args: [MAIN, 'control-plane'],
      logFile: path.join(state.logs, 'control-plane.log'),
      env: {
        ...baseEnv(),
        CONFIG_ENCRYPTION_KEY_FILE: state.encryptionKeyFile,
        JWT_SECRET_FILE: state.jwtSecretFile,
        SLUICE_ADMIN_USERNAME: ADMIN_USERNAME,
        SLUICE_ADMIN_PASSWORD_FILE: state.adminPasswordFile,
        SLUICE_DATA_DIR: state.controlPlaneDir,
        SLUICE_LISTEN: listen,
        SLUICE_LOG_LEVEL: 'info',
      },
    });
    own(() => controlPlane.stop('SIGTERM'));
    say('sluice dev: starting the control plane (embedded catalog, dev certificates)…');
    const listening = await Promise.race([
      controlPlane.waitForLine(/control plane listening/),
      stopped(finished),
    ]);
    const port = (JSON.parse(listening) as { port: number }).port;
    const url = `https://127.0.0.1:${port}`;
    const caFile = path.join(state.controlPlaneDir, 'tls', 'ca.crt');

    // Log in as the CLI does, into a session of its own so the printed commands work as they are.
    const password = Secret.of((await readFile(state.adminPasswordFile, 'utf8')).trim());
    const login = await password.useOnce((value) =>
      createClient(AuthService, transportFor({ url, caFile })).login({
        username: ADMIN_USERNAME,
        password: value,
      }),
    );
    await saveSession(state.cliDir, {
      version: 1,
      controlPlane: url,
      caFile,
      username: ADMIN_USERNAME,
      accessToken: login.accessToken,
      accessTokenExpiresAt: isoOf(login.accessTokenExpiresAt),
      refreshToken: login.refreshToken,
      refreshTokenExpiresAt: isoOf(login.refreshTokenExpiresAt),
    });
    const connection = await connect({ ...context, flags: { 'state-dir': state.cliDir } });

    const token = await connection.client(BootstrapTokenService).createBootstrapToken({
      ttlSeconds: 600,
      description: 'sluice dev worker',
    });
    const tokenFile = path.join(dir, 'worker.token');
    await writeFile(tokenFile, token.secret, { mode: 0o600 });
    const worker = startChildService({
      name: 'worker',
      args: [MAIN, 'worker'],
      logFile: path.join(state.logs, 'worker.log'),
      env: {
        ...baseEnv(),
        SLUICE_CONTROL_PLANE: url,
        SLUICE_CA_FILE: caFile,
        SLUICE_STATE_DIR: state.workerDir,
        SLUICE_BOOTSTRAP_TOKEN_FILE: tokenFile,
        SLUICE_LOG_LEVEL: 'info',
      },
    });
    // Stopped before the control plane (cleanup runs in reverse).
    own(() => worker.stop('SIGTERM'));
    say('sluice dev: starting a worker and the demo PostgreSQL…');
    await Promise.race([worker.waitForLine(/"to":"running"/), stopped(finished)]);
    await rm(tokenFile, { force: true });

    const [source, sink] = await Promise.all([sourcePromise, sinkPromise]);
    const trickle = await source.startTrickle({
      ...(transactions !== undefined && { transactions }),
      onDone: (n) => say(`sluice dev: demo writes stopped after ${n} transactions`),
    });
    await writeDemoFile(dir, source, sink);
    own(() => trickle.stop());
    const job = await createDemo(connection, source, sink);

    say('');
    say('Sluice dev is running.');
    say(`  control plane  ${url}  (CA ${caFile})`);
    say(`  admin login    ${ADMIN_USERNAME}, password in ${state.adminPasswordFile}`);
    say(
      `  source         PostgreSQL ${source.majorVersion} at 127.0.0.1:${source.port}, database demo (${source.tables.join(', ')})`,
    );
    say(`  sink           ${sink.description}`);
    say(`  logs           ${state.logs}`);
    say(
      `  demo access    ${path.join(dir, 'demo.json')} (connection details and passwords of the demo source and sink)`,
    );
    say('');
    say('  Look further (in another terminal, from this directory):');
    say(`    export SLUICE_STATE_DIR=${state.cliDir}   # this session: URL, CA and a login`);
    say(`    npx sluice job status ${JOB_NAME} --watch`);
    say('    npx sluice datasource list');
    say('    npx sluice worker list');
    say('    npx sluice audit list && npx sluice audit verify');
    say(`    npx sluice login --username ${ADMIN_USERNAME} --password-file ${state.adminPasswordFile}`);
    say('  Ctrl-C stops everything.');
    say('');

    void followJob(
      context,
      connection,
      job,
      () => trickle.changes,
      () => stopping,
    ).catch((error: unknown) => {
      if (!stopping) context.stderr.write(`sluice dev: status stream ended: ${(error as Error).message}\n`);
    });
    void controlPlane.exited.then((code) => {
      if (!stopping) {
        context.stderr.write(`sluice dev: the control plane exited (${code}); see ${state.logs}\n`);
        void stopAll(EXIT.unavailable);
      }
    });
    void worker.exited.then((code) => {
      if (!stopping) {
        context.stderr.write(`sluice dev: the worker exited (${code}); see ${state.logs}\n`);
        void stopAll(EXIT.unavailable);
      }
    });
  } catch (error) {
    if (!stopping) {
      await stopAll(EXIT.failed);
      throw error;
    }
  }
  const code = await finished;
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('SIGHUP', onSignal);
  context.stdout.write('sluice dev: stopped\n');
  return code;
}

/** Resolves never; rejects once `sluice dev` is stopping, so start-up steps give up. */
function stopped(finished: Promise<number>): Promise<never> {
  return finished.then(() => {
    throw new CliError('stopped', 130);
  });
}

/** Children get a clean environment: nothing of the caller's (DATABASE_URL, keys) leaks into them. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'])
    if (process.env[name]) env[name] = process.env[name];
  return env;
}

interface DevState {
  encryptionKeyFile: string;
  jwtSecretFile: string;
  adminPasswordFile: string;
  controlPlaneDir: string;
  workerDir: string;
  cliDir: string;
  logs: string;
}

async function prepareState(dir: string): Promise<DevState> {
  // As root, the embedded catalog runs as `postgres`, which must traverse to its directory: 0711 then
  // (nothing listable); 0700 otherwise.
  const mode = process.getuid?.() === 0 ? 0o711 : 0o700;
  const parent = path.dirname(dir);
  if (!existsSync(parent)) {
    await mkdir(parent, { recursive: true, mode });
    await chmod(parent, mode);
  }
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
  const secrets = path.join(dir, 'secrets');
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  const state: DevState = {
    encryptionKeyFile: path.join(secrets, 'encryption.key'),
    jwtSecretFile: path.join(secrets, 'jwt.secret'),
    adminPasswordFile: path.join(secrets, 'admin.password'),
    controlPlaneDir: path.join(dir, 'control-plane'),
    workerDir: path.join(dir, 'worker'),
    cliDir: path.join(dir, 'cli'),
    logs: path.join(dir, 'logs'),
  };
  await ensureSecretFile(state.encryptionKeyFile, generateEncryptionKey);
  await ensureSecretFile(state.jwtSecretFile, () => randomBytes(32).toString('hex'));
  await ensureSecretFile(state.adminPasswordFile, () => randomBytes(15).toString('base64url'));
  for (const sub of [state.workerDir, state.cliDir, state.logs])
    await mkdir(sub, { recursive: true, mode: 0o700 });
  return state;
}

/** One `sluice dev` per state directory: a second one would fight over the catalog and the port. */
async function claimDirectory(dir: string): Promise<void> {
  const file = path.join(dir, 'dev.pid');
  const previous = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (previous && previous !== process.pid) {
    const cmdline = await readFile(`/proc/${previous}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('\0dev'))
      throw new CliError(
        `another sluice dev (pid ${previous}) is running with ${dir}; stop it first`,
        EXIT.notFound,
      );
  }
  await writeFile(file, `${process.pid}\n`, { mode: 0o600 });
  await stopStaleDemoSource(dir);
}

/**
 * The demo PostgreSQL runs in its own process group; if `sluice dev` was killed outright (SIGKILL), it
 * outlived it. Its postmaster and data directory are recorded, so the next run stops and removes it.
 */
async function recordDemoSource(dir: string, port: number): Promise<void> {
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const dataDir = argv[argv.indexOf('-D') + 1];
    if (argv[0]?.endsWith('/postgres') && argv.includes(String(port)) && dataDir && argv.indexOf('-D') > 0) {
      await writeFile(path.join(dir, 'demo-source.json'), JSON.stringify({ pid: Number(pid), dataDir }), {
        mode: 0o600,
      });
      return;
    }
  }
}

async function stopStaleDemoSource(dir: string): Promise<void> {
  const file = path.join(dir, 'demo-source.json');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const { pid, dataDir } = JSON.parse(text) as { pid: number; dataDir: string };
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (cmdline.includes(dataDir)) {
    try {
      process.kill(pid, 'SIGINT'); // PostgreSQL's fast shutdown
    } catch {
      // gone meanwhile
    }
    for (let i = 0; i < 300 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
  }
  const parent = path.dirname(dataDir);
  if (path.basename(parent).startsWith('sluice-pg-')) await rm(parent, { recursive: true, force: true });
  await rm(file, { force: true });
}

/** Generated once, 0600, reused on every later run. */
async function ensureSecretFile(file: string, generate: () => string): Promise<void> {
  if (!existsSync(file)) await writeFile(file, `${generate()}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
}

interface DemoSource {
  port: number;
  majorVersion: number;
  caPem: string;
  password: Secret<string>;
  tables: readonly string[];
  database: string;
  username: string;
  startTrickle(options: {
    transactions?: number;
    onDone?: (transactions: number) => void;
  }): Promise<{ changes: number; stop(): Promise<void> }>;
  stop(): Promise<void>;
}

/**
 * The embedded demo PostgreSQL (logical replication, TLS from a fresh CA) from the test kit: a workspace
 * package that `sluice dev` uses on purpose, loaded only by this command (never by the services).
 */
async function startDemoSource(): Promise<DemoSource> {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { startPostgres } = await import('@sluice/testkit');
  const demo = await import('../demo-database.ts');
  const server = await startPostgres({ tls: true });
  // The test kit answers SIGINT with an immediate exit; `sluice dev` stops the server itself, in order.
  for (const signal of signals)
    for (const listener of process.listeners(signal))
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
  try {
    const superuser = server.connectionConfig();
    const { password } = await demo.createDemoDatabase(superuser);
    return {
      port: server.port,
      majorVersion: server.majorVersion,
      caPem: server.caPem!,
      password,
      tables: demo.DEMO_TABLES,
      database: demo.DEMO_DATABASE,
      username: demo.DEMO_ROLE,
      startTrickle: (options) => demo.startTrickle(superuser, options),
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

interface Sink {
  host: string;
  httpPort: number;
  mysqlPort: number;
  user: string;
  password: Secret<string>;
  database: string;
  description: string;
  /** The emulator's password is generated per run; a real StarRocks's is the operator's own. */
  generatedPassword: boolean;
  stop(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const env = process.env;
  if (env.STARROCKS_FE_HOST) {
    const httpPort = Number(env.STARROCKS_HTTP_PORT || 8030);
    const mysqlPort = Number(env.STARROCKS_QUERY_PORT || 9030);
    return {
      host: env.STARROCKS_FE_HOST,
      httpPort,
      mysqlPort,
      user: env.STARROCKS_USER || 'root',
      password: Secret.of(env.STARROCKS_PASSWORD ?? ''),
      database: 'sluice_demo',
      generatedPassword: false,
      description: `StarRocks at ${env.STARROCKS_FE_HOST}:${httpPort} (MySQL port ${mysqlPort}), database sluice_demo`,
      stop: async () => undefined,
    };
  }
  const { startStarRocksEmulator } = await import('@sluice/testkit');
  const password = randomBytes(12).toString('base64url');
  const emulator = await startStarRocksEmulator({ user: 'root', password });
  return {
    host: emulator.host,
    httpPort: emulator.fePort,
    mysqlPort: emulator.mysqlPort,
    user: emulator.user,
    password: Secret.of(password),
    database: 'demo',
    generatedPassword: true,
    description: `StarRocks emulator at ${emulator.host}:${emulator.fePort} (MySQL port ${emulator.mysqlPort}), database demo; set STARROCKS_FE_HOST for a real one`,
    stop: () => emulator.stop(),
  };
}

/**
 * `<dir>/demo.json` (0600): how to reach the demo source and sink directly (psql, a MySQL client, tests that
 * compare them). Their passwords are generated per run and guard nothing but the demo.
 */
async function writeDemoFile(dir: string, source: DemoSource, sink: Sink): Promise<void> {
  const file = path.join(dir, 'demo.json');
  const content = {
    source: {
      host: '127.0.0.1',
      port: source.port,
      database: source.database,
      user: source.username,
      password: source.password.reveal(),
      caPem: source.caPem,
    },
    sink: {
      host: sink.host,
      httpPort: sink.httpPort,
      mysqlPort: sink.mysqlPort,
      user: sink.user,
      ...(sink.generatedPassword && { password: sink.password.reveal() }),
      database: sink.database,
    },
  };
  await rm(file, { force: true });
  await writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
}

/** The demo source and emulator are new on every run, so last run's demo job and datasources go first. */
async function createDemo(connection: Connection, source: DemoSource, sink: Sink): Promise<Job> {
  const jobs = connection.client(JobService);
  const datasources = connection.client(DatasourceService);
  const previous = (await jobs.listJobs({})).jobs.find((job) => job.name === JOB_NAME);
  if (previous) {
    if (previous.state === JobState.PENDING || previous.state === JobState.RUNNING)
      await jobs.stopJob({ id: previous.id });
    await jobs.deleteJob({ id: previous.id, dropReplicationSlot: false });
  }
  for (const datasource of (await datasources.listDatasources({})).datasources)
    if (datasource.name === SOURCE_NAME || datasource.name === SINK_NAME)
      await datasources.deleteDatasource({ id: datasource.id });

  const created = await source.password.use((password) =>
    datasources.createDatasource({
      name: SOURCE_NAME,
      spec: {
        case: 'postgres',
        value: {
          host: '127.0.0.1',
          port: source.port,
          database: source.database,
          username: source.username,
          password,
          sslMode: SslMode.VERIFY_FULL,
          sslRootCert: source.caPem,
        },
      },
    }),
  );
  const sinkCreated = await sink.password.use((password) =>
    datasources.createDatasource({
      name: SINK_NAME,
      spec: {
        case: 'starrocks',
        value: {
          feHost: sink.host,
          httpPort: sink.httpPort,
          mysqlPort: sink.mysqlPort,
          username: sink.user,
          database: sink.database,
          ...(password !== '' && { password }),
        },
      },
    }),
  );
  const answer = await jobs.createJob({
    name: JOB_NAME,
    sourceId: created.datasource!.id,
    sinkId: sinkCreated.datasource!.id,
    tables: source.tables.map(parseTable),
    start: true,
  });
  return answer.job!;
}

/** Live progress: a redrawn block on a terminal; otherwise a line on every change of state or phase. */
async function followJob(
  context: CommandContext,
  connection: Connection,
  job: Job,
  sourceChanges: () => number,
  isStopping: () => boolean,
): Promise<void> {
  const tty = context.stdout.isTTY === true;
  let drawn = 0;
  let lastKey = '';
  let lastPrinted = 0;
  const controller = new AbortController();
  const stream = connection.client(JobService).watchJobStatus({ id: job.id }, { signal: controller.signal });
  const poll = setInterval(() => isStopping() && controller.abort(), 200);
  try {
    for await (const update of stream) {
      if (isStopping()) break;
      const status = update.status as JobStatus;
      if (tty) {
        const lines = [
          ...renderJobStatus(job, status, { bars: true }),
          `  source writes so far: ${sourceChanges()}`,
        ];
        if (drawn) context.stdout.write(`\x1b[${drawn}A\x1b[J`);
        context.stdout.write(`${visible(lines.join('\n'), { multiline: true })}\n`);
        drawn = lines.length;
      } else {
        const key = `${status.state}/${status.phase}/${status.lastError?.message ?? ''}`;
        if (key !== lastKey || Date.now() - lastPrinted > 10_000) {
          context.stdout.write(
            `${visible(`${statusLine(job, status)}, source writes ${sourceChanges()}`)}\n`,
          );
          lastKey = key;
          lastPrinted = Date.now();
        }
      }
    }
  } finally {
    clearInterval(poll);
  }
}
