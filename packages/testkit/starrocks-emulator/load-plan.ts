// One Stream Load body planned against a table as StarRocks plans and reads it: the `columns` header and its
// mappings, the JSON reader and casts, strict mode, NOT NULL and length checks, the key size, and the order
// the rows apply in (see planLoad's sources). The HTTP side (stream-load-ports.ts) decides whether to apply.
import {
  defaultOf,
  type EmulatedColumn,
  type EmulatedTable,
  findColumn,
  MAX_KEY_BYTES,
} from './emulated-catalog.ts';
import { type JsonNode, minify, parseJson } from './json-body.ts';
import {
  castText,
  castValue,
  display,
  hexDecodeBinary,
  readType,
  readValue,
  STRING_LENGTH,
} from './load-values.ts';
import type { SqlType } from './sql-parser.ts';

export interface LoadPlan {
  rows: unknown[];
  filtered: string[];
  apply(): void;
}

/** One entry of the `columns` header's mapping side: what a column is computed from. */
type Mapping =
  | { kind: 'slot'; name: string }
  | { kind: 'hex_decode_binary'; arg: string }
  | { kind: 'literal'; text: string };

interface Source {
  /** As written in the `columns` header (or the table's column name): JSON keys must match it exactly. */
  name: string;
  /** What the JSON reader reads the field as. */
  type: SqlType;
}

/** TypeDescriptor::MAX_VARCHAR_LENGTH read type for source columns that are no table column (or expr args). */
const VARCHAR_SOURCE: SqlType = { base: 'VARCHAR', length: 1_048_576 };
const OP = '__op';

/** Splits the `columns` header at top-level commas (not inside parentheses or quotes). */
function splitColumns(header: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let current = '';
  for (const c of header) {
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      items.push(current.trim());
      current = '';
      continue;
    }
    current += c;
  }
  if (current.trim() !== '') items.push(current.trim());
  return items;
}

const unquote = (name: string) => name.trim().replace(/^`(.*)`$/, '$1');

/** The expressions the emulator evaluates in a `columns` header; anything else is refused loudly. */
function parseMapping(text: string): Mapping | undefined {
  const trimmed = text.trim();
  const slot = /^`?([A-Za-z_][A-Za-z0-9_]*)`?$/.exec(trimmed);
  if (slot) return { kind: 'slot', name: slot[1]! };
  const call = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*\)$/.exec(trimmed);
  if (call && call[1]!.toLowerCase() === 'hex_decode_binary')
    return { kind: 'hex_decode_binary', arg: call[2]! };
  if (/^-?\d+$/.test(trimmed)) return { kind: 'literal', text: trimmed };
  const string = /^'([^']*)'$|^"([^"]*)"$/.exec(trimmed);
  if (string) return { kind: 'literal', text: string[1] ?? string[2]! };
  return undefined;
}

/**
 * Parses and checks a JSON body against the table; `apply` writes the accepted rows. Follows fe
 * load/Load.java `initColumns` (column list and mappings, source slot types, FE errors), fe planner
 * StreamLoadScanNode `finalizeParams` (defaults for unlisted columns, which columns strict mode checks),
 * be/src/exec/json_scanner.cpp `JsonReader::_construct_row_without_jsonpath` (fields matched to source columns
 * by exact name, unknown fields skipped, missing fields NULL, a missing __op 0),
 * be/src/exec/file_scanner.cpp `FileScanner::materialize` (strict mode) and be/src/exec/tablet_sink.cpp
 * `OlapTableSink::_validate_data` (NOT NULL and length checks, in both modes).
 */
export function planLoad(
  table: EmulatedTable,
  text: string,
  headers: Record<string, string>,
  options: { unknownFields: 'filter' | 'ignore'; sharedData: boolean },
): LoadPlan | { error: string } {
  let parsed: JsonNode;
  try {
    parsed = parseJson(text);
  } catch (error) {
    return { error: `Failed to parse JSON body: ${(error as Error).message}` };
  }
  const strip = headers.strip_outer_array === 'true';
  if (strip && parsed.t !== 'arr')
    return { error: 'JSON data is not an array-object with strip_outer_array = true' };
  const items = strip && parsed.t === 'arr' ? parsed.items : parsed.t === 'arr' ? null : [parsed];
  if (!items) return { error: 'JSON data is an array but strip_outer_array is not true' };
  // stream_load.cpp / StreamLoadInfo: strict_mode defaults to false.
  const strict = (headers.strict_mode ?? 'false').toLowerCase() === 'true';
  const partial = headers.partial_update === 'true';

  // ---- FE: Load.initColumns ----
  const sourceNames: string[] = [];
  const mappings = new Map<string, { target: string; mapping: Mapping }>(); // lower-cased target → mapping
  if (headers.columns !== undefined && headers.columns.trim() !== '') {
    const seen = new Set<string>();
    for (const item of splitColumns(headers.columns)) {
      const equals = item.indexOf('=');
      if (equals < 0) {
        const name = unquote(item);
        if (seen.has(name.toLowerCase())) return { error: `Duplicate column: ${name}` };
        seen.add(name.toLowerCase());
        sourceNames.push(name);
        continue;
      }
      const target = unquote(item.slice(0, equals));
      const expression = item.slice(equals + 1);
      const mapping = parseMapping(expression);
      if (!mapping) {
        return {
          error: `the emulator does not support expression '${expression.trim()}' in the columns header`,
        };
      }
      if (mappings.has(target.toLowerCase())) return { error: `Duplicate column mapping: ${target}` };
      if (!findColumn(table, target) && target !== OP) {
        return { error: `Mapping column is not in table. column: ${target}` };
      }
      mappings.set(target.toLowerCase(), { target, mapping });
    }
  }
  // No file field names given: the table's columns are the fields (Load.initColumns).
  if (sourceNames.length === 0) sourceNames.push(...table.columns.map((column) => column.name));
  // A JSON stream load reads a `__op` field even when the header doesn't list it.
  if (!sourceNames.includes(OP) && !mappings.has(OP)) sourceNames.push(OP);
  const exprArgs = new Set<string>();
  for (const { mapping } of mappings.values()) {
    if (mapping.kind === 'hex_decode_binary') exprArgs.add(mapping.arg.toLowerCase());
    if (mapping.kind === 'slot') exprArgs.add(mapping.name.toLowerCase());
  }
  const sources = new Map<string, Source>(); // lower-cased name → source
  const byExactName = new Map<string, Source>();
  for (const name of sourceNames) {
    const column = findColumn(table, name);
    const type =
      name === OP
        ? { base: 'TINYINT' }
        : column && !exprArgs.has(name.toLowerCase())
          ? readType(column.type)
          : VARCHAR_SOURCE;
    const source = { name, type };
    sources.set(name.toLowerCase(), source);
    byExactName.set(name, source);
  }
  for (const { target, mapping } of mappings.values()) {
    const reference =
      mapping.kind === 'slot' ? mapping.name : mapping.kind === 'hex_decode_binary' ? mapping.arg : null;
    if (reference !== null && !sources.has(reference.toLowerCase())) {
      return { error: `unknown reference column, column=${target}, reference=${reference}` };
    }
  }
  /** Table column → how it is computed; a listed source of the same name maps to itself. */
  const computed = new Map<EmulatedColumn, { mapping: Mapping; direct: boolean }>();
  for (const column of table.columns) {
    const mapped = mappings.get(column.name.toLowerCase());
    if (mapped) computed.set(column, { mapping: mapped.mapping, direct: false });
    else if (sources.has(column.name.toLowerCase())) {
      computed.set(column, { mapping: { kind: 'slot', name: column.name }, direct: true });
    }
  }
  if (partial) {
    // Load.getPartialUpateColumns: every key column must be listed.
    const specified = new Set([...sourceNames, ...[...mappings.values()].map((m) => m.target)]);
    for (const key of table.keys) {
      if (!specified.has(key)) return { error: `key column ${key} not in partial update columns` };
    }
  } else {
    for (const column of table.columns) {
      if (!computed.has(column) && !column.nullable && column.defaultValue == null) {
        return { error: `Column has no default value. column: ${column.name}` };
      }
    }
  }
  const written = partial ? table.columns.filter((column) => computed.has(column)) : table.columns;

  const accepted: { op: 0 | 1; key: string; values: Record<string, unknown> }[] = [];
  const filtered: string[] = [];
  for (const item of items) {
    const line = minify(item);
    const reject = (reason: string) =>
      filtered.push(`Error: ${reason}. Row: ${line.length > 1000 ? `${line.slice(0, 1000)}…` : line}`);
    if (item.t !== 'obj') {
      reject('the row is not a JSON object');
      continue;
    }
    let problem: string | undefined;
    // ---- BE: the JSON reader ----
    const read = new Map<Source, unknown>();
    for (const [key, node] of item.entries) {
      const source = byExactName.get(key);
      if (!source) {
        if (options.unknownFields === 'filter') problem ??= `Unknown column '${key}' in table ${table.name}`;
        continue;
      }
      const value = readValue(node, source.type, key);
      if (value.ok) read.set(source, value.value);
      else {
        read.set(source, null);
        if (strict) problem ??= value.reason;
      }
    }
    const sourceValue = (name: string) => {
      const source = sources.get(name.toLowerCase());
      return source ? (read.get(source) ?? null) : null;
    };
    // ---- BE: column expressions and casts ----
    const values: Record<string, unknown> = {};
    for (const column of written) {
      const how = computed.get(column);
      let value: unknown;
      if (!how) value = defaultOf(column);
      else {
        const { mapping, direct } = how;
        let input: unknown;
        let from: SqlType;
        if (mapping.kind === 'slot') {
          input = sourceValue(mapping.name);
          from = sources.get(mapping.name.toLowerCase())!.type;
        } else if (mapping.kind === 'hex_decode_binary') {
          input = hexDecodeBinary(sourceValue(mapping.arg));
          from = { base: 'VARBINARY' };
        } else {
          input = mapping.text;
          from = VARCHAR_SOURCE;
        }
        const cast = castFrom(input, from, column.type);
        value = cast.ok ? cast.value : null;
        // FileScanner::materialize: only strict mode, only columns read straight from a field
        // (dest_sid_to_src_sid_without_trans), filters a non-NULL input that became NULL.
        if (strict && direct && input !== null && value === null) {
          problem ??= `Value '${display(input)}' is out of range. The type of '${column.name}' is ${typeName(column.type)}`;
        }
      }
      values[column.name] = value;
    }
    let op: 0 | 1 = 0;
    const opMapping = mappings.get(OP)?.mapping;
    const opValue = opMapping
      ? opMapping.kind === 'literal'
        ? Number(/^delete$/i.test(opMapping.text) ? 1 : /^upsert$/i.test(opMapping.text) ? 0 : opMapping.text)
        : opMapping.kind === 'slot'
          ? sourceValue(opMapping.name)
          : null
      : sourceValue(OP);
    if (opValue === 1 || opValue === '1') op = 1;
    else if (!(opValue === 0 || opValue === '0' || opValue === null))
      problem ??= `invalid __op value ${display(opValue)}`;
    // ---- BE: OlapTableSink::_validate_data (both modes) ----
    for (const column of written) {
      const value = values[column.name];
      if (value === null || value === undefined) {
        if (!column.nullable) problem ??= `NULL value in non-nullable column '${column.name}'`;
        continue;
      }
      const limit = lengthLimit(column.type);
      const bytes = Buffer.isBuffer(value)
        ? value.length
        : typeof value === 'string'
          ? Buffer.byteLength(value)
          : 0;
      if (limit !== undefined && bytes > limit) {
        const shown = display(value);
        problem ??= `String '${shown.length > 100 ? `${shown.slice(0, 100)}...` : shown}'(length=${bytes}) is too long. The max length of '${column.name}' is ${limit}`;
      }
    }
    if (problem === undefined && keyBytes(table, values) > MAX_KEY_BYTES) {
      problem = `primary key size exceed the limit (${MAX_KEY_BYTES} bytes)`;
    }
    if (problem) reject(problem);
    else accepted.push({ op, key: JSON.stringify(table.keys.map((name) => values[name])), values });
  }
  return {
    rows: accepted,
    filtered,
    apply() {
      // Shared-data clusters (StarRocks issue #75014, fixed by PR #75338 behind
      // lake_enable_pk_preserve_txn_delete_order) applied a load's deletes after its upserts; shared-nothing
      // applies them in order, the last op per key winning.
      const ordered = options.sharedData
        ? [...accepted.filter((row) => row.op === 0), ...accepted.filter((row) => row.op === 1)]
        : accepted;
      for (const { op, key, values } of ordered) {
        if (op === 1) {
          table.rows.delete(key);
          continue;
        }
        const previous = table.rows.get(key);
        const row: Record<string, unknown> = {};
        for (const column of table.columns) {
          if (column.name in values) row[column.name] = values[column.name];
          else if (partial && previous) row[column.name] = previous[column.name];
          else row[column.name] = defaultOf(column);
        }
        table.rows.set(key, row);
      }
    },
  };
}

/** A value read as `from` cast to `to` (JsonScanner::_construct_cast_exprs, then the slot cast). */
function castFrom(value: unknown, from: SqlType, to: SqlType) {
  if (value === null || value === undefined) return { ok: true as const, value: null };
  const sameRead = JSON.stringify(from) === JSON.stringify(readType(to));
  if (sameRead) return castValue(value, to);
  const text = Buffer.isBuffer(value) ? value : typeof value === 'string' ? value : display(value);
  if (Buffer.isBuffer(text))
    return to.base === 'VARBINARY' ? castValue(text, to) : castText(text.toString('latin1'), to);
  return castText(text, to);
}

function typeName(type: SqlType): string {
  if (type.base === 'ARRAY') return `ARRAY<${typeName(type.element!)}>`;
  if (type.base === 'DECIMAL') return `DECIMAL(${type.precision},${type.scale})`;
  return type.length !== undefined ? `${type.base}(${type.length})` : type.base;
}

/** OlapTableSink::_validate_data checks CHAR/VARCHAR/VARBINARY byte lengths. */
function lengthLimit(type: SqlType): number | undefined {
  if (type.base === 'CHAR' || type.base === 'VARCHAR') return type.length ?? 1;
  if (type.base === 'STRING') return STRING_LENGTH;
  if (type.base === 'VARBINARY') return type.length;
  return undefined;
}

const FIXED_KEY_BYTES: Record<string, number> = {
  BOOLEAN: 1,
  TINYINT: 1,
  SMALLINT: 2,
  INT: 4,
  BIGINT: 8,
  LARGEINT: 16,
  DATE: 4,
  DATETIME: 8,
};

/**
 * The encoded primary key's size: fixed-width types at their width, VARCHAR at its bytes. An approximation of
 * be/src/storage/primary_key_encoder.cpp (not read; multi-column encodings add separators it ignores).
 */
function keyBytes(table: EmulatedTable, values: Record<string, unknown>): number {
  let total = 0;
  for (const name of table.keys) {
    const column = findColumn(table, name)!;
    const value = values[name];
    total += FIXED_KEY_BYTES[column.type.base] ?? (typeof value === 'string' ? Buffer.byteLength(value) : 0);
  }
  return total;
}
