// Runs a connection test handed out by the control plane (which never connects to customer databases
// itself): opens the datasource's sealed secrets, connects for real, and answers with a classified, scrubbed
// message — never a raw driver error, which may echo a connection string.
import { classifyError, createConnector, createStarRocksSink } from '@sluice/cdc';
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
  try {
    if (!datasource) throw new Error('the connection test names no datasource');
    let serverVersion: string;
    if (datasource.config.case === 'postgres') {
      const client = await createConnector(sourceConnection(datasource, secrets)).connect();
      try {
        serverVersion = (await client.query<{ server_version: string }>('show server_version')).rows[0]!
          .server_version;
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
    return { ok: true, message: `connected to ${datasource.name}`, serverVersion, latencyMs };
  } catch (error) {
    const classified = classifyError(error);
    const solution = classified.solution ? ` — ${classified.solution}` : '';
    return {
      ok: false,
      message: `${datasource?.name ?? 'datasource'}: ${classified.message}${solution}`.slice(0, 1_000),
      serverVersion: '',
      latencyMs: Math.round(performance.now() - started),
    };
  }
};
