// Runs a connection test handed out by the control plane (which never connects to customer databases
// itself): opens the datasource's sealed secrets, connects for real, and answers with a classified, scrubbed
// message — never a raw driver error, which may echo a connection string. A PostgreSQL test that names tables
// also checks them as a job would replicate them (exists, readable, has a usable key); such a refusal still
// carries the server version, which tells it apart from a connection that failed.
import { checkReplicableTables, classifyError, createConnector, createStarRocksSink } from '@sluice/cdc';
import type { ConnectionTest, DatasourceSecrets } from '@sluice/proto';
import { sinkDatasource, sourceConnection } from './datasource-options.ts';

export interface ConnectionTestResult {
  ok: boolean;
  message: string;
  serverVersion: string;
  latencyMs: number;
}

export type ConnectionTester = (
  test: ConnectionTest,
  secrets: DatasourceSecrets,
) => Promise<ConnectionTestResult>;

export const testConnection: ConnectionTester = async (test, secrets) => {
  const datasource = test.datasource;
  const started = performance.now();
  let serverVersion = '';
  try {
    if (!datasource) throw new Error('the connection test names no datasource');
    if (datasource.config.case === 'postgres') {
      const client = await createConnector(sourceConnection(datasource, secrets)).connect();
      try {
        serverVersion = (await client.query<{ server_version: string }>('show server_version')).rows[0]!
          .server_version;
        if (test.tables.length > 0)
          await checkReplicableTables(
            client,
            test.tables.map((table) => ({ schema: table.schema, name: table.name })),
          );
      } finally {
        await client.end().catch(() => undefined);
      }
    } else if (datasource.config.case === 'starrocks') {
      const sink = createStarRocksSink({ datasource: sinkDatasource(datasource, secrets) });
      try {
        serverVersion = await sink.version();
      } finally {
        await sink.close().catch(() => undefined);
      }
    } else {
      throw new Error('the datasource has no PostgreSQL or StarRocks settings');
    }
    const latencyMs = Math.round(performance.now() - started);
    const checked =
      test.tables.length > 0 ? ` (${plural(test.tables.length, 'table')} can be replicated)` : '';
    return { ok: true, message: `connected to ${datasource.name}${checked}`, serverVersion, latencyMs };
  } catch (error) {
    const classified = classifyError(error);
    // A SourceError's message already ends with its solution.
    const solution =
      classified.solution && !classified.message.endsWith(classified.solution)
        ? ` — ${classified.solution}`
        : '';
    return {
      ok: false,
      message: `${datasource?.name ?? 'datasource'}: ${classified.message}${solution}`.slice(0, 1_000),
      serverVersion,
      latencyMs: Math.round(performance.now() - started),
    };
  }
};

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
