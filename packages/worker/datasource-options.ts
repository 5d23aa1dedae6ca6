// Turns a datasource from the control plane (non-secret settings) plus its opened secrets into the options
// the PostgreSQL source and the StarRocks sink take. Used for jobs and for connection tests alike.
import type { ConnectionOptions, SslMode, StarRocksDatasource } from '@sluice/cdc';
import { type Datasource, SslMode as WireSslMode } from '@sluice/proto';

const sslModes: Record<number, SslMode> = {
  [WireSslMode.UNSPECIFIED]: 'verify-full',
  [WireSslMode.DISABLE]: 'disable',
  [WireSslMode.ALLOW]: 'allow',
  [WireSslMode.PREFER]: 'prefer',
  [WireSslMode.REQUIRE]: 'require',
  [WireSslMode.VERIFY_CA]: 'verify-ca',
  [WireSslMode.VERIFY_FULL]: 'verify-full',
};

export function sourceConnection(
  datasource: Datasource,
  secrets: { password: string; sslRootCert: string; sslClientCert: string; sslClientKey: string },
): ConnectionOptions {
  if (datasource.config.case !== 'postgres') throw new Error('the job source is not a PostgreSQL datasource');
  const pg = datasource.config.value;
  const password = secrets.password;
  return {
    host: pg.host,
    port: pg.port || 5432,
    database: pg.database,
    user: pg.username,
    sslMode: sslModes[pg.sslMode] ?? 'verify-full',
    ...(password && { password: () => password }),
    ...(secrets.sslRootCert && { sslRootCert: secrets.sslRootCert }),
    ...(secrets.sslClientCert && { sslClientCert: secrets.sslClientCert }),
    ...(secrets.sslClientKey && { sslClientKey: secrets.sslClientKey }),
    applicationName: 'sluice',
  };
}

export function sinkDatasource(
  datasource: Datasource,
  secrets: { password: string; caCert: string },
): StarRocksDatasource {
  if (datasource.config.case !== 'starrocks') throw new Error('the job sink is not a StarRocks datasource');
  const sr = datasource.config.value;
  return {
    name: datasource.name,
    host: sr.feHost,
    ...(sr.httpPort && { httpPort: sr.httpPort }),
    ...(sr.mysqlPort && { queryPort: sr.mysqlPort }),
    user: sr.username,
    password: secrets.password,
    database: sr.database,
    ssl: sr.sslEnabled ? (secrets.caCert ? { ca: secrets.caCert } : true) : false,
    allowPlaintextBeRedirect: sr.allowPlaintextBeRedirect,
    rewriteLoopbackRedirect: sr.rewriteLoopbackRedirect,
  };
}
