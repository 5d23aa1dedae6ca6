// The emulator's in-memory StarRocks: databases, Primary Key tables with typed columns, labels, and the
// rules a load is checked against. Shared by the MySQL port (DDL, SELECT) and the Stream Load ports.
import { type ColumnDefinition, formatType, type SqlType, type Statement } from './sql-parser.ts';

export interface EmulatedColumn {
  name: string;
  type: SqlType;
  key: boolean;
  nullable: boolean;
  defaultValue: string | null | undefined;
}

export interface EmulatedTable {
  database: string;
  name: string;
  columns: EmulatedColumn[];
  keys: string[];
  properties: Record<string, string>;
  /** Key (JSON of key values) → row (column name → stored value). */
  rows: Map<string, Record<string, unknown>>;
}

export type LabelState = 'PREPARE' | 'PREPARED' | 'COMMITTED' | 'VISIBLE' | 'ABORTED';

export interface LabelRecord {
  state: LabelState;
  txnId: number;
  table: string;
}

/** An error the MySQL port reports with a MySQL error code. */
export class CatalogError extends Error {
  override readonly name = 'CatalogError';
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KEY_TYPES = new Set([
  'BOOLEAN',
  'TINYINT',
  'SMALLINT',
  'INT',
  'BIGINT',
  'LARGEINT',
  'VARCHAR',
  'DATE',
  'DATETIME',
]);
const TYPES = new Set([
  ...KEY_TYPES,
  'FLOAT',
  'DOUBLE',
  'DECIMAL',
  'CHAR',
  'STRING',
  'JSON',
  'VARBINARY',
  'ARRAY',
]);
const INT_RANGES: Record<string, [bigint, bigint]> = {
  TINYINT: [-128n, 127n],
  SMALLINT: [-32768n, 32767n],
  INT: [-2147483648n, 2147483647n],
  BIGINT: [-(2n ** 63n), 2n ** 63n - 1n],
  LARGEINT: [-(2n ** 127n), 2n ** 127n - 1n],
};
export const MAX_KEY_BYTES = 128;

export class EmulatedCatalog {
  readonly databases = new Map<string, Map<string, EmulatedTable>>();
  /** database → label → record. */
  readonly labels = new Map<string, Map<string, LabelRecord>>();
  private nextTxnId = 1000;

  database(name: string): Map<string, EmulatedTable> {
    const database = this.databases.get(name);
    if (!database) throw new CatalogError(1049, `Unknown database '${name}'`);
    return database;
  }

  table(database: string, name: string): EmulatedTable {
    const table = this.database(database).get(name);
    if (!table) throw new CatalogError(1146, `Unknown table '${database}.${name}'`);
    return table;
  }

  findTable(database: string, name: string): EmulatedTable | undefined {
    return this.databases.get(database)?.get(name);
  }

  newTxnId(): number {
    return this.nextTxnId++;
  }

  labelsOf(database: string): Map<string, LabelRecord> {
    let labels = this.labels.get(database);
    if (!labels) {
      labels = new Map();
      this.labels.set(database, labels);
    }
    return labels;
  }

  /** Runs a DDL statement; `current` is the session's database. */
  execute(statement: Exclude<Statement, { kind: 'select' | 'use' }>, current: string | undefined): void {
    switch (statement.kind) {
      case 'create-database': {
        checkName(statement.name, 'database');
        if (this.databases.has(statement.name)) {
          if (statement.ifNotExists) return;
          throw new CatalogError(1007, `Can't create database '${statement.name}'; database exists`);
        }
        this.databases.set(statement.name, new Map());
        return;
      }
      case 'drop-database': {
        if (!this.databases.delete(statement.name) && !statement.ifExists) {
          throw new CatalogError(1008, `Can't drop database '${statement.name}'; database doesn't exist`);
        }
        this.labels.delete(statement.name);
        return;
      }
      case 'create-table':
        this.createTable(statement, current);
        return;
      case 'drop-table': {
        const database = this.database(statement.name.database ?? requireCurrent(current));
        if (!database.delete(statement.name.table) && !statement.ifExists) {
          throw new CatalogError(1051, `Unknown table '${statement.name.table}'`);
        }
        return;
      }
      case 'add-columns': {
        const table = this.table(statement.name.database ?? requireCurrent(current), statement.name.table);
        for (const definition of statement.columns) {
          checkName(definition.name, 'column');
          if (findColumn(table, definition.name)) {
            throw new CatalogError(1060, `Duplicate column name '${definition.name}'`);
          }
          checkType(definition.type, false, definition.name);
        }
        let at = table.columns.length;
        if (statement.after !== undefined) {
          const after = findColumn(table, statement.after);
          if (!after) throw new CatalogError(1054, `Unknown column '${statement.after}'`);
          at = table.columns.indexOf(after) + 1;
        }
        const added = statement.columns.map((definition) => toColumn(definition, false));
        table.columns.splice(at, 0, ...added);
        for (const row of table.rows.values()) {
          for (const column of added) row[column.name] = defaultOf(column);
        }
        return;
      }
      case 'drop-column': {
        const table = this.table(statement.name.database ?? requireCurrent(current), statement.name.table);
        const column = findColumn(table, statement.column);
        if (!column) throw new CatalogError(1054, `Unknown column '${statement.column}' in '${table.name}'`);
        if (column.key)
          throw new CatalogError(
            1064,
            `Can not drop key column '${column.name}' in primary data model table`,
          );
        table.columns.splice(table.columns.indexOf(column), 1);
        for (const row of table.rows.values()) delete row[column.name];
        return;
      }
      case 'truncate': {
        this.table(statement.name.database ?? requireCurrent(current), statement.name.table).rows.clear();
        return;
      }
    }
  }

  private createTable(
    statement: Extract<Statement, { kind: 'create-table' }>,
    current: string | undefined,
  ): void {
    const databaseName = statement.name.database ?? requireCurrent(current);
    const database = this.database(databaseName);
    checkName(statement.name.table, 'table');
    if (database.has(statement.name.table)) {
      if (statement.ifNotExists) return;
      throw new CatalogError(1050, `Table '${statement.name.table}' already exists`);
    }
    if (statement.keyType !== 'PRIMARY') {
      throw new CatalogError(1064, 'the emulator only models Primary Key tables: add PRIMARY KEY (…)');
    }
    const seen = new Set<string>();
    for (const definition of statement.columns) {
      checkName(definition.name, 'column');
      if (seen.has(definition.name.toLowerCase())) {
        throw new CatalogError(1060, `Duplicate column name '${definition.name}'`);
      }
      seen.add(definition.name.toLowerCase());
    }
    statement.keys.forEach((key, index) => {
      const definition = statement.columns[index];
      if (!definition || definition.name.toLowerCase() !== key.toLowerCase()) {
        throw new CatalogError(
          1064,
          `Key columns should be a ordered prefix of the schema: '${key}' is not column ${index + 1}`,
        );
      }
      if (!definition.notNull) throw new CatalogError(1064, `primary key column '${key}' must be NOT NULL`);
    });
    const keySet = new Set(statement.keys.map((key) => key.toLowerCase()));
    for (const definition of statement.columns)
      checkType(definition.type, keySet.has(definition.name.toLowerCase()), definition.name);
    for (const name of statement.hash ?? []) {
      if (!keySet.has(name.toLowerCase())) {
        throw new CatalogError(
          1064,
          `Distribution column '${name}' must be a key column of a Primary Key table`,
        );
      }
    }
    database.set(statement.name.table, {
      database: databaseName,
      name: statement.name.table,
      columns: statement.columns.map((definition) =>
        toColumn(definition, keySet.has(definition.name.toLowerCase())),
      ),
      keys: statement.columns.slice(0, statement.keys.length).map((definition) => definition.name),
      properties: statement.properties,
      rows: new Map(),
    });
  }
}

function requireCurrent(current: string | undefined): string {
  if (current === undefined) throw new CatalogError(1046, 'No database selected');
  return current;
}

function checkName(name: string, role: 'database' | 'table' | 'column'): void {
  if (!(role === 'column' ? COLUMN : NAME).test(name) || name.length > 1024) {
    throw new CatalogError(1064, `Incorrect ${role} name '${name}'`);
  }
}

function checkType(type: SqlType, key: boolean, column: string): void {
  if (!TYPES.has(type.base))
    throw new CatalogError(1064, `Unknown type '${type.base}' of column '${column}'`);
  if (key && !KEY_TYPES.has(type.base)) {
    throw new CatalogError(1064, `Invalid data type of key column '${column}': '${formatType(type)}'`);
  }
  if (
    type.base === 'DECIMAL' &&
    !((type.precision ?? 0) >= 1 && (type.precision ?? 0) <= 38 && (type.scale ?? 0) <= (type.precision ?? 0))
  ) {
    throw new CatalogError(1064, `Invalid decimal type for column '${column}': ${formatType(type)}`);
  }
  if (type.base === 'VARCHAR' && !((type.length ?? 1) >= 1 && (type.length ?? 1) <= 1_048_576)) {
    throw new CatalogError(1064, `Invalid VARCHAR length for column '${column}': ${type.length}`);
  }
  if (type.base === 'CHAR' && !((type.length ?? 1) >= 1 && (type.length ?? 1) <= 255)) {
    throw new CatalogError(1064, `Invalid CHAR length for column '${column}': ${type.length}`);
  }
  if (type.base === 'ARRAY') checkType(type.element!, false, column);
}

function toColumn(definition: ColumnDefinition, key: boolean): EmulatedColumn {
  return {
    name: definition.name,
    type: definition.type,
    key,
    nullable: !definition.notNull,
    defaultValue: definition.defaultValue,
  };
}

export function findColumn(table: EmulatedTable, name: string): EmulatedColumn | undefined {
  const folded = name.toLowerCase();
  return table.columns.find((column) => column.name.toLowerCase() === folded);
}

export function defaultOf(column: EmulatedColumn): unknown {
  if (column.defaultValue === undefined || column.defaultValue === null) return null;
  const converted = convertValue(column.defaultValue, column.type);
  return converted.ok ? converted.value : null;
}

export type Converted = { ok: true; value: unknown } | { ok: false; reason: string };

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/;
const DECIMAL = /^[-+]?(\d*)(?:\.(\d*))?$/;
const FLOAT = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** Checks and converts a JSON value for a column, as a StarRocks load would (or explains the rejection). */
export function convertValue(value: unknown, type: SqlType): Converted {
  if (value === null) return { ok: true, value: null };
  const fail = (what: string): Converted => ({
    ok: false,
    reason: `Value '${typeof value === 'string' ? value : JSON.stringify(value)}' is ${what} for column type ${formatType(type)}`,
  });
  switch (type.base) {
    case 'BOOLEAN':
      if (typeof value === 'boolean') return { ok: true, value };
      if (value === 0 || value === 1 || value === '0' || value === '1')
        return { ok: true, value: Number(value) === 1 };
      if (value === 'true' || value === 'false') return { ok: true, value: value === 'true' };
      return fail('invalid');
    case 'TINYINT':
    case 'SMALLINT':
    case 'INT':
    case 'BIGINT':
    case 'LARGEINT': {
      const text =
        typeof value === 'number' && Number.isInteger(value)
          ? String(value)
          : typeof value === 'string'
            ? value
            : '';
      if (!/^[-+]?\d+$/.test(text)) return fail('invalid');
      const number = BigInt(text);
      const [min, max] = INT_RANGES[type.base]!;
      if (number < min || number > max) return fail('out of range');
      return {
        ok: true,
        value: type.base === 'BIGINT' || type.base === 'LARGEINT' ? number.toString() : Number(number),
      };
    }
    case 'FLOAT':
    case 'DOUBLE': {
      if (typeof value === 'number') return { ok: true, value };
      if (typeof value === 'string' && FLOAT.test(value)) return { ok: true, value: Number(value) };
      return fail('invalid');
    }
    case 'DECIMAL': {
      const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : '';
      const match = DECIMAL.exec(text);
      if (!match || text === '' || /e/i.test(text) || (match[1] === '' && (match[2] ?? '') === ''))
        return fail('invalid');
      const integer = match[1]!.replace(/^0+(?=\d)/, '');
      const fraction = match[2] ?? '';
      const precision = type.precision ?? 38;
      const scale = type.scale ?? 0;
      if ((integer === '0' ? 0 : integer.length) > precision - scale) return fail('out of range');
      if (fraction.replace(/0+$/, '').length > scale) return fail('out of scale');
      const sign = text.startsWith('-') ? '-' : '';
      const padded = scale > 0 ? `.${fraction.padEnd(scale, '0').slice(0, scale)}` : '';
      return { ok: true, value: `${sign}${integer || '0'}${padded}` };
    }
    case 'CHAR':
    case 'VARCHAR':
    case 'STRING': {
      const text =
        typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
      const limit = type.base === 'STRING' ? 65_533 : (type.length ?? 1);
      if (Buffer.byteLength(text) > limit) return fail(`too long (${Buffer.byteLength(text)} bytes)`);
      return { ok: true, value: text };
    }
    case 'DATE': {
      if (typeof value !== 'string') return fail('invalid');
      const match = DATE.exec(value);
      if (!match || !validDate(match[1]!, match[2]!, match[3]!)) return fail('invalid');
      return { ok: true, value };
    }
    case 'DATETIME': {
      if (typeof value !== 'string') return fail('invalid');
      const match = DATETIME.exec(value);
      if (!match || !validDate(match[1]!, match[2]!, match[3]!)) return fail('invalid');
      const [hours, minutes, seconds] = [match[4] ?? '00', match[5] ?? '00', match[6] ?? '00'].map(Number);
      if (hours! > 23 || minutes! > 59 || seconds! > 59) return fail('invalid');
      const fraction = (match[7] ?? '').replace(/0+$/, '');
      const text = `${match[1]}-${match[2]}-${match[3]} ${match[4] ?? '00'}:${match[5] ?? '00'}:${match[6] ?? '00'}`;
      return { ok: true, value: fraction ? `${text}.${fraction.padEnd(6, '0')}` : text };
    }
    case 'JSON':
      return { ok: true, value: JSON.stringify(value) };
    case 'VARBINARY':
      if (typeof value !== 'string') return fail('invalid');
      return { ok: true, value };
    case 'ARRAY': {
      if (!Array.isArray(value)) return fail('not an array');
      const out: unknown[] = [];
      for (const element of value) {
        const converted = convertValue(element, type.element!);
        if (!converted.ok) return converted;
        out.push(converted.value);
      }
      return { ok: true, value: out };
    }
    default:
      return fail('unsupported');
  }
}

function validDate(year: string, month: string, day: string): boolean {
  const m = Number(month);
  const d = Number(day);
  if (m < 1 || m > 12 || d < 1) return false;
  const y = Number(year);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
  return d <= days;
}

/** How a stored value prints over the MySQL port's text protocol. */
export function valueText(value: unknown, type: SqlType): string | null {
  if (value === null || value === undefined) return null;
  if (type.base === 'BOOLEAN') return value ? '1' : '0';
  if (type.base === 'ARRAY') return JSON.stringify(value);
  return String(value);
}
