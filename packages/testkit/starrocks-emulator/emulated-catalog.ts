// The emulator's in-memory StarRocks: databases, Primary Key tables with typed columns, labels, and the
// rules a load is checked against. Shared by the MySQL port (DDL, SELECT) and the Stream Load ports.
import { castText } from './load-values.ts';
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

// Names: docs/en/reference/System_limit.md (letters, digits, underscore; column names case-insensitive).
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Key columns can't be FLOAT/DOUBLE (docs/en/reference/System_limit.md); a Primary Key table's keys come
// first and NOT NULL (docs/table_design/Table_types.md).
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

/**
 * Type bounds from StarRocks' CREATE TABLE reference (docs/en/sql-reference/sql-statements/data-definition/
 * CREATE_TABLE.md): DECIMAL precision 1–38 and scale ≤ precision, CHAR 1–255, VARCHAR 1–1048576 bytes
 * (docs/en/reference/System_limit.md).
 */
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

/**
 * The value a column gets when a load doesn't supply it, and old rows after ADD COLUMN: the DEFAULT literal as a
 * StringLiteral cast to the column type (fe StreamLoadScanNode `finalizeParams`: `new StringLiteral(
 * column.calculatedDefaultValue())`, cast to the slot), or NULL.
 */
export function defaultOf(column: EmulatedColumn): unknown {
  if (column.defaultValue === undefined || column.defaultValue === null) return null;
  const converted = castText(column.defaultValue, column.type);
  return converted.ok ? converted.value : null;
}

/** How a stored value prints over the MySQL port's text protocol (a VARBINARY value stays a Buffer). */
export function valueText(value: unknown, type: SqlType): string | Buffer | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  if (type.base === 'BOOLEAN') return value ? '1' : '0';
  if (type.base === 'ARRAY')
    return JSON.stringify(value, (_key, item) => (Buffer.isBuffer(item) ? item.toString('latin1') : item));
  if (typeof value === 'number' && Object.is(value, -0)) return '-0';
  return String(value);
}
