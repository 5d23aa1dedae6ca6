// The exactness oracle: reads a table from PostgreSQL (as text, under the worker's session settings) and
// from the sink (over the MySQL protocol), and compares them row by row in both directions under the
// documented normalisation. Written from the contract, independently of the sink's encoding code.
import type { StarRocksEmulator } from '@sluice/testkit';
import type mysql from 'mysql2/promise';
import pg from 'pg';
import type { Oracle, ScalarKind, ZooColumn } from './zoo.ts';

/** The worker's session settings: the oracle reads PostgreSQL's text under the same ones. */
export const SESSION_SETTINGS = [
  `set datestyle = 'ISO, MDY'`,
  `set timezone = 'UTC'`,
  `set intervalstyle = 'postgres'`,
  `set extra_float_digits = 3`,
  `set bytea_output = 'hex'`,
];

/** A pg client that returns every value as PostgreSQL's own text. */
export async function textClient(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client({ ...config, types: { getTypeParser: () => (value: string) => value } });
  client.on('error', () => undefined);
  await client.connect();
  for (const statement of SESSION_SETTINGS) await client.query(statement);
  return client;
}

// ---------------------------------------------------------------------------------------------------
// JSON with number lexemes kept (JSON.parse would round them before we could compare).

export type Json = null | boolean | string | { num: string } | Json[] | { obj: Map<string, Json> };

/** Parses JSON keeping numbers as their text; `allowBareNull` also accepts `NULL` (StarRocks array text). */
export function parseJson(text: string, allowBareNull = false): Json {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at ${at} in ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`);
  };
  const space = () => {
    while (at < text.length && ' \t\r\n'.includes(text[at]!)) at++;
  };
  const value = (): Json => {
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const obj = new Map<string, Json>();
      space();
      if (text[at] === '}') {
        at++;
        return { obj };
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail('expected a key');
        const key = string();
        space();
        if (text[at++] !== ':') fail('expected :');
        obj.set(key, value());
        space();
        const next = text[at++];
        if (next === '}') return { obj };
        if (next !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      at++;
      const list: Json[] = [];
      space();
      if (text[at] === ']') {
        at++;
        return list;
      }
      for (;;) {
        list.push(value());
        space();
        const next = text[at++];
        if (next === ']') return list;
        if (next !== ',') fail('expected , or ]');
      }
    }
    if (c === '"') return string();
    for (const [word, result] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return result;
      }
    }
    if (allowBareNull && text.startsWith('NULL', at)) {
      at += 4;
      return null;
    }
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/.exec(text.slice(at, at + 2_000));
    if (!match) return fail('unexpected character');
    at += match[0].length;
    return { num: match[0] };
  };
  const string = (): string => {
    at++; // opening quote
    let out = '';
    for (;;) {
      const c = text[at++];
      if (c === undefined) fail('unterminated string');
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[at++];
      const simple: Record<string, string> = {
        '"': '"',
        '\\': '\\',
        '/': '/',
        b: '\b',
        f: '\f',
        n: '\n',
        r: '\r',
        t: '\t',
      };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === 'u') {
        out += String.fromCharCode(Number.parseInt(text.slice(at, at + 4), 16));
        at += 4;
      } else fail('bad escape');
    }
  };
  const result = value();
  space();
  if (at !== text.length) fail('trailing characters');
  return result;
}

/** A decimal's exact value as `[-]digits e exponent` with no leading/trailing zeros ("0" for zero). */
export function canonicalDecimal(text: string): string | undefined {
  const match = /^\s*([-+])?(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?\s*$/.exec(text);
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) return undefined;
  let digits = `${match[2]}${match[3] ?? ''}`;
  let exponent = Number(match[4] ?? 0) - (match[3] ?? '').length;
  digits = digits.replace(/^0+/, '');
  if (digits === '') return '0';
  const trailing = /0*$/.exec(digits)![0].length;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  return `${match[1] === '-' ? '-' : ''}${digits}e${exponent}`;
}

const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;

function integerValue(lexeme: string): bigint | undefined {
  const canonical = canonicalDecimal(lexeme);
  if (canonical === undefined) return undefined;
  if (canonical === '0') return 0n;
  const [, sign, digits, exponent] = /^(-?)(\d+)e(-?\d+)$/.exec(canonical)!;
  if (Number(exponent) < 0 || Number(exponent) > 40) return undefined;
  return BigInt(`${sign}${digits}${'0'.repeat(Number(exponent))}`);
}

/** Whether StarRocks' JSON (int64/uint64/double) holds this number exactly. */
export function jsonNumberRepresentable(lexeme: string): boolean {
  const integer = integerValue(lexeme);
  if (integer !== undefined && integer >= I64_MIN && integer <= U64_MAX) return true;
  const double = Number(lexeme);
  return Number.isFinite(double) && canonicalDecimal(String(double)) === canonicalDecimal(lexeme);
}

function jsonNumbersEqual(source: string, sink: string): boolean {
  if (canonicalDecimal(source) === canonicalDecimal(sink)) return true;
  // A double may print with more digits than the shortest form; the same double is the same value.
  const integer = integerValue(source);
  const exactInteger = integer !== undefined && integer >= I64_MIN && integer <= U64_MAX;
  return !exactInteger && Number(source) === Number(sink);
}

/** Undefined when equal as parsed JSON (numbers exact), else where they differ. */
export function jsonDifference(source: Json, sink: Json, path = '$'): string | undefined {
  if (source === null || typeof source !== 'object' || sink === null || typeof sink !== 'object') {
    return source === sink ? undefined : `${path}: ${show(source)} vs ${show(sink)}`;
  }
  if ('num' in source) {
    if (!jsonNumberRepresentable(source.num))
      return `${path}: test data error, ${source.num} has no exact StarRocks JSON form`;
    return 'num' in sink && jsonNumbersEqual(source.num, sink.num)
      ? undefined
      : `${path}: ${source.num} vs ${show(sink)}`;
  }
  if (Array.isArray(source)) {
    if (!Array.isArray(sink) || sink.length !== source.length)
      return `${path}: array of ${source.length} vs ${show(sink)}`;
    for (let i = 0; i < source.length; i++) {
      const difference = jsonDifference(source[i]!, sink[i]!, `${path}[${i}]`);
      if (difference) return difference;
    }
    return undefined;
  }
  if (!('obj' in sink)) return `${path}: object vs ${show(sink)}`;
  const keys = [...source.obj.keys()].sort();
  const sinkKeys = [...sink.obj.keys()].sort();
  if (JSON.stringify(keys) !== JSON.stringify(sinkKeys))
    return `${path}: keys ${JSON.stringify(keys)} vs ${JSON.stringify(sinkKeys)}`;
  for (const key of keys) {
    const difference = jsonDifference(source.obj.get(key)!, sink.obj.get(key)!, `${path}.${key}`);
    if (difference) return difference;
  }
  return undefined;
}

function show(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if ('num' in value) return value.num;
  if (Array.isArray(value)) return `[${value.map(show).join(',')}]`;
  return `{${[...value.obj].map(([k, v]) => `${JSON.stringify(k)}:${show(v)}`).join(',')}}`;
}

// ---------------------------------------------------------------------------------------------------
// Scalars.

const PG_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const PG_DATETIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(\+00)?$/;
const SINK_DATETIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;

/** A sink value as text (MySQL text protocol gives strings; a real server may give numbers, Buffers). */
function sinkText(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'object' && value !== null && 'num' in value) return (value as { num: string }).num;
  return String(value);
}

/** PostgreSQL date text → StarRocks DATE text, or undefined when StarRocks has no such date. */
export function representableDate(source: string): string | undefined {
  const match = PG_DATE.exec(source);
  return match && match[1] !== '0000' ? source : undefined;
}

/** PostgreSQL timestamp[tz] text (UTC) → `YYYY-MM-DD HH:MM:SS.ffffff`, or undefined when unrepresentable. */
export function representableDatetime(source: string): string | undefined {
  const match = PG_DATETIME.exec(source);
  if (!match || match[1] === '0000') return undefined;
  return `${match[1]}-${match[2]}-${match[3]} ${match[4]}:${match[5]}:${match[6]}.${(match[7] ?? '').padEnd(6, '0')}`;
}

function sinkDatetime(value: unknown): string | undefined {
  const match = SINK_DATETIME.exec(sinkText(value));
  if (!match) return undefined;
  const fraction = (match[7] ?? '').padEnd(6, '0');
  if (/[1-9]/.test(fraction.slice(6))) return undefined;
  return `${match[1]}-${match[2]}-${match[3]} ${match[4]}:${match[5]}:${match[6]}.${fraction.slice(0, 6)}`;
}

function floatOf(value: unknown): number {
  if (typeof value === 'number') return value;
  const text = sinkText(value).trim();
  if (/^[-+]?(inf|infinity)$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^[-+]?nan$/i.test(text)) return Number.NaN;
  return text === '' ? Number.NaN : Number(text);
}

/** Undefined when `sink` is `source` under the kind's rule, else why not. `source` is PostgreSQL's text. */
export function scalarDifference(kind: ScalarKind, source: string, sink: unknown): string | undefined {
  switch (kind) {
    case 'bool': {
      const expected = source === 't' || source === 'true';
      const text = sinkText(sink).toLowerCase();
      const actual = sink === true || text === '1' || text === 'true';
      const valid = typeof sink === 'boolean' || ['0', '1', 'true', 'false'].includes(text);
      return valid && actual === expected ? undefined : `bool ${source} vs ${sinkText(sink)}`;
    }
    case 'int': {
      const text = sinkText(sink);
      return /^-?\d+$/.test(text) && BigInt(text) === BigInt(source) ? undefined : `int ${source} vs ${text}`;
    }
    case 'float4':
    case 'float8': {
      const round = kind === 'float4' ? Math.fround : (x: number) => x;
      const expected = round(Number(source));
      const actual = round(floatOf(sink));
      return Object.is(expected, actual) ? undefined : `${kind} ${source} vs ${sinkText(sink)} (${actual})`;
    }
    case 'decimal': {
      const expected = canonicalDecimal(source);
      if (expected === undefined) return `test data error: ${source} is no decimal`;
      return canonicalDecimal(sinkText(sink)) === expected
        ? undefined
        : `decimal ${source} vs ${sinkText(sink)}`;
    }
    case 'text':
      return typeof sink === 'string' || Buffer.isBuffer(sink) || typeof sink === 'number'
        ? sinkText(sink) === source
          ? undefined
          : `text ${JSON.stringify(source)} vs ${JSON.stringify(sinkText(sink))}`
        : `text ${JSON.stringify(source)} vs ${typeof sink} ${JSON.stringify(sink)}`;
    case 'bytes': {
      if (!/^\\x[0-9a-f]*$/.test(source)) return `test data error: bytea text ${source}`;
      const expected = Buffer.from(source.slice(2), 'hex');
      const actual = Buffer.isBuffer(sink) ? sink : Buffer.from(sinkText(sink), 'utf8');
      return expected.equals(actual)
        ? undefined
        : `bytes ${expected.toString('hex').slice(0, 80)} vs ${actual.toString('hex').slice(0, 80)} (${actual.length} bytes${Buffer.isBuffer(sink) ? '' : ', sink gave text'})`;
    }
    case 'date': {
      const expected = representableDate(source);
      if (expected === undefined) return `test data error: date ${source} has no StarRocks form`;
      return sinkText(sink) === expected ? undefined : `date ${source} vs ${sinkText(sink)}`;
    }
    case 'datetime': {
      const expected = representableDatetime(source);
      if (expected === undefined) return `test data error: timestamp ${source} has no StarRocks form`;
      return sinkDatetime(sink) === expected ? undefined : `datetime ${source} vs ${sinkText(sink)}`;
    }
    case 'json': {
      let actual: Json;
      try {
        actual = parseJson(sinkText(sink));
      } catch (error) {
        return `json: the sink's ${JSON.stringify(sinkText(sink).slice(0, 80))} does not parse (${(error as Error).message})`;
      }
      return jsonDifference(parseJson(source), actual);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Tables.

export interface SourceRow {
  key: string;
  /** Column → PostgreSQL's text (null for NULL). */
  values: Map<string, string | null>;
  /** Array columns → elements' text (null elements null) and dimensions. */
  arrays: Map<string, { ndims: number; elements: (string | null)[] }>;
}

/** Reads a table's rows as PostgreSQL's text, keyed by `id`. */
export async function readSource(
  client: pg.Client,
  table: string,
  columns: ZooColumn[],
): Promise<Map<string, SourceRow>> {
  const arrays = columns.filter((c) => c.oracle.kind === 'array' || c.oracle.kind === 'json-array');
  const select = [
    'id',
    ...columns.map((c) => pg.escapeIdentifier(c.name)),
    ...arrays.flatMap((c) => {
      const name = pg.escapeIdentifier(c.name);
      return [
        `array_ndims(${name}) as ${pg.escapeIdentifier(`${c.name}__ndims`)}`,
        `(select coalesce(json_agg(e::text order by o), '[]') from unnest(${name}) with ordinality u(e, o)) as ${pg.escapeIdentifier(`${c.name}__elements`)}`,
      ];
    }),
  ];
  const result = await client.query<Record<string, string | null>>(
    `select ${select.join(', ')} from ${pg.escapeIdentifier(table)} order by id`,
  );
  const rows = new Map<string, SourceRow>();
  for (const row of result.rows) {
    const values = new Map(columns.map((c) => [c.name, row[c.name] ?? null] as const));
    const arrayValues = new Map<string, { ndims: number; elements: (string | null)[] }>();
    for (const c of arrays) {
      if (row[c.name] === null) continue;
      arrayValues.set(c.name, {
        ndims: Number(row[`${c.name}__ndims`] ?? 1),
        elements: JSON.parse(row[`${c.name}__elements`] ?? '[]') as (string | null)[],
      });
    }
    rows.set(String(row.id), { key: String(row.id), values, arrays: arrayValues });
  }
  return rows;
}

export interface SinkTable {
  /** Column name (lower case) → StarRocks type as information_schema prints it. */
  types: Map<string, string>;
  /** Key → column (lower case) → value as read. */
  rows: Map<string, Map<string, unknown>>;
  /** Values taken from the emulator's stored rows because the MySQL text can't express them. */
  refined: string[];
}

export interface SinkReader {
  read(table: string): Promise<SinkTable>;
}

/**
 * Reads over the MySQL protocol (works against a real StarRocks). With `emulator`, values the emulator's
 * MySQL port prints lossily are taken from its stored rows instead: FLOAT/DOUBLE `0` (the sign of -0 is
 * lost by `String(-0)`), ARRAY<FLOAT/DOUBLE> (printed by `JSON.stringify`, NaN/±Infinity → null), and
 * VARBINARY (sent as utf8 text, not bytes; a stored string is the bytes StarRocks would hold: its UTF-8).
 */
export function mysqlSinkReader(
  connection: mysql.Connection,
  database: string,
  emulator?: StarRocksEmulator,
): SinkReader {
  return {
    async read(table) {
      const [columns] = (await connection.query(
        `select COLUMN_NAME, COLUMN_TYPE from information_schema.columns where TABLE_SCHEMA = '${database}' and TABLE_NAME = '${table}'`,
      )) as unknown as [{ COLUMN_NAME: string; COLUMN_TYPE: string }[]];
      const types = new Map(columns.map((c) => [c.COLUMN_NAME.toLowerCase(), c.COLUMN_TYPE]));
      const [rows] = (await connection.query(`select * from \`${database}\`.\`${table}\``)) as unknown as [
        Record<string, unknown>[],
      ];
      const stored = new Map<string, Record<string, unknown>>();
      if (emulator) {
        for (const row of emulator.rows(database, table)) stored.set(String(row.id), row);
      }
      const refined = new Set<string>();
      const out = new Map<string, Map<string, unknown>>();
      for (const row of rows) {
        const key = String(row.id);
        const values = new Map<string, unknown>();
        for (const [name, value] of Object.entries(row)) {
          const column = name.toLowerCase();
          const type = (types.get(column) ?? '').toLowerCase();
          let read = value;
          const original = stored.get(key);
          if (original && value !== null) {
            const lossyFloat = /^(float|double)$/.test(type) && /^-?0$/.test(sinkText(value));
            const lossyArray = /^array<(float|double|varbinary)/.test(type);
            const binary = /^varbinary/.test(type) && !Buffer.isBuffer(value);
            if (lossyFloat || lossyArray || binary) {
              const storedValue = Object.entries(original).find(([n]) => n.toLowerCase() === column)?.[1];
              read =
                binary && typeof storedValue === 'string' ? Buffer.from(storedValue, 'utf8') : storedValue;
              refined.add(`${column} (${type})`);
            }
          }
          values.set(column, read);
        }
        out.set(key, values);
      }
      return { types, rows: out, refined: [...refined] };
    },
  };
}

export interface Difference {
  table: string;
  key: string;
  column: string;
  problem: string;
}

function clampDate(source: string, element: 'date' | 'datetime'): string {
  const low = /^-infinity$|BC$/.test(source);
  if (element === 'date') return low ? '0000-01-01' : '9999-12-31';
  return low ? '0000-01-01 00:00:00.000000' : '9999-12-31 23:59:59.999999';
}

function arrayElements(sink: unknown): Json[] | string {
  if (Array.isArray(sink))
    return sink.map((e) =>
      typeof e === 'number' ? { num: Object.is(e, -0) ? '-0' : String(e) } : (e as Json),
    );
  try {
    const parsed = parseJson(sinkText(sink), true);
    return Array.isArray(parsed) ? parsed : `not an array: ${sinkText(sink).slice(0, 80)}`;
  } catch (error) {
    return `unparsable array ${JSON.stringify(sinkText(sink).slice(0, 80))}: ${(error as Error).message}`;
  }
}

function elementValue(element: Json): unknown {
  if (element !== null && typeof element === 'object' && 'num' in element) return element.num;
  if (typeof element === 'number') return element;
  return element;
}

/** Why the sink's value differs from the source's under the column's oracle, or undefined. */
function valueDifference(
  oracle: Oracle,
  source: SourceRow,
  column: string,
  sink: unknown,
): string | undefined {
  const text = source.values.get(column) ?? null;
  if (text === null)
    return sink === null || sink === undefined
      ? undefined
      : `NULL vs ${JSON.stringify(sinkText(sink)).slice(0, 120)}`;
  if (sink === null || sink === undefined) {
    if (oracle.kind === 'nulled') {
      const representable = (oracle.element === 'date' ? representableDate : representableDatetime)(text);
      return representable === undefined ? undefined : `${text} vs NULL`;
    }
    return `${text.length > 120 ? `${text.slice(0, 120)}…` : text} vs NULL`;
  }
  switch (oracle.kind) {
    case 'clamp':
    case 'nulled': {
      const representable = (oracle.element === 'date' ? representableDate : representableDatetime)(text);
      if (representable !== undefined) return scalarDifference(oracle.element, text, sink);
      if (oracle.kind === 'nulled') return `${text} (unrepresentable, policy NULL) vs ${sinkText(sink)}`;
      const expected = clampDate(text, oracle.element);
      const actual = oracle.element === 'date' ? sinkText(sink) : sinkDatetime(sink);
      return actual === expected ? undefined : `${text} clamps to ${expected}, sink has ${sinkText(sink)}`;
    }
    case 'array':
    case 'json-array': {
      const array = source.arrays.get(column)!;
      if (array.ndims > 1) return `test data error: ${array.ndims}-D array in an ARRAY column`;
      const elements = oracle.kind === 'json-array' ? jsonArray(sink) : arrayElements(sink);
      if (typeof elements === 'string') return elements;
      if (elements.length !== array.elements.length)
        return `${array.elements.length} elements vs ${elements.length}: ${text.slice(0, 120)} vs ${sinkText(sink).slice(0, 120)}`;
      for (let i = 0; i < elements.length; i++) {
        const expected = array.elements[i]!;
        const actual = elements[i]!;
        if (expected === null || actual === null) {
          if (expected !== actual) return `element ${i}: ${expected} vs ${show(actual)}`;
          continue;
        }
        const difference =
          oracle.kind === 'json-array'
            ? jsonDifference(parseJson(expected), actual)
            : scalarDifference(oracle.element, expected, elementValue(actual));
        if (difference) return `element ${i}: ${difference}`;
      }
      return undefined;
    }
    default:
      return scalarDifference(oracle.kind, text, sink);
  }
}

function jsonArray(sink: unknown): Json[] | string {
  try {
    const parsed = parseJson(sinkText(sink));
    return Array.isArray(parsed) ? parsed : `not a JSON array: ${sinkText(sink).slice(0, 80)}`;
  } catch (error) {
    return `unparsable JSON ${JSON.stringify(sinkText(sink).slice(0, 80))}: ${(error as Error).message}`;
  }
}

/** Every difference between source and sink, both directions, keyed by `id`. */
export async function compareTable(
  client: pg.Client,
  reader: SinkReader,
  table: string,
  columns: ZooColumn[],
): Promise<{ differences: Difference[]; sourceRows: number; sinkRows: number; refined: string[] }> {
  const [source, sink] = [await readSource(client, table, columns), await reader.read(table)];
  const differences: Difference[] = [];
  const add = (key: string, column: string, problem: string) =>
    differences.push({ table, key, column, problem });
  for (const c of columns) {
    const type = sink.types.get(c.name.toLowerCase());
    if (type === undefined) add('*', c.name, 'column missing in the sink');
    else if (!c.oracle.sinkType.test(type))
      add('*', c.name, `sink type ${type}, expected ${c.oracle.sinkType}`);
  }
  const known = new Set(['id', ...columns.map((c) => c.name.toLowerCase())]);
  for (const name of sink.types.keys()) if (!known.has(name)) add('*', name, 'column in the sink only');
  for (const [key, row] of source) {
    const sinkRow = sink.rows.get(key);
    if (!sinkRow) {
      add(key, '*', 'source row missing in the sink');
      continue;
    }
    for (const c of columns) {
      if (!sink.types.has(c.name.toLowerCase())) continue;
      const difference = valueDifference(c.oracle, row, c.name, sinkRow.get(c.name.toLowerCase()));
      if (difference) add(key, c.name, difference);
    }
  }
  for (const key of sink.rows.keys()) if (!source.has(key)) add(key, '*', 'sink row not in the source');
  return { differences, sourceRows: source.size, sinkRows: sink.rows.size, refined: sink.refined };
}

export function formatDifferences(differences: Difference[], limit = 40): string {
  const lines = differences
    .slice(0, limit)
    .map(
      (d) =>
        `  ${d.table} id=${d.key} ${d.column}: ${d.problem.length > 300 ? `${d.problem.slice(0, 300)}…` : d.problem}`,
    );
  if (differences.length > limit) lines.push(`  … and ${differences.length - limit} more`);
  return lines.join('\n');
}
