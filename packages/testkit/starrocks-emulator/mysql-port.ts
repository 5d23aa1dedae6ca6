// The emulator's FE MySQL-protocol port, on mysql2's server: mysql_native_password authentication checked
// against the configured user, then text-protocol statements parsed by sql-parser.ts and run against the
// catalog. Every statement is recorded so tests can see exactly what the sink issued.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import mysql from 'mysql2';
import {
  CatalogError,
  type EmulatedCatalog,
  type EmulatedTable,
  findColumn,
  valueText,
} from './emulated-catalog.ts';
import { type Condition, formatType, parseStatement, type SelectItem, SqlSyntaxError } from './sql-parser.ts';

interface PacketWriter {
  offset: number;
  writeNull(): void;
  writeLengthCodedBuffer(buffer: Buffer): void;
}
// mysql2's packet writer, to send a text row holding raw bytes: not exported by the package, so loaded by path.
const require = createRequire(import.meta.url);
const Packet = require(join(dirname(require.resolve('mysql2')), 'lib/packets/packet.js')) as {
  new (sequenceId: number, buffer: Buffer, start: number, end: number): PacketWriter;
  lengthCodedNumberLength(n: number): number;
};

/** The part of mysql2's server-side connection the emulator uses (not in mysql2's typings). */
interface ServerConnection {
  serverHandshake(args: Record<string, unknown>): void;
  on(event: 'query' | 'init_db' | 'stmt_prepare', listener: (text: string) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  writeOk(args?: { affectedRows?: number }): void;
  writeError(args: { code: number; message: string }): void;
  writeColumns(columns: Record<string, unknown>[]): void;
  writeTextRow(values: (string | null)[]): void;
  writePacket(packet: unknown): void;
  writeEof(): void;
  stream: { destroy(): void };
  /** mysql2's server never ends its command, so the emulator restarts the numbering after each reply. */
  sequenceId: number;
}

interface AuthInfo {
  user: string;
  database?: string;
  authPluginData1: Buffer;
  authPluginData2: Buffer;
  authToken: Buffer;
}

export interface MysqlPortOptions {
  catalog: EmulatedCatalog;
  user: string;
  password: string;
  /** What `select current_version()` answers. */
  version: string;
  /** Host to listen on. */
  host: string;
}

export interface MysqlPort {
  port: number;
  /** Every statement received, in order. */
  statements: string[];
  close(): Promise<void>;
}

const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_TRANSACTIONS = 0x2000;
const UTF8_GENERAL_CI = 33;
/** Result columns are real UTF-8 (4-byte characters too); mysql2 reads charset 33 as CESU-8. */
const UTF8MB4_GENERAL_CI = 45;
const BINARY_CHARSET = 63;
const BINARY_FLAG = 0x80;
const VAR_STRING = 0xfd;

export async function startMysqlPort(options: MysqlPortOptions): Promise<MysqlPort> {
  const server = mysql.createServer(undefined as never) as unknown as {
    on(event: 'connection', listener: (connection: ServerConnection) => void): void;
    listen(port: number, host: string, callback: () => void): void;
    close(callback: () => void): void;
    _server: {
      address(): AddressInfo;
      on(event: 'connection', listener: (socket: { destroy(): void }) => void): void;
    };
  };
  const statements: string[] = [];
  const sockets = new Set<{ destroy(): void }>();
  let connectionId = 1;

  server.on('connection', (connection) => {
    let current: string | undefined;
    connection.on('error', () => {});
    connection.serverHandshake({
      protocolVersion: 10,
      serverVersion: '5.1.0',
      connectionId: connectionId++,
      statusFlags: 2,
      characterSet: UTF8_GENERAL_CI,
      // No CLIENT_SSL: the emulator's MySQL port has no TLS, so a client that requires TLS must refuse it.
      capabilityFlags:
        CLIENT_PROTOCOL_41 |
        CLIENT_SECURE_CONNECTION |
        CLIENT_PLUGIN_AUTH |
        CLIENT_CONNECT_WITH_DB |
        CLIENT_TRANSACTIONS,
      authCallback: (
        info: AuthInfo,
        callback: (error: null, failure?: { message: string; code: number }) => void,
      ) => {
        const seed = Buffer.concat([info.authPluginData1, info.authPluginData2]).subarray(0, 20);
        if (info.user !== options.user || !checkNativePassword(options.password, seed, info.authToken)) {
          callback(null, {
            code: 1045,
            message: `Access denied for user '${info.user}' (using password: ${info.authToken.length > 0 ? 'YES' : 'NO'})`,
          });
          return;
        }
        current = info.database || undefined;
        callback(null);
        connection.sequenceId = 0;
      },
    });
    connection.on('init_db', (name) => {
      if (!options.catalog.databases.has(name)) {
        connection.writeError({ code: 1049, message: `Unknown database '${name}'` });
        connection.sequenceId = 0;
        return;
      }
      current = name;
      connection.writeOk();
      connection.sequenceId = 0;
    });
    // mysql2's server routes statements starting with SET/PREPARE here.
    connection.on('stmt_prepare', (text) => {
      statements.push(text);
      if (/^\s*set\s/i.test(text)) connection.writeOk();
      else
        connection.writeError({
          code: 1064,
          message: 'prepared statements are not supported by the emulator',
        });
      connection.sequenceId = 0;
    });
    connection.on('query', (sql) => {
      statements.push(sql);
      try {
        const statement = parseStatement(sql);
        if (statement.kind === 'use') {
          options.catalog.database(statement.database);
          current = statement.database;
          connection.writeOk();
        } else if (statement.kind === 'select') {
          const { columns, rows } = select(options, statement, current);
          const binary = columns.map((_, index) => rows.some((row) => Buffer.isBuffer(row[index])));
          connection.writeColumns(columns.map((name, index) => columnDefinition(name, binary[index]!)));
          for (const row of rows) writeRow(connection, row);
          connection.writeEof();
        } else {
          options.catalog.execute(statement, current);
          connection.writeOk({ affectedRows: 0 });
        }
      } catch (error) {
        if (error instanceof CatalogError)
          connection.writeError({ code: error.code, message: error.message });
        else if (error instanceof SqlSyntaxError) {
          connection.writeError({ code: 1064, message: `Getting syntax error: ${error.message}` });
        } else
          connection.writeError({
            code: 1105,
            message: error instanceof Error ? error.message : String(error),
          });
      }
      connection.sequenceId = 0;
    });
  });
  server._server.on('connection', (socket) => {
    sockets.add(socket);
    (socket as unknown as { on(event: 'close', listener: () => void): void }).on('close', () =>
      sockets.delete(socket),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, options.host, resolve));
  return {
    port: server._server.address().port,
    statements,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function checkNativePassword(password: string, seed: Buffer, token: Buffer): boolean {
  if (password === '') return token.length === 0;
  const sha1 = (...parts: Buffer[]) => createHash('sha1').update(Buffer.concat(parts)).digest();
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  const mask = sha1(seed, sha1(stage1));
  if (token.length !== stage1.length) return false;
  let difference = 0;
  for (let i = 0; i < stage1.length; i++) difference |= stage1[i]! ^ mask[i]! ^ token[i]!;
  return difference === 0;
}

/**
 * A result column. VARBINARY columns go with the binary character set (63) and the BINARY flag, as a MySQL
 * server sends binary strings, so mysql2 hands them over as Buffers; every other column is a utf8 string.
 */
function columnDefinition(name: string, binary: boolean): Record<string, unknown> {
  return {
    catalog: 'def',
    schema: '',
    table: '',
    orgTable: '',
    name,
    orgName: name,
    characterSet: binary ? BINARY_CHARSET : UTF8MB4_GENERAL_CI,
    columnLength: 65_533,
    columnType: VAR_STRING,
    flags: binary ? BINARY_FLAG : 0,
    decimals: 0,
  };
}

/** A text-protocol row whose values may be raw bytes (mysql2's writeTextRow only writes strings). */
/** A text row written byte by byte: strings as UTF-8, VARBINARY values as their raw bytes. */
function writeRow(connection: ServerConnection, row: Value[]): void {
  const parts = row.map((value) =>
    value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'),
  );
  const length = parts.reduce(
    (sum, part) => sum + (part === null ? 1 : Packet.lengthCodedNumberLength(part.length) + part.length),
    0,
  );
  const packet = new Packet(0, Buffer.allocUnsafe(length + 4), 0, length + 4);
  packet.offset = 4;
  for (const part of parts) {
    if (part === null) packet.writeNull();
    else packet.writeLengthCodedBuffer(part);
  }
  connection.writePacket(packet);
}

type Value = string | Buffer | null;
type Selected = { columns: string[]; rows: Value[][] };
type VirtualRow = Record<string, Value>;

function select(
  options: MysqlPortOptions,
  statement: Extract<ReturnType<typeof parseStatement>, { kind: 'select' }>,
  current: string | undefined,
): Selected {
  const { catalog } = options;
  if (!statement.from) {
    const columns = statement.items.map((item) => (item.kind === 'star' ? '*' : item.alias));
    const row = statement.items.map((item) => {
      if (item.kind === 'function' && item.name === 'current_version') return options.version;
      if (item.kind === 'function' && item.name === 'version') return '5.1.0';
      if (item.kind === 'function' && item.name === 'database') return current ?? null;
      throw new SqlSyntaxError(
        'only current_version(), version() and database() can be selected without FROM',
      );
    });
    return { columns, rows: [row] };
  }
  const from = statement.from;
  let names: string[];
  let rows: VirtualRow[];
  if (from.database?.toLowerCase() === 'information_schema') {
    ({ names, rows } = informationSchema(catalog, from.table.toLowerCase()));
  } else {
    const table = catalog.table(from.database ?? (current as string), from.table);
    names = table.columns.map((column) => column.name);
    rows = [...table.rows.values()].map((row) => {
      const out: VirtualRow = {};
      for (const column of table.columns) out[column.name] = valueText(row[column.name], column.type);
      return out;
    });
    return project(statement.items, names, filterAndSort(rows, statement, names, table), statement.limit);
  }
  return project(statement.items, names, filterAndSort(rows, statement, names, undefined), statement.limit);
}

function resolve(names: string[], name: string): string {
  const folded = name.toLowerCase();
  const found = names.find((candidate) => candidate.toLowerCase() === folded);
  if (found === undefined) throw new CatalogError(1054, `Unknown column '${name}'`);
  return found;
}

function filterAndSort(
  rows: VirtualRow[],
  statement: { where: Condition[]; orderBy: { column: string; descending: boolean }[] },
  names: string[],
  table: EmulatedTable | undefined,
): VirtualRow[] {
  const conditions = statement.where.map((condition) => ({
    ...condition,
    column: resolve(names, condition.column),
  }));
  const filtered = rows.filter((row) =>
    conditions.every((condition) =>
      condition.value === null
        ? row[condition.column] === null
        : row[condition.column] === String(condition.value),
    ),
  );
  const order = statement.orderBy.map((entry) => ({ ...entry, column: resolve(names, entry.column) }));
  const numeric = (column: string) => {
    const type = table
      ? findColumn(table, column)?.type.base
      : column === 'ORDINAL_POSITION'
        ? 'INT'
        : undefined;
    return type !== undefined && /INT|FLOAT|DOUBLE|DECIMAL/.test(type);
  };
  return filtered.sort((a, b) => {
    for (const { column, descending } of order) {
      const [x, y] = [a[column] ?? null, b[column] ?? null];
      let comparison: number;
      if (x === y) comparison = 0;
      else if (x === null) comparison = -1;
      else if (y === null) comparison = 1;
      else if (numeric(column)) comparison = Number(x) - Number(y);
      else comparison = x < y ? -1 : 1;
      if (comparison !== 0) return descending ? -comparison : comparison;
    }
    return 0;
  });
}

function project(
  items: SelectItem[],
  names: string[],
  rows: VirtualRow[],
  limit: number | undefined,
): Selected {
  const limited = limit === undefined ? rows : rows.slice(0, limit);
  if (items.some((item) => item.kind === 'count')) {
    if (items.length !== 1) throw new SqlSyntaxError('count(*) must be selected alone');
    return { columns: [(items[0] as { alias: string }).alias], rows: [[String(rows.length)]] };
  }
  const columns: { name: string; source: string }[] = [];
  for (const item of items) {
    if (item.kind === 'star') columns.push(...names.map((name) => ({ name, source: name })));
    else if (item.kind === 'column') columns.push({ name: item.alias, source: resolve(names, item.name) });
    else throw new SqlSyntaxError(`${item.alias} is not supported with FROM`);
  }
  return {
    columns: columns.map((column) => column.name),
    rows: limited.map((row) => columns.map((column) => row[column.source] ?? null)),
  };
}

function informationSchema(catalog: EmulatedCatalog, view: string): { names: string[]; rows: VirtualRow[] } {
  if (view === 'tables') {
    const names = ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'TABLE_TYPE', 'ENGINE', 'TABLE_ROWS'];
    const rows: VirtualRow[] = [];
    for (const [database, tables] of catalog.databases) {
      for (const table of tables.values()) {
        rows.push({
          TABLE_CATALOG: 'def',
          TABLE_SCHEMA: database,
          TABLE_NAME: table.name,
          TABLE_TYPE: 'BASE TABLE',
          ENGINE: 'StarRocks',
          TABLE_ROWS: String(table.rows.size),
        });
      }
    }
    return { names, rows };
  }
  if (view === 'columns') {
    const names = [
      'TABLE_CATALOG',
      'TABLE_SCHEMA',
      'TABLE_NAME',
      'COLUMN_NAME',
      'ORDINAL_POSITION',
      'COLUMN_DEFAULT',
      'IS_NULLABLE',
      'DATA_TYPE',
      'COLUMN_TYPE',
      'COLUMN_KEY',
    ];
    const rows: VirtualRow[] = [];
    for (const [database, tables] of catalog.databases) {
      for (const table of tables.values()) {
        table.columns.forEach((column, index) => {
          rows.push({
            TABLE_CATALOG: 'def',
            TABLE_SCHEMA: database,
            TABLE_NAME: table.name,
            COLUMN_NAME: column.name,
            ORDINAL_POSITION: String(index + 1),
            COLUMN_DEFAULT: column.defaultValue ?? null,
            IS_NULLABLE: column.nullable ? 'YES' : 'NO',
            DATA_TYPE: column.type.base.toLowerCase(),
            COLUMN_TYPE: formatType(column.type).toLowerCase(),
            COLUMN_KEY: column.key ? 'PRI' : '',
          });
        });
      }
    }
    return { names, rows };
  }
  throw new CatalogError(1146, `Unknown table 'information_schema.${view}'`);
}
