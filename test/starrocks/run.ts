// `npm run test:starrocks`: the sink's conformance suite against a real StarRocks. With STARROCKS_FE_HOST
// (and STARROCKS_HTTP_PORT, STARROCKS_QUERY_PORT, STARROCKS_USER, STARROCKS_PASSWORD) it uses that cluster;
// otherwise it starts test/starrocks/compose.yml where a Docker engine answers, waits until a backend is
// alive, runs the suite, and stops the container. With neither it fails: a suite that did not run is not
// a pass.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const compose = ['compose', '-f', path.join(root, 'test/starrocks/compose.yml')];
const suite = ['vitest', 'run', 'packages/cdc/sink/starrocks/starrocks-sink.test.ts'];

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const result = spawnSync(command, args, { cwd: root, env, stdio: 'inherit' });
  return result.status ?? 1;
}

function quiet(command: string, args: string[]): { status: number; stdout: string } {
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8' });
  return { status: result.status ?? 1, stdout: result.stdout ?? '' };
}

async function waitForBackend(deadlineMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    const probe = quiet('docker', [
      ...compose,
      'exec',
      '-T',
      'starrocks',
      'mysql',
      '-h127.0.0.1',
      '-P9030',
      '-uroot',
      '-N',
      '-e',
      'show backends',
    ]);
    if (probe.status === 0 && /\ttrue\t/i.test(probe.stdout)) return;
    if (Date.now() - started > deadlineMs)
      throw new Error('StarRocks did not report an alive backend in time');
    process.stdout.write('.');
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

async function main(): Promise<number> {
  if (process.env.STARROCKS_FE_HOST) {
    console.log(`Running the sink suite against StarRocks at ${process.env.STARROCKS_FE_HOST}.`);
    return run('npx', suite);
  }
  if (quiet('docker', ['info']).status !== 0) {
    console.error(
      'No StarRocks to test against: STARROCKS_FE_HOST is unset and no Docker engine answers `docker info`.\n' +
        'Set STARROCKS_FE_HOST (and STARROCKS_HTTP_PORT, STARROCKS_QUERY_PORT, STARROCKS_USER, STARROCKS_PASSWORD)\n' +
        'to a cluster, or run this where Docker works.',
    );
    return 1;
  }
  console.log('Starting StarRocks (test/starrocks/compose.yml); the first start takes a few minutes.');
  if (run('docker', [...compose, 'up', '-d', '--wait', 'starrocks']) !== 0) return 1;
  try {
    await waitForBackend(10 * 60_000);
    console.log('\nStarRocks is up; running the sink suite against it.');
    return run('npx', suite, {
      ...process.env,
      STARROCKS_FE_HOST: '127.0.0.1',
      STARROCKS_HTTP_PORT: '8030',
      STARROCKS_QUERY_PORT: '9030',
      STARROCKS_USER: 'root',
      STARROCKS_PASSWORD: '',
    });
  } finally {
    if (!process.argv.includes('--keep')) run('docker', [...compose, 'down', '-v']);
  }
}

process.exitCode = await main();
