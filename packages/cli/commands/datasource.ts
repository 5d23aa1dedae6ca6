// `sluice datasource …`: PostgreSQL sources and StarRocks sinks. Passwords and PEM material come from
// files (or a prompt), go to the control plane once, and are stored there encrypted; nothing shows them.
import { readFile } from 'node:fs/promises';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Secret } from '@sluice/crypto';
import {
  type Datasource,
  DatasourceKind,
  DatasourceSchema,
  DatasourceService,
  type PostgresDatasourceSpecSchema,
  SslMode,
  type StarRocksDatasourceSpecSchema,
  TestDatasourceResponseSchema,
} from '@sluice/proto';
import { CliError, EXIT, usageError } from '../cli-error.ts';
import { connect } from '../client.ts';
import {
  type CommandContext,
  type CommandSpec,
  type FlagSpec,
  type FlagValues,
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

// `datasource update`: the flags of `datasource add` for the fields they name. The API takes the full
// non-secret configuration, so the stored one is merged with the flags given; secrets are sent only when a
// flag gives them (absent keeps the stored one).

const POSTGRES_ONLY = ['host', 'port', 'ssl-mode', 'ssl-root-cert', 'ssl-client-cert', 'ssl-client-key'];
const STARROCKS_ONLY = [
  'fe-host',
  'http-port',
  'mysql-port',
  'ssl',
  'no-ssl',
  'ssl-ca-cert',
  'allow-plaintext-be-redirect',
  'no-allow-plaintext-be-redirect',
  'rewrite-loopback-redirect',
  'no-rewrite-loopback-redirect',
];

/** The API's target field names (`postgres.host`) in flag spelling, for the server's refusals. */
const TARGET_FIELD_FLAGS: Record<string, string> = {
  'postgres.host': '--host',
  'postgres.port': '--port',
  'postgres.database': '--database',
  'postgres.username': '--username',
  'postgres.ssl_mode': '--ssl-mode',
  'postgres.ssl_root_cert': '--ssl-root-cert',
  'starrocks.fe_host': '--fe-host',
  'starrocks.http_port': '--http-port',
  'starrocks.mysql_port': '--mysql-port',
  'starrocks.username': '--username',
  'starrocks.ssl_enabled': '--ssl/--no-ssl',
  'starrocks.allow_plaintext_be_redirect': '--allow-plaintext-be-redirect',
  'starrocks.rewrite_loopback_redirect': '--rewrite-loopback-redirect',
  'starrocks.ca_cert': '--ssl-ca-cert',
};

/** PEM material read from the files the flags name. */
export interface UpdatePems {
  sslRootCert?: string | undefined;
  sslClientCert?: string | undefined;
  sslClientKey?: string | undefined;
  caCert?: string | undefined;
}

/** One visible change, by flag name. */
export interface FieldChange {
  field: string;
  from: string;
  to: string;
}

export interface UpdatePlan {
  /** The new name, when `--rename` changes it. */
  name?: string;
  /** The merged configuration, when any configuration flag was given (secrets: only those given). */
  spec?:
    | { case: 'postgres'; value: MessageInitShape<typeof PostgresDatasourceSpecSchema> }
    | { case: 'starrocks'; value: MessageInitShape<typeof StarRocksDatasourceSpecSchema> };
  /** Non-secret fields whose value changes. */
  changes: FieldChange[];
  /** Flags that move the connection target (a stored password must then be given again). */
  targetFlags: string[];
  /** Secret flags given (their content can't be compared with what is stored). */
  secretFlags: string[];
}

function flagOn(flags: FlagValues, on: string, off: string): boolean | undefined {
  if (flags[on] === true && flags[off] === true)
    throw usageError(`--${on} and --${off} contradict each other`);
  if (flags[on] === true) return true;
  if (flags[off] === true) return false;
  return undefined;
}

function kindWord(datasource: Datasource): string {
  return datasource.config.case === 'postgres' ? 'a PostgreSQL source' : 'a StarRocks sink';
}

/** Flag checks that need no server: contradictions and value syntax. Throws a usage error (exit 2). */
export function checkUpdateFlags(flags: FlagValues): void {
  if (flags['no-password'] === true && (flags['password-file'] !== undefined || flags['prompt-password']))
    throw usageError('--no-password contradicts --password-file and --prompt-password');
  if (flags['password-file'] !== undefined && flags['prompt-password'] === true)
    throw usageError('give --password-file or --prompt-password, not both');
  const mode = stringFlag(flags, 'ssl-mode');
  if (mode !== undefined && SSL_MODES[mode] === undefined)
    throw usageError(`--ssl-mode must be one of ${Object.keys(SSL_MODES).join(', ')}`);
  for (const port of ['port', 'http-port', 'mysql-port']) integerFlag(flags, port, { min: 1, max: 65535 });
  flagOn(flags, 'ssl', 'no-ssl');
  flagOn(flags, 'allow-plaintext-be-redirect', 'no-allow-plaintext-be-redirect');
  flagOn(flags, 'rewrite-loopback-redirect', 'no-rewrite-loopback-redirect');
  const rename = stringFlag(flags, 'rename');
  if (rename === '') throw usageError('--rename needs a name');
}

/** Merges the flags given into the stored datasource; pure, so parsing and messages are testable. */
export function planDatasourceUpdate(current: Datasource, flags: FlagValues, pems: UpdatePems): UpdatePlan {
  checkUpdateFlags(flags);
  const config = current.config;
  if (config.case !== 'postgres' && config.case !== 'starrocks')
    throw usageError(`datasource ${current.name} has no configuration this CLI knows`);
  const foreign = config.case === 'postgres' ? STARROCKS_ONLY : POSTGRES_ONLY;
  const wrong = foreign.filter((flag) => flags[flag] !== undefined);
  if (wrong.length > 0)
    throw usageError(
      `${wrong.map((f) => `--${f}`).join(', ')} ${wrong.length === 1 ? 'is' : 'are'} not for ${kindWord(current)}; ` +
        `${current.name} is ${kindWord(current)} (see sluice datasource update --help)`,
    );
  const changes: FieldChange[] = [];
  const targetFlags: string[] = [];
  const secretFlags: string[] = [];
  const rename = stringFlag(flags, 'rename');
  const plan: UpdatePlan = { changes, targetFlags, secretFlags };
  if (rename !== undefined && rename !== current.name) {
    plan.name = rename;
    changes.push({ field: 'name', from: current.name, to: rename });
  }
  const take = <T>(
    flag: string,
    before: T,
    given: T | undefined,
    target: boolean,
    show: (value: T) => string = String,
  ): T => {
    if (given === undefined || given === before) return before;
    changes.push({ field: flag, from: show(before), to: show(given) });
    if (target) targetFlags.push(`--${flag}`);
    return given;
  };
  // Clearing is sent from here; a new password is added by the caller, inside Secret.useOnce.
  const password = flags['no-password'] === true ? '' : undefined;
  const newPassword = flags['password-file'] !== undefined || flags['prompt-password'] === true;
  if (password === '') secretFlags.push('--no-password');
  if (newPassword) secretFlags.push('--password-file');
  let configGiven = password !== undefined || newPassword;
  const touched = (names: string[]) => {
    if (names.some((name) => flags[name] !== undefined)) configGiven = true;
  };
  if (config.case === 'postgres') {
    const pg = config.value;
    touched([
      'host',
      'port',
      'database',
      'username',
      'ssl-mode',
      'ssl-root-cert',
      'ssl-client-cert',
      'ssl-client-key',
    ]);
    const modeName = stringFlag(flags, 'ssl-mode');
    const value: MessageInitShape<typeof PostgresDatasourceSpecSchema> = {
      host: take('host', pg.host, stringFlag(flags, 'host'), true),
      port: take('port', pg.port, integerFlag(flags, 'port', { min: 1, max: 65535 }), true),
      database: take('database', pg.database, stringFlag(flags, 'database'), true),
      username: take('username', pg.username, stringFlag(flags, 'username'), true),
      sslMode: take(
        'ssl-mode',
        pg.sslMode,
        modeName === undefined ? undefined : SSL_MODES[modeName],
        true,
        (m) => enumWord(SslMode, m as SslMode),
      ),
      ...(password !== undefined && { password }),
      ...(pems.sslRootCert !== undefined && { sslRootCert: pems.sslRootCert }),
      ...(pems.sslClientCert !== undefined && { sslClientCert: pems.sslClientCert }),
      ...(pems.sslClientKey !== undefined && { sslClientKey: pems.sslClientKey }),
    };
    if (pems.sslRootCert !== undefined) secretFlags.push('--ssl-root-cert');
    if (pems.sslClientCert !== undefined) secretFlags.push('--ssl-client-cert');
    if (pems.sslClientKey !== undefined) secretFlags.push('--ssl-client-key');
    if (configGiven) plan.spec = { case: 'postgres', value };
  } else {
    const sr = config.value;
    touched([...STARROCKS_ONLY, 'database', 'username']);
    const value: MessageInitShape<typeof StarRocksDatasourceSpecSchema> = {
      feHost: take('fe-host', sr.feHost, stringFlag(flags, 'fe-host'), true),
      httpPort: take('http-port', sr.httpPort, integerFlag(flags, 'http-port', { min: 1, max: 65535 }), true),
      mysqlPort: take(
        'mysql-port',
        sr.mysqlPort,
        integerFlag(flags, 'mysql-port', { min: 1, max: 65535 }),
        true,
      ),
      username: take('username', sr.username, stringFlag(flags, 'username'), true),
      database: take('database', sr.database, stringFlag(flags, 'database'), false),
      sslEnabled: take('ssl', sr.sslEnabled, flagOn(flags, 'ssl', 'no-ssl'), true, (on) =>
        on ? 'on' : 'off',
      ),
      allowPlaintextBeRedirect: take(
        'allow-plaintext-be-redirect',
        sr.allowPlaintextBeRedirect,
        flagOn(flags, 'allow-plaintext-be-redirect', 'no-allow-plaintext-be-redirect'),
        true,
      ),
      rewriteLoopbackRedirect: take(
        'rewrite-loopback-redirect',
        sr.rewriteLoopbackRedirect,
        flagOn(flags, 'rewrite-loopback-redirect', 'no-rewrite-loopback-redirect'),
        true,
      ),
      ...(password !== undefined && { password }),
      ...(pems.caCert !== undefined && { caCert: pems.caCert }),
    };
    if (pems.caCert !== undefined) secretFlags.push('--ssl-ca-cert');
    if (configGiven) plan.spec = { case: 'starrocks', value };
  }
  return plan;
}

/** What to tell a user whose update moves a stored password to a new target without giving it again. */
export function passwordAgainMessage(name: string, flags: string[]): string {
  const what = flags.length > 0 ? flags.join(', ') : 'the connection target';
  return (
    `changing ${what} of datasource ${name} needs its password again: add --password-file FILE ` +
    '(or --prompt-password; --no-password clears it). A stored password is only sent to the target it was ' +
    'entered for'
  );
}

/** Refuses, before any change is sent, an update that moves a stored password (exit 5, as the server would). */
export function requirePasswordForTarget(current: Datasource, plan: UpdatePlan, flags: FlagValues): void {
  const config = current.config;
  const stored = config.case === 'postgres' || config.case === 'starrocks' ? config.value.hasPassword : false;
  if (!stored || plan.targetFlags.length === 0) return;
  if (
    flags['password-file'] !== undefined ||
    flags['prompt-password'] === true ||
    flags['no-password'] === true
  )
    return;
  throw new CliError(passwordAgainMessage(current.name, plan.targetFlags), EXIT.notFound);
}

/** The server's refusals, in flag spelling: a moved target without its password, a weakened sslmode. */
export function explainUpdateRefusal(name: string, error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  const text = error.rawMessage;
  if (error.code === Code.FailedPrecondition && /requires its password again/.test(text)) {
    const fields = [...text.matchAll(/\b(postgres|starrocks)\.[a-z_]+/g)]
      .map((m) => TARGET_FIELD_FLAGS[m[0]])
      .filter((flag): flag is string => flag !== undefined);
    return new CliError(passwordAgainMessage(name, [...new Set(fields)]), EXIT.notFound);
  }
  if (error.code === Code.PermissionDenied && /ssl_mode/.test(text)) {
    const mode = /ssl_mode (\S+)/.exec(text)?.[1] ?? 'below verify-full';
    return new CliError(
      `--ssl-mode ${mode} is below verify-full: only an admin may choose it (the server would not be ` +
        'verified before it is sent the password). Use --ssl-mode verify-full with --ssl-root-cert FILE, or ask an admin',
      EXIT.auth,
    );
  }
  return error;
}

/** The secrets an update replaces or clears (their content is never shown). */
function secretChanges(plan: UpdatePlan): FieldChange[] {
  return plan.secretFlags.map((flag) =>
    flag === '--no-password'
      ? { field: 'password', from: 'stored', to: 'none' }
      : { field: flag.slice(2).replace(/-file$/, ''), from: 'stored', to: 'replaced' },
  );
}

const updateDatasource: CommandSpec = {
  name: 'update',
  summary: 'Change a datasource: the flags of `datasource add` for the fields to change (operator)',
  description:
    'Only the fields given change; the rest, and every stored secret not given, are kept.\n' +
    'A stored password is bound to its connection target: changing the host, port, database, user, TLS\n' +
    'settings or CA certificate needs the password again in the same command (--password-file or\n' +
    '--prompt-password), or --no-password to clear it; without it nothing is changed (exit 5).\n' +
    'An --ssl-mode below verify-full is for admins only (exit 3 otherwise).',
  args: REF,
  flags: {
    rename: { type: 'string', value: 'NAME', description: "new name: letters, digits, '_', '-', '.'" },
    host: { type: 'string', value: 'HOST', description: 'PostgreSQL: host name or IP address' },
    port: { type: 'string', value: 'PORT', description: 'PostgreSQL: TCP port' },
    'fe-host': { type: 'string', value: 'HOST', description: 'StarRocks: FE host name or IP address' },
    'http-port': { type: 'string', value: 'PORT', description: 'StarRocks: FE HTTP port (Stream Load)' },
    'mysql-port': { type: 'string', value: 'PORT', description: 'StarRocks: FE MySQL-protocol port' },
    database: { type: 'string', value: 'NAME', description: 'database name (StarRocks: target database)' },
    username: { type: 'string', value: 'USER', description: 'role or user to connect as' },
    'password-file': {
      type: 'string',
      value: 'FILE',
      description: 'read a new password from FILE (- for stdin)',
    },
    'prompt-password': { type: 'boolean', description: 'prompt for a new password (no echo)' },
    'no-password': { type: 'boolean', description: 'clear the stored password' },
    'ssl-mode': {
      type: 'string',
      value: 'MODE',
      description: 'PostgreSQL: disable, allow, prefer, require, verify-ca or verify-full',
    },
    'ssl-root-cert': { type: 'string', value: 'FILE', description: 'PostgreSQL: PEM root certificate' },
    'ssl-client-cert': { type: 'string', value: 'FILE', description: 'PostgreSQL: PEM client certificate' },
    'ssl-client-key': { type: 'string', value: 'FILE', description: 'PostgreSQL: PEM client key' },
    ssl: { type: 'boolean', description: 'StarRocks: TLS on the MySQL port and HTTPS to the FE' },
    'no-ssl': { type: 'boolean', description: 'StarRocks: turn TLS off' },
    'ssl-ca-cert': { type: 'string', value: 'FILE', description: 'StarRocks: PEM CA certificate of the FE' },
    'allow-plaintext-be-redirect': {
      type: 'boolean',
      description: "StarRocks: accept row data crossing to the BE's plain HTTP port after the FE redirect",
    },
    'no-allow-plaintext-be-redirect': { type: 'boolean', description: 'StarRocks: refuse that again' },
    'rewrite-loopback-redirect': {
      type: 'boolean',
      description: 'StarRocks: rewrite a loopback redirect to the FE host',
    },
    'no-rewrite-loopback-redirect': { type: 'boolean', description: 'StarRocks: stop rewriting it' },
  },
  examples: [
    'sluice datasource update app --host db2.internal --password-file pg.pw',
    'sluice datasource update warehouse --database analytics_v2',
    'sluice datasource update app --prompt-password          # a rotated database password',
  ],
  async run(context) {
    const flags = context.flags;
    checkUpdateFlags(flags);
    const pems: UpdatePems = {};
    const files: Array<[keyof UpdatePems, string]> = [
      ['sslRootCert', 'ssl-root-cert'],
      ['sslClientCert', 'ssl-client-cert'],
      ['sslClientKey', 'ssl-client-key'],
      ['caCert', 'ssl-ca-cert'],
    ];
    for (const [key, flag] of files) pems[key] = await pemFile(flag, stringFlag(flags, flag));
    const connection = await connect(context);
    const current = await findDatasource(connection, context.args[0]!);
    const plan = planDatasourceUpdate(current, flags, pems);
    requirePasswordForTarget(current, plan, flags);
    if (plan.name === undefined && plan.spec === undefined) {
      if (context.json)
        printJson(context, { datasource: messageJson(DatasourceSchema, current), changed: [] });
      else println(context, `datasource ${current.name} unchanged (the values given are the stored ones)`);
      return 0;
    }
    const wantsPassword = flags['password-file'] !== undefined || flags['prompt-password'] === true;
    const password = wantsPassword
      ? await readPassword(
          stringFlag(flags, 'password-file'),
          `New password for ${current.config.value?.username} on ${current.name}: `,
        )
      : undefined;
    const send = (passwordValue: string | undefined) => {
      const spec = plan.spec;
      const withPassword =
        spec && passwordValue !== undefined
          ? ({ case: spec.case, value: { ...spec.value, password: passwordValue } } as UpdatePlan['spec'])
          : spec;
      return connection.client(DatasourceService).updateDatasource({
        id: current.id,
        ...(plan.name !== undefined && { name: plan.name }),
        ...(withPassword && { spec: withPassword }),
      });
    };
    let answer: Awaited<ReturnType<typeof send>>;
    try {
      answer = await (password ? password.useOnce(send) : send(undefined));
    } catch (error) {
      throw explainUpdateRefusal(current.name, error);
    }
    const changed = [...plan.changes, ...secretChanges(plan)];
    if (context.json) {
      printJson(context, { datasource: messageJson(DatasourceSchema, answer.datasource!), changed });
      return 0;
    }
    println(context, `datasource ${answer.datasource?.name ?? current.name} updated`);
    if (changed.length > 0) println(context, table(changed.map((c) => [`  ${c.field}`, c.from, '→', c.to])));
    return 0;
  },
};

export const datasourceCommand: CommandSpec = {
  name: 'datasource',
  summary: 'PostgreSQL sources and StarRocks sinks',
  subcommands: [
    {
      name: 'add',
      summary: 'Add a datasource: postgres or starrocks',
      subcommands: [addPostgres, addStarRocks],
    },
    updateDatasource,
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
