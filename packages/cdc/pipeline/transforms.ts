// Column transforms applied before anything leaves the worker: excluded columns are removed from rows and
// from the schema (so the sink never creates them), hashed columns are replaced by the PII hash of their
// value (SHA-256, or HMAC-SHA256 when the job has a key) and become text in the target.
import { hashPii, hmacPii } from '@sluice/crypto';
import type { ChangeEvent, ColumnSchema, PgColumnType, Row, TableRef, TableSchema } from '../change-event.ts';
import { UNCHANGED_TOAST } from '../change-event.ts';

/** A column of a table, as the job names it. */
export interface ColumnRef {
  table: TableRef;
  column: string;
}

export interface TransformOptions {
  excludeColumns?: readonly ColumnRef[];
  hashColumns?: readonly ColumnRef[];
  /** HMAC key (≥ 32 bytes) for keyed hashing; plain SHA-256 without. */
  hmacKey?: Uint8Array;
}

const TEXT_TYPE: PgColumnType = { oid: 25, name: 'text', modifier: -1, kind: 'base' };

interface TableRules {
  exclude: Set<string>;
  hash: Set<string>;
}

/** Compiled transforms; tables without rules pass through untouched. */
export class Transforms {
  readonly #rules = new Map<string, TableRules>();
  readonly #hash: (value: unknown) => string | null;

  constructor(options: TransformOptions = {}) {
    const key = options.hmacKey;
    this.#hash = key ? (value) => hmacPii(key, value) : hashPii;
    for (const ref of options.excludeColumns ?? []) this.#rulesFor(ref.table).exclude.add(ref.column);
    for (const ref of options.hashColumns ?? []) this.#rulesFor(ref.table).hash.add(ref.column);
  }

  /** True when no table has a rule. */
  get empty(): boolean {
    return this.#rules.size === 0;
  }

  /** The schema as the sink should see it: excluded columns removed, hashed columns as text. */
  schema(schema: TableSchema): TableSchema {
    const rules = this.#rules.get(tableKey(schema.table));
    if (!rules) return schema;
    for (const name of rules.exclude) {
      if (schema.primaryKey.includes(name))
        throw new TransformError(
          `column ${JSON.stringify(name)} of ${schema.table.schema}.${schema.table.name} is part of the primary key and can't be excluded`,
        );
    }
    return {
      table: schema.table,
      primaryKey: schema.primaryKey,
      columns: this.#columns(rules, schema.columns),
    };
  }

  /** `columns` with the rules of `table` applied (for schema-change events' added/retyped lists). */
  columns(table: TableRef, columns: ColumnSchema[]): ColumnSchema[] {
    const rules = this.#rules.get(tableKey(table));
    return rules ? this.#columns(rules, columns) : columns;
  }

  /** Applies the rules to a row in place (rows are owned by the pipeline once decoded). */
  row(table: TableRef, row: Row): Row {
    const rules = this.#rules.get(tableKey(table));
    if (!rules) return row;
    for (const name of rules.exclude) delete row[name];
    for (const name of rules.hash) {
      const value = row[name];
      if (value === undefined || value === null || value === UNCHANGED_TOAST) continue;
      row[name] = this.#hash(value);
    }
    return row;
  }

  /** Applies the rules to every row a change event carries, in place. */
  event(event: ChangeEvent): void {
    if (this.#rules.size === 0) return;
    switch (event.kind) {
      case 'insert':
        this.row(event.table, event.row);
        return;
      case 'update':
        this.row(event.table, event.row);
        if (event.oldKey) this.row(event.table, event.oldKey);
        return;
      case 'delete':
        this.row(event.table, event.key);
        return;
      default:
        return;
    }
  }

  #columns(rules: TableRules, columns: ColumnSchema[]): ColumnSchema[] {
    const out: ColumnSchema[] = [];
    for (const column of columns) {
      if (rules.exclude.has(column.name)) continue;
      out.push(rules.hash.has(column.name) ? { ...column, type: TEXT_TYPE } : column);
    }
    return out;
  }

  #rulesFor(table: TableRef): TableRules {
    const key = tableKey(table);
    let rules = this.#rules.get(key);
    if (!rules) {
      rules = { exclude: new Set(), hash: new Set() };
      this.#rules.set(key, rules);
    }
    return rules;
  }
}

/** A job's transforms contradict its tables (e.g. an excluded key column): needs an operator. */
export class TransformError extends Error {
  override name = 'TransformError';
}

const keys = new WeakMap<TableRef, string>();

/** A map key for a table; cached per TableRef object (the decoder reuses one per relation). */
export function tableKey(table: TableRef): string {
  let key = keys.get(table);
  if (key === undefined) {
    key = `${table.schema}\0${table.name}`;
    keys.set(table, key);
  }
  return key;
}
