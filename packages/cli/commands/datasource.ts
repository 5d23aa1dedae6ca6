// `sluice datasource …`: PostgreSQL sources and StarRocks sinks. Passwords and PEM material come from
// files (or a prompt), go to the control plane once, and are stored there encrypted; nothing shows them.
import { readFile } from 'node:fs/promises';
import type { Secret } from '@sluice/crypto';
import {
  type Datasource,
  DatasourceKind,
  DatasourceSchema,
  DatasourceService,
  SslMode,
  TestDatasourceResponseSchema,
} from '@sluice/proto';
import { usageError } from '../cli-error.ts';
import { connect } from '../client.ts';
import {
  type CommandContext,
  type CommandSpec,
  type FlagSpec,
  integerFlag,
  listFlag,
  stringFlag,
} from '../command-table.ts';
import { parseDuration } from '../durations.ts';
import { findDatasource } from '../lookup.ts';
import { enumWord, messageJson, printJson, println, table, when } from '../output.ts';
import { readPassword } from '../password-input.ts';
import { parseTable } from './job.ts';

const SSL_MODES: Record<string, SslMode> = {
  disable: SslMode.DISABLE,
  allow: SslMode.ALLOW,
  prefer: SslMode.PREFER,
  require: SslMode.REQUIRE,
  'verify-ca': SslMode.VERIFY_CA,
  'verify-full': SslMode.VERIFY_FULL,
};

const NAME_FLAG: FlagSpec = {
  type: 'string',
  value: 'NAME',
  required: true,
  description: "unique name: letters, digits, '_', '-', '.'",
};

async function pemFile(flag: string, file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined;
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw usageError(`cannot read --${flag} ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

async function optionalPassword(
  context: CommandContext,
  prompt: string,
): Promise<Secret<string> | undefined> {
  if (context.flags['no-password']) return undefined;
  return readPassword(stringFlag(context.flags, 'password-file'), prompt);
}

function printDatasource(context: CommandContext, datasource: Datasource): void {
  if (context.json) {
    printJson(context, messageJson(DatasourceSchema, datasource));
    return;
  }
  const rows: string[][] = [
    ['name', datasource.name],
    ['id', datasource.id],
    ['kind', enumWord(DatasourceKind, datasource.kind)],
  ];
  const config = datasource.config;
  if (config.case === 'postgres') {
    const pg = config.value;
    rows.push(
      ['host', `${pg.host}:${pg.port}`],
      ['database', pg.database],
      ['username', pg.username],
      ['ssl mode', enumWord(SslMode, pg.sslMode)],
      ['password', pg.hasPassword ? 'stored (encrypted)' : 'none'],
      ['root certificate', pg.hasSslRootCert ? 'stored' : 'none'],
      ['client certificate', pg.hasSslClientCert ? 'stored' : 'none'],
    );
  } else if (config.case === 'starrocks') {
    const sr = config.value;
    rows.push(
      ['fe host', sr.feHost],
      ['ports', `http ${sr.httpPort}, mysql ${sr.mysqlPort}`],
      ['database', sr.database],
      ['username', sr.username],
      ['tls', sr.sslEnabled ? 'on' : 'off'],
      ['password', sr.hasPassword ? 'stored (encrypted)' : 'none'],
      ['ca certificate', sr.hasCaCert ? 'stored' : 'none'],
    );
  }
  rows.push(['created', when(datasource.createdAt)], ['updated', when(datasource.updatedAt)]);
  println(context, table(rows));
}

function where(datasource: Datasource): string {
  const config = datasource.config;
  if (config.case === 'postgres') return `${config.value.host}:${config.value.port}/${config.value.database}`;
  if (config.case === 'starrocks')
    return `${config.value.feHost}:${config.value.httpPort}/${config.value.database}`;
  return '-';
}

const addPostgres: CommandSpec = {
  name: 'postgres',
  summary: 'Add a PostgreSQL source (operator)',
  description:
    'The role needs REPLICATION and SELECT on the replicated tables, and must own them to create the\n' +
    'publication (or an owner creates it). The password is read from --password-file or a prompt.',
  flags: {
    name: NAME_FLAG,
    host: { type: 'string', value: 'HOST', required: true, description: 'host name or IP address' },
    port: { type: 'string', value: 'PORT', default: '5432', description: 'TCP port' },
    database: { type: 'string', value: 'NAME', required: true, description: 'database name' },
    username: { type: 'string', value: 'ROLE', required: true, description: 'role to connect as' },
    'password-file': {
      type: 'string',
      value: 'FILE',
      description: 'read the password from FILE (- for stdin)',
    },
    'no-password': { type: 'boolean', description: 'store no password (certificate authentication)' },
    'ssl-mode': {
      type: 'string',
      value: 'MODE',
      default: 'verify-full',
      description: 'disable, allow, prefer, require, verify-ca or verify-full',
    },
    'ssl-root-cert': {
      type: 'string',
      value: 'FILE',
      description: 'PEM root certificate (verify-ca, verify-full)',
    },
    'ssl-client-cert': { type: 'string', value: 'FILE', description: 'PEM client certificate' },
    'ssl-client-key': { type: 'string', value: 'FILE', description: 'PEM client key' },
  },
  examples: [
    'sluice datasource add postgres --name app --host db.internal --database app --username sluice_repl \\\n' +
      '    --password-file pg.pw --ssl-mode verify-full --ssl-root-cert ca.crt',
  ],
  async run(context) {
    const modeName = stringFlag(context.flags, 'ssl-mode') ?? 'verify-full';
    const sslMode = SSL_MODES[modeName];
    if (sslMode === undefined)
      throw usageError(`--ssl-mode must be one of ${Object.keys(SSL_MODES).join(', ')}`);
    const port = integerFlag(context.flags, 'port', { min: 1, max: 65535 }) ?? 5432;
    const [sslRootCert, sslClientCert, sslClientKey] = await Promise.all([
      pemFile('ssl-root-cert', stringFlag(context.flags, 'ssl-root-cert')),
      pemFile('ssl-client-cert', stringFlag(context.flags, 'ssl-client-cert')),
      pemFile('ssl-client-key', stringFlag(context.flags, 'ssl-client-key')),
    ]);
    const username = stringFlag(context.flags, 'username')!;
    const password = await optionalPassword(context, `Password for PostgreSQL role ${username}: `);
    const connection = await connect(context);
    const create = (passwordValue: string | undefined) =>
      connection.client(DatasourceService).createDatasource({
        name: stringFlag(context.flags, 'name')!,
        spec: {
          case: 'postgres',
          value: {
            host: stringFlag(context.flags, 'host')!,
            port,
            database: stringFlag(context.flags, 'database')!,
            username,
            sslMode,
            ...(passwordValue !== undefined && { password: passwordValue }),
            ...(sslRootCert && { sslRootCert }),
            ...(sslClientCert && { sslClientCert }),
            ...(sslClientKey && { sslClientKey }),
          },
        },
      });
    const answer = await (password ? password.useOnce(create) : create(undefined));
    if (context.json) printJson(context, messageJson(DatasourceSchema, answer.datasource!));
    else println(context, `datasource ${answer.datasource?.name} created (${answer.datasource?.id})`);
    return 0;
  },
};

const addStarRocks: CommandSpec = {
  name: 'starrocks',
  summary: 'Add a StarRocks sink (operator)',
  description: 'The user needs to create tables in --database (created if missing) and to run Stream Load.',
  flags: {
    name: NAME_FLAG,
    'fe-host': { type: 'string', value: 'HOST', required: true, description: 'FE host name or IP address' },
    'http-port': {
      type: 'string',
      value: 'PORT',
      default: '8030',
      description: 'FE HTTP port (Stream Load)',
    },
    'mysql-port': { type: 'string', value: 'PORT', default: '9030', description: 'FE MySQL-protocol port' },
    username: { type: 'string', value: 'USER', required: true, description: 'user for DDL and Stream Load' },
    'password-file': {
      type: 'string',
      value: 'FILE',
      description: 'read the password from FILE (- for stdin)',
    },
    'no-password': { type: 'boolean', description: 'the user has no password' },
    database: { type: 'string', value: 'NAME', required: true, description: 'target database' },
    ssl: { type: 'boolean', description: 'TLS on the MySQL port and HTTPS to the FE' },
    'ssl-ca-cert': { type: 'string', value: 'FILE', description: 'PEM CA certificate of the StarRocks FE' },
    'allow-plaintext-be-redirect': {
      type: 'boolean',
      description: "accept that row data crosses to the BE's plain HTTP port after the FE redirect",
    },
    'rewrite-loopback-redirect': {
      type: 'boolean',
      description: 'rewrite a loopback redirect to the FE host (single-container StarRocks)',
    },
  },
  examples: [
    'sluice datasource add starrocks --name warehouse --fe-host sr.internal --username sluice \\\n' +
      '    --password-file sr.pw --database analytics',
  ],
  async run(context) {
    const httpPort = integerFlag(context.flags, 'http-port', { min: 1, max: 65535 }) ?? 8030;
    const mysqlPort = integerFlag(context.flags, 'mysql-port', { min: 1, max: 65535 }) ?? 9030;
    const caCert = await pemFile('ssl-ca-cert', stringFlag(context.flags, 'ssl-ca-cert'));
    const username = stringFlag(context.flags, 'username')!;
    const password = await optionalPassword(context, `Password for StarRocks user ${username}: `);
    const connection = await connect(context);
    const create = (passwordValue: string | undefined) =>
      connection.client(DatasourceService).createDatasource({
        name: stringFlag(context.flags, 'name')!,
        spec: {
          case: 'starrocks',
          value: {
            feHost: stringFlag(context.flags, 'fe-host')!,
            httpPort,
            mysqlPort,
            username,
            database: stringFlag(context.flags, 'database')!,
            sslEnabled: context.flags.ssl === true,
            allowPlaintextBeRedirect: context.flags['allow-plaintext-be-redirect'] === true,
            rewriteLoopbackRedirect: context.flags['rewrite-loopback-redirect'] === true,
            ...(passwordValue !== undefined && { password: passwordValue }),
            ...(caCert && { caCert }),
          },
        },
      });
    const answer = await (password ? password.useOnce(create) : create(undefined));
    if (context.json) printJson(context, messageJson(DatasourceSchema, answer.datasource!));
    else println(context, `datasource ${answer.datasource?.name} created (${answer.datasource?.id})`);
    return 0;
  },
};

const REF = [{ name: 'datasource', description: 'name or id' }];

export const datasourceCommand: CommandSpec = {
  name: 'datasource',
  summary: 'PostgreSQL sources and StarRocks sinks',
  subcommands: [
    {
      name: 'add',
      summary: 'Add a datasource: postgres or starrocks',
      subcommands: [addPostgres, addStarRocks],
    },
    {
      name: 'list',
      summary: 'List datasources (never their secrets)',
      flags: { kind: { type: 'string', value: 'KIND', description: 'only postgres or starrocks' } },
      async run(context) {
        const kindName = stringFlag(context.flags, 'kind');
        const kinds: Record<string, DatasourceKind> = {
          postgres: DatasourceKind.POSTGRES,
          starrocks: DatasourceKind.STARROCKS,
        };
        const kind = kindName === undefined ? DatasourceKind.UNSPECIFIED : kinds[kindName];
        if (kind === undefined) throw usageError('--kind must be postgres or starrocks');
        const connection = await connect(context);
        const { datasources } = await connection.client(DatasourceService).listDatasources({ kind });
        if (context.json) {
          printJson(context, { datasources: datasources.map((d) => messageJson(DatasourceSchema, d)) });
          return 0;
        }
        if (datasources.length === 0) {
          println(context, 'no datasources');
          return 0;
        }
        println(
          context,
          table([
            ['NAME', 'KIND', 'WHERE', 'ID'],
            ...datasources.map((d) => [d.name, enumWord(DatasourceKind, d.kind), where(d), d.id]),
          ]),
        );
        return 0;
      },
    },
    {
      name: 'show',
      summary: 'Show one datasource; secrets appear only as "stored"',
      args: REF,
      async run(context) {
        const connection = await connect(context);
        printDatasource(context, await findDatasource(connection, context.args[0]!));
        return 0;
      },
    },
    {
      name: 'test',
      summary: 'Test a datasource from a worker (exit 1 when the connection fails)',
      args: REF,
      flags: {
        wait: {
          type: 'string',
          value: 'DURATION',
          default: '15s',
          description: 'how long to wait for a worker',
        },
        table: {
          type: 'string',
          value: 'SCHEMA.TABLE',
          multiple: true,
          description:
            'PostgreSQL: also check the table as a job would replicate it (exists, readable, has a primary key or usable replica identity)',
        },
      },
      async run(context) {
        const waitMs = parseDuration('--wait', stringFlag(context.flags, 'wait') ?? '15s', 1_000, 60_000);
        const tables = listFlag(context.flags, 'table').map(parseTable);
        const connection = await connect(context);
        const datasource = await findDatasource(connection, context.args[0]!);
        const result = await connection
          .client(DatasourceService)
          .testDatasource({ id: datasource.id, waitMs, tables });
        if (context.json) printJson(context, messageJson(TestDatasourceResponseSchema, result));
        else if (result.ok)
          println(
            context,
            `ok: ${datasource.name} answered in ${result.latencyMs} ms (${result.serverVersion}) from worker ${result.workerId}`,
          );
        else println(context, `failed: ${datasource.name}: ${result.message}`);
        return result.ok ? 0 : 1;
      },
    },
    {
      name: 'rm',
      summary: 'Delete a datasource that no job uses (operator)',
      args: REF,
      async run(context) {
        const connection = await connect(context);
        const datasource = await findDatasource(connection, context.args[0]!);
        await connection.client(DatasourceService).deleteDatasource({ id: datasource.id });
        if (context.json) printJson(context, { deleted: datasource.id });
        else println(context, `datasource ${datasource.name} deleted`);
        return 0;
      },
    },
  ],
};
