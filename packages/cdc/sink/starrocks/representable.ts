// What StarRocks can hold exactly. StarRocks accepts much that it then changes: under the default
// non-strict mode a value that fails conversion is loaded as NULL (be/src/exec/file_scanner.cpp
// `FileScanner::materialize`), and even under strict mode array elements that fail become NULL elements,
// a PostgreSQL BC date is parsed up to the day and stored as AD (types/timestamp_value.cpp `from_string`
// stops at the space), and JSON numbers are held as int64/uint64/double (a longer number is rounded). So the
// sink checks every value against its column's rule here, before the load, and never relies on StarRocks
// to refuse. A value that fails has a reason and, where one exists, the nearest value the type holds.
import type { ColumnValue } from '../../change-event.ts';
import type { ValueRule } from './type-map.ts';

export interface Unrepresentable {
  /** Why StarRocks can't hold it, e.g. "is before 0000-01-01". */
  reason: string;
  /** The nearest value the column holds, when there is one (the `clamp` choice). */
  clamped?: ColumnValue;
}

type Value = Exclude<ColumnValue, symbol>;

export const MIN_DATE = '0000-01-01';
export const MAX_DATE = '9999-12-31';
export const MIN_DATETIME = '0000-01-01 00:00:00';
export const MAX_DATETIME = '9999-12-31 23:59:59.999999';
// What StarRocks reads exactly: it silently drops anything after a valid date or time (a ` BC`, an offset
// other than UTC), so only these shapes pass (be/src/types/date_value.cpp, timestamp_value.cpp from_string).
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?(\+00(:00)?)?$/;

/** Undefined when `value` arrives exactly in a column with `rule`; otherwise why not. */
export function unrepresentable(value: Value, rule: ValueRule): Unrepresentable | undefined {
  if (value === null) return undefined;
  switch (rule.kind) {
    case 'boolean':
    case 'integer':
    case 'float': // PostgreSQL's NaN and ±Infinity are StarRocks' too; -0 is written as -0.0
    case 'json-value':
      return undefined;
    case 'decimal':
      return decimal(value, rule.precision, rule.scale);
    case 'varchar': {
      const text = postgresText(value);
      // A UTF-16 code unit is at most 3 UTF-8 bytes: most values fit without counting.
      if (text.length * 3 <= rule.bytes) return undefined;
      const bytes = Buffer.byteLength(text);
      if (bytes <= rule.bytes) return undefined;
      return {
        reason: `is ${bytes} bytes, over VARCHAR(${rule.bytes})`,
        clamped: truncateUtf8(text, rule.bytes),
      };
    }
    case 'binary': {
      const bytes = typeof value === 'string' ? value.length / 2 : 0;
      if (bytes <= rule.bytes) return undefined;
      return {
        reason: `is ${bytes} bytes, over VARBINARY(${rule.bytes})`,
        clamped: (value as string).slice(0, rule.bytes * 2),
      };
    }
    case 'date':
    case 'datetime':
      return calendar(value, rule.kind);
    case 'json':
      return typeof value === 'string' ? jsonDocument(value, rule.duplicateKeys) : undefined;
    case 'json-array': {
      if (!Array.isArray(value)) return undefined;
      for (const element of value) {
        if (typeof element !== 'string') continue;
        const problem = jsonText(element);
        if (problem) return { reason: `has an element that ${problem}` };
      }
      return undefined;
    }
    case 'array':
      return array(value, rule.element);
  }
}

function array(value: Value, element: ValueRule): Unrepresentable | undefined {
  if (!Array.isArray(value)) return undefined;
  let first: Unrepresentable | undefined;
  let clampable = true;
  const clamped: ColumnValue[] = [];
  for (let index = 0; index < value.length; index++) {
    const item = value[index] as Value;
    if (Array.isArray(item)) {
      return { reason: 'is a multi-dimensional array; a StarRocks ARRAY column holds one dimension' };
    }
    const problem = unrepresentable(item, element);
    if (problem) {
      first ??= { reason: `has element ${index + 1} (${shortText(item)}) that ${problem.reason}` };
      if (problem.clamped === undefined) clampable = false;
      else clamped.push(problem.clamped);
    } else clamped.push(item);
  }
  if (!first) return undefined;
  return clampable ? { ...first, clamped } : first;
}

function decimal(value: Value, precision: number, scale: number): Unrepresentable | undefined {
  const text = String(value);
  if (text === 'NaN') return { reason: `is NaN, which DECIMAL(${precision}, ${scale}) can't hold` };
  if (text === 'Infinity' || text === '-Infinity') {
    const max = `${'9'.repeat(precision - scale)}${scale > 0 ? `.${'9'.repeat(scale)}` : ''}`;
    return {
      reason: `is ${text}, which DECIMAL(${precision}, ${scale}) can't hold`,
      clamped: text === 'Infinity' ? max : `-${max}`,
    };
  }
  return undefined; // numeric(p, s) text always fits DECIMAL(p, s)
}

function calendar(value: Value, kind: 'date' | 'datetime'): Unrepresentable | undefined {
  if (typeof value !== 'string') return { reason: 'is not a date' };
  const type = kind === 'date' ? 'DATE' : 'DATETIME';
  const min = kind === 'date' ? MIN_DATE : MIN_DATETIME;
  const max = kind === 'date' ? MAX_DATE : MAX_DATETIME;
  if (value === 'infinity') return { reason: `is infinity, which ${type} can't hold`, clamped: max };
  if (value === '-infinity') return { reason: `is -infinity, which ${type} can't hold`, clamped: min };
  if (value.endsWith(' BC')) {
    return {
      reason: `is a BC date; ${type} starts at ${min} (StarRocks would store it as AD)`,
      clamped: min,
    };
  }
  if ((kind === 'date' ? DATE : DATETIME).test(value)) return undefined;
  // PostgreSQL prints years past 9999 with more digits: 10000-01-01.
  if (/^\d{5,}-/.test(value)) return { reason: `is after ${max}, where ${type} ends`, clamped: max };
  return { reason: `is not a ${type} StarRocks reads exactly` };
}

/** A json/jsonb document StarRocks' JSON type holds exactly, or why not. */
function jsonDocument(text: string, duplicateKeys: boolean): Unrepresentable | undefined {
  if (/^\s*null\s*$/.test(text)) {
    return { reason: "is the JSON document null, which a StarRocks load can't tell from SQL NULL" };
  }
  // Any number of at most 15 significant digits without an exponent is a double exactly (DBL_DIG): jsonb
  // text without a longer run of digits and dots, and without an `e`, needs no scan.
  if (!duplicateKeys && !INEXACT_NUMBER_HINT.test(text)) return undefined;
  const problem = jsonText(text);
  if (!problem) return undefined;
  // Clamping a number means letting StarRocks round it to the nearest double; a duplicate key has no
  // nearest form.
  return problem.includes('twice') ? { reason: problem } : { reason: problem, clamped: text };
}

/**
 * Scans JSON text for what StarRocks' JSON type changes: numbers that int64, uint64 or double can't hold
 * exactly (StarRocks rounds them), and duplicate keys in an object (only `json` can have them).
 */
export function jsonText(text: string): string | undefined {
  let position = 0;
  const keys: Set<string>[] = [];
  const length = text.length;
  while (position < length) {
    const code = text.charCodeAt(position);
    if (code === 0x22 /* " */) {
      const start = position;
      position = endOfString(text, position);
      // A string followed by `:` is a key of the innermost object.
      let next = position;
      while (next < length && isSpace(text.charCodeAt(next))) next++;
      if (text.charCodeAt(next) === 0x3a /* : */) {
        const scope = keys[keys.length - 1];
        const key = JSON.parse(text.slice(start, position)) as string;
        if (scope?.has(key)) return `has the key ${JSON.stringify(key)} twice in one object`;
        scope?.add(key);
      }
    } else if (code === 0x7b /* { */) {
      keys.push(new Set());
      position++;
    } else if (code === 0x7d /* } */) {
      keys.pop();
      position++;
    } else if (code === 0x2d /* - */ || (code >= 0x30 && code <= 0x39)) {
      const start = position;
      position = endOfNumber(text, position);
      const number = text.slice(start, position);
      if (!exactJsonNumber(number)) {
        return `has the number ${number.length > 40 ? `${number.slice(0, 40)}…` : number}, which StarRocks' JSON holds only rounded`;
      }
    } else position++;
  }
  return undefined;
}

/**
 * JSON text as StarRocks' JSON reader takes it: it refuses an integer beyond int64/uint64 (simdjson) and a
 * number beyond double, where PostgreSQL's jsonb prints exact doubles such as 1e20 as long integers. Such
 * numbers are written in exponent form — the same double, or (for values the job chose to clamp) the
 * nearest one. Everything else is returned as it is.
 */
export function jsonForStarRocks(text: string): string {
  if (!/\d{20}|[eE][-+]?\d{3}/.test(text)) return text;
  let out = '';
  let position = 0;
  let copied = 0;
  const length = text.length;
  while (position < length) {
    const code = text.charCodeAt(position);
    if (code === 0x22) {
      position = endOfString(text, position);
    } else if (code === 0x2d || (code >= 0x30 && code <= 0x39)) {
      const start = position;
      position = endOfNumber(text, position);
      const number = text.slice(start, position);
      const rewritten = starRocksNumber(number);
      if (rewritten !== number) {
        out += text.slice(copied, start) + rewritten;
        copied = position;
      }
    } else position++;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

function starRocksNumber(token: string): string {
  const integer = /^-?\d+$/.test(token);
  if (integer) {
    const value = BigInt(token);
    if (value >= INT64_MIN && value <= UINT64_MAX) return token;
  }
  const double = Number(token);
  if (!Number.isFinite(double)) return double > 0 ? '1.7976931348623157e+308' : '-1.7976931348623157e+308';
  if (integer) return double.toExponential();
  // A number below the smallest double: simdjson refuses what a double rounds to zero.
  if (double === 0 && canonical(token) !== canonical('0') && canonical(token) !== '-0') return '0.0';
  return token;
}

/** A run of 16+ digits or dots, or an exponent: where a JSON number may not be a double exactly. */
const INEXACT_NUMBER_HINT = /[0-9.]{16}|[0-9][eE]/;

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** Whether StarRocks' JSON (int64, uint64 or double) holds this JSON number exactly. */
export function exactJsonNumber(text: string): boolean {
  if (/^-?\d+$/.test(text)) {
    const value = BigInt(text);
    if (value >= INT64_MIN && value <= UINT64_MAX) return true;
  }
  const double = Number(text);
  if (!Number.isFinite(double)) return false;
  return sameDecimal(text, double);
}

/** Whether the decimal `text` denotes exactly the value whose shortest round-trip form is `String(double)`. */
function sameDecimal(text: string, double: number): boolean {
  return canonical(text) === canonical(Object.is(double, -0) ? '-0' : String(double));
}

/** `-1.2300e2` → `-123`: sign, significant digits, exponent. */
function canonical(text: string): string {
  const match = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text);
  if (!match) return text;
  const [, sign, integer = '', fraction = '', exponent = '0'] = match;
  let digits = integer + fraction;
  let power = Number(exponent) + integer.length;
  const leading = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(leading);
  power -= leading;
  digits = digits.replace(/0+$/, '');
  if (digits === '') return `${sign}0`;
  return `${sign}0.${digits}e${power}`;
}

/** The position just past the JSON string that opens at `start`. */
function endOfString(text: string, start: number): number {
  let position = start + 1;
  while (position < text.length) {
    const code = text.charCodeAt(position);
    if (code === 0x5c) position += 2;
    else if (code === 0x22) return position + 1;
    else position++;
  }
  return position;
}

/** The position just past the JSON number that starts at `start`. */
function endOfNumber(text: string, start: number): number {
  let position = start + 1;
  while (position < text.length && isNumberChar(text.charCodeAt(position))) position++;
  return position;
}

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

function isNumberChar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2e ||
    code === 0x65 ||
    code === 0x45 ||
    code === 0x2b ||
    code === 0x2d
  );
}

/**
 * PostgreSQL's text of a decoded value: strings as they are, booleans `t`/`f`, numbers as their shortest
 * round-trip form, arrays in PostgreSQL's `{…}` syntax (lower bounds other than 1 are not kept).
 */
export function postgresText(value: Value): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value === null) return 'NULL';
  return `{${value.map((element) => arrayElement(element as Value)).join(',')}}`;
}

function arrayElement(value: Value): string {
  if (value === null) return 'NULL';
  if (Array.isArray(value)) return postgresText(value);
  const text = postgresText(value);
  if (text !== '' && !/[{}",\\\s]/.test(text) && text.toUpperCase() !== 'NULL') return text;
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** The longest prefix of `text` that is at most `bytes` UTF-8 bytes and ends on a character boundary. */
function truncateUtf8(text: string, bytes: number): string {
  const buffer = Buffer.from(text);
  let end = bytes;
  while (end > 0 && (buffer[end]! & 0xc0) === 0x80) end--;
  return buffer.subarray(0, end).toString();
}

/** A value shortened for messages. */
export function shortText(value: ColumnValue): string {
  const text = typeof value === 'symbol' ? '(unchanged)' : JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}
