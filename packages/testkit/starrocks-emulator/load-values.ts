// How one JSON field value becomes a stored column value in a StarRocks JSON Stream Load, following
// StarRocks' BE in two stages, as it does:
//  1. the JSON reader (be/src/exec/json_scanner.cpp `JsonScanner::_construct_json_types` picks a read type per
//     source column: INT family/FLOAT/DOUBLE/VARCHAR/CHAR/JSON/ARRAY as themselves, every other type as
//     VARCHAR; be/src/formats/json/{numeric,binary,nullable}_column.cpp read the value). A value the reader
//     can't take is an error; `JsonReader::_construct_column` passes invalid_as_null = !strict_mode, so it is
//     NULL without strict mode and filters the row with it.
//  2. the cast from the read type to the column type (be/src/exprs/cast_expr.cpp): a failed cast is NULL,
//     never an error; only strict mode filters it (be/src/exec/file_scanner.cpp `FileScanner::materialize`).
// The JSON body is parsed here with number tokens kept as text (simdjson keeps int64/uint64/double apart).
import type { SqlType } from './sql-parser.ts';

export type JsonNode =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'num'; raw: string }
  | { t: 'str'; v: string }
  | { t: 'arr'; items: JsonNode[]; raw: string }
  | { t: 'obj'; entries: [string, JsonNode][]; raw: string };

export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
}

/** Parses JSON text keeping number tokens and duplicate object keys (simdjson does not merge them). */
export function parseJson(text: string): JsonNode {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at offset ${i}`);
  };
  const string = (): string => {
    i++;
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        const e = text[i + 1];
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
        if (e !== undefined && e in simple) {
          out += simple[e];
          i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail('invalid escape');
        continue;
      }
      if (c < ' ') fail('control character in string');
      out += c;
      i++;
    }
  };
  const value = (): JsonNode => {
    ws();
    const c = text[i];
    const start = i;
    if (c === '{') {
      i++;
      const entries: [string, JsonNode][] = [];
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'obj', entries, raw: text.slice(start, i) };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        entries.push([key, value()]);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { t: 'obj', entries, raw: text.slice(start, i) };
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const items: JsonNode[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { t: 'arr', items, raw: text.slice(start, i) };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { t: 'arr', items, raw: text.slice(start, i) };
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return { t: 'str', v: string() };
    for (const [word, node] of [
      ['true', { t: 'bool', v: true }],
      ['false', { t: 'bool', v: false }],
      ['null', { t: 'null' }],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return node;
      }
    }
    const number = /^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/.exec(text.slice(i, i + 4096));
    if (number) {
      i += number[0].length;
      return { t: 'num', raw: number[0] };
    }
    return fail('unexpected character');
  };
  const root = value();
  ws();
  if (i < text.length) fail('trailing characters');
  return root;
}

/** The value's JSON text without insignificant whitespace (simdjson::minify keeps escapes as written). */
export function minify(node: JsonNode): string {
  switch (node.t) {
    case 'null':
      return 'null';
    case 'bool':
      return String(node.v);
    case 'num':
      return node.raw;
    case 'str':
      return JSON.stringify(node.v);
    default: {
      let out = '';
      let inString = false;
      for (let i = 0; i < node.raw.length; i++) {
        const c = node.raw[i]!;
        if (inString) {
          out += c;
          if (c === '\\') out += node.raw[++i] ?? '';
          else if (c === '"') inString = false;
        } else if (c === '"') {
          inString = true;
          out += c;
        } else if (!' \t\r\n'.includes(c)) out += c;
      }
      return out;
    }
  }
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const INT_RANGES: Record<string, [bigint, bigint]> = {
  TINYINT: [-128n, 127n],
  SMALLINT: [-32768n, 32767n],
  INT: [-2147483648n, 2147483647n],
  BIGINT: [INT64_MIN, 2n ** 63n - 1n],
  LARGEINT: [-(2n ** 127n), 2n ** 127n - 1n],
};
/** TypeDescriptor::MAX_VARCHAR_LENGTH: the read type of columns the JSON reader reads as VARCHAR. */
const MAX_VARCHAR_LENGTH = 1_048_576;
/** The emulator's STRING is StarRocks' VARCHAR(65533). */
export const STRING_LENGTH = 65_533;

/** The result of one stage: a value (null = SQL NULL) or why the value was refused. */
export type Stage = { ok: true; value: unknown } | { ok: false; reason: string };
const ok = (value: unknown): Stage => ({ ok: true, value });
const bad = (reason: string): Stage => ({ ok: false, reason });

/** The type the JSON reader reads a column of `type` as (json_scanner.cpp `_construct_json_types`). */
export function readType(type: SqlType): SqlType {
  switch (type.base) {
    case 'TINYINT':
    case 'SMALLINT':
    case 'INT':
    case 'BIGINT':
    case 'FLOAT':
    case 'DOUBLE':
    case 'JSON':
      return type;
    case 'CHAR':
    case 'VARCHAR':
      return { base: type.base, length: type.length ?? 1 };
    case 'STRING':
      return { base: 'VARCHAR', length: STRING_LENGTH };
    case 'ARRAY': {
      const element = readType(type.element!);
      return { base: 'ARRAY', element };
    }
    default:
      return { base: 'VARCHAR', length: MAX_VARCHAR_LENGTH };
  }
}

/**
 * Stage 1, the JSON reader: `node` read as `type` (one of readType's results). JSON null is always SQL NULL
 * (nullable_column.cpp `add_nullable_column` checks is_null first, for every type, JSON included).
 */
export function readValue(node: JsonNode, type: SqlType, column: string): Stage {
  if (node.t === 'null') return ok(null);
  switch (type.base) {
    case 'TINYINT':
    case 'SMALLINT':
    case 'INT':
    case 'BIGINT':
    case 'FLOAT':
    case 'DOUBLE':
      return readNumeric(node, type.base, column);
    case 'CHAR':
    case 'VARCHAR':
      return readBinary(node, type.length ?? 1, column);
    case 'JSON':
      return readJson(node, column);
    case 'ARRAY': {
      // nullable_column.cpp `add_nullable_array_column`: not a JSON array is an error; each element is read
      // with invalid_as_null = true whatever strict_mode says, so a bad element is a NULL element.
      if (node.t !== 'arr') return bad(`Failed to parse value as array, column=${column}`);
      return ok(
        node.items.map((item) => {
          const read = readValue(item, type.element!, column);
          return read.ok ? read.value : null;
        }),
      );
    }
    default:
      return bad(`unsupported read type ${type.base}`);
  }
}

/** numeric_column.cpp `add_numeric_column`: numbers and numeric strings; other JSON types are errors. */
function readNumeric(node: JsonNode, base: string, column: string): Stage {
  const float = base === 'FLOAT' || base === 'DOUBLE';
  const overflow = (value: string) => bad(`Value is overflow. column=${column}, value=${value}`);
  if (node.t === 'num') {
    const integer = !/[.eE]/.test(node.raw);
    if (integer) {
      const big = BigInt(node.raw);
      // simdjson: signed_integer or unsigned_integer up to 2^64-1; beyond is big_integer, which no branch
      // of add_column_with_numeric_value takes.
      if (big < INT64_MIN || big > UINT64_MAX) return overflow(node.raw);
      // "-0" is the integer 0 (an int64), so a FLOAT/DOUBLE column gets +0, not -0.
      if (float) return ok(checkFloat(Number(big), base) ?? Number(big));
      return fitInt(big, base) ? ok(intValue(big, base)) : overflow(node.raw);
    }
    const double = Number(node.raw);
    if (!Number.isFinite(double)) return bad(`Failed to parse value as number, column=${column}`);
    // checked_cast: double → float range-checked, double → int truncated toward zero then range-checked.
    if (float) return checkFloat(double, base) === undefined ? overflow(node.raw) : ok(toFloat(double, base));
    const truncated = BigInt(Math.trunc(double));
    return fitInt(truncated, base) ? ok(intValue(truncated, base)) : overflow(node.raw);
  }
  if (node.t === 'str') {
    // add_column_with_string_value: StringParser::string_to_int (or string_to_float for FLOAT/DOUBLE); an
    // integer column falls back to string_to_float and truncates ("1.9" → 1).
    const parsed = parseFloatText(node.v);
    if (float) return parsed === undefined ? bad(unableToCast(node.v, column)) : ok(toFloat(parsed, base));
    const asInt = parseIntText(node.v);
    if (asInt !== undefined) return fitInt(asInt, base) ? ok(intValue(asInt, base)) : overflow(node.v);
    if (parsed === undefined || !Number.isFinite(parsed)) return bad(unableToCast(node.v, column));
    const truncated = BigInt(Math.trunc(parsed));
    return fitInt(truncated, base) ? ok(intValue(truncated, base)) : overflow(node.v);
  }
  return bad(`Unsupported value type. Numeric type is required. column=${column}`);
}

function unableToCast(value: string, column: string): string {
  return `Unable to cast string value to BIGINT. value=${value}, column=${column}`;
}

function fitInt(value: bigint, base: string): boolean {
  const [min, max] = INT_RANGES[base]!;
  return value >= min && value <= max;
}

/** BIGINT and LARGEINT are stored as decimal strings (beyond JS numbers), smaller integers as numbers. */
function intValue(value: bigint, base: string): unknown {
  return base === 'BIGINT' || base === 'LARGEINT' ? value.toString() : Number(value);
}

function checkFloat(value: number, base: string): number | undefined {
  if (base === 'FLOAT' && Number.isFinite(value) && Math.abs(value) > 3.4028234663852886e38) return undefined;
  return value;
}

function toFloat(value: number, base: string): number {
  return base === 'FLOAT' ? Math.fround(value) : value;
}

/** StringParser::string_to_int: optional sign and digits, surrounding whitespace allowed. */
function parseIntText(text: string): bigint | undefined {
  const trimmed = text.trim();
  return /^[-+]?\d+$/.test(trimmed) ? BigInt(trimmed) : undefined;
}

/** StringParser::string_to_float: a decimal number, or inf/infinity/nan in any case (so "NaN", "-Infinity"). */
function parseFloatText(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed)) return Number(trimmed);
  const special = /^([-+]?)(inf|infinity|nan)$/i.exec(trimmed);
  if (!special) return undefined;
  if (special[2]!.toLowerCase() === 'nan') return Number.NaN;
  return special[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

/**
 * formats/json/binary_column.cpp `add_binary_column` (the version with the capacity check): a number is its
 * token as written, a string its unescaped bytes, a boolean "1"/"0", an array/object its minified text; more
 * bytes than the read type's length is an error ("Value length is beyond the capacity").
 */
function readBinary(node: JsonNode, length: number, column: string): Stage {
  const text =
    node.t === 'num'
      ? node.raw
      : node.t === 'str'
        ? node.v
        : node.t === 'bool'
          ? node.v
            ? '1'
            : '0'
          : minify(node);
  if (Buffer.byteLength(text) > length) {
    return bad(`Value length is beyond the capacity. column=${column}, capacity=${length}`);
  }
  return ok(text);
}

/**
 * util/json_converter.cpp `SimdJsonConverter`: the value becomes a vpack document. Numbers are int64, uint64
 * or double as simdjson typed them; an integer beyond uint64 is simdjson's big_integer, which the converter
 * refuses. A JSON string stays a JSON string (it is not parsed as JSON text). Duplicate keys are all kept
 * (vpack's Builder does not check uniqueness by default).
 */
function readJson(node: JsonNode, column: string): Stage {
  const problem = badNumber(node);
  if (problem !== undefined) return bad(`Failed to convert simdjson value, json=${problem}`);
  void column;
  return ok(jsonText(node));
}

/** A number simdjson's get_number() refuses: an integer beyond 64 bits, or a double out of range (1e400). */
function badNumber(node: JsonNode): string | undefined {
  if (node.t === 'num') {
    if (/[.eE]/.test(node.raw)) return Number.isFinite(Number(node.raw)) ? undefined : node.raw;
    const big = BigInt(node.raw);
    return big < INT64_MIN || big > UINT64_MAX ? node.raw : undefined;
  }
  if (node.t === 'arr') {
    for (const item of node.items) {
      const found = badNumber(item);
      if (found !== undefined) return found;
    }
  }
  if (node.t === 'obj') {
    for (const [, item] of node.entries) {
      const found = badNumber(item);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * How StarRocks prints a stored JSON value (util/json.cpp `JsonValue::to_string`: vpack toJson with
 * singleLinePrettyPrint, so `": "` and `", "`; vpack objects iterate in index order, i.e. sorted by key).
 */
export function jsonText(node: JsonNode): string {
  switch (node.t) {
    case 'null':
      return 'null';
    case 'bool':
      return String(node.v);
    case 'str':
      return JSON.stringify(node.v);
    case 'num': {
      if (!/[.eE]/.test(node.raw)) return BigInt(node.raw).toString();
      const double = Number(node.raw);
      return Object.is(double, -0) ? '-0' : String(double);
    }
    case 'arr':
      return `[${node.items.map(jsonText).join(', ')}]`;
    case 'obj': {
      const sorted = node.entries
        .map((entry, index) => ({ entry, index }))
        .sort((a, b) => compareBytes(a.entry[0], b.entry[0]) || a.index - b.index);
      return `{${sorted.map(({ entry: [key, value] }) => `${JSON.stringify(key)}: ${jsonText(value)}`).join(', ')}}`;
    }
  }
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Stage 2, the cast from the read type's value to the column type (cast_expr.cpp). A failure is NULL.
 * `value` is what readValue produced for readType(type).
 */
export function castValue(value: unknown, type: SqlType): Stage {
  if (value === null || value === undefined) return ok(null);
  if (Buffer.isBuffer(value))
    return type.base === 'VARBINARY' ? ok(value) : castText(value.toString('latin1'), type);
  switch (type.base) {
    case 'TINYINT':
    case 'SMALLINT':
    case 'INT':
    case 'BIGINT':
    case 'FLOAT':
    case 'DOUBLE':
    case 'CHAR':
    case 'VARCHAR':
    case 'STRING':
    case 'JSON':
      return ok(value);
    case 'ARRAY': {
      // Casting ARRAY<VARCHAR> to ARRAY<T> casts each element; a failed element is a NULL element.
      const items = value as unknown[];
      return ok(
        items.map((item) => {
          const cast = castValue(item, type.element!);
          return cast.ok ? cast.value : null;
        }),
      );
    }
    default:
      return castText(String(value), type);
  }
}

/** A VARCHAR value cast to `type` (also how a DEFAULT literal becomes a value: a StringLiteral cast). */
export function castText(text: string, type: SqlType): Stage {
  const fail = (why: string) => bad(`Value '${text}' ${why} for column type ${type.base}`);
  switch (type.base) {
    case 'BOOLEAN': {
      // cast string→boolean: an integer (non-zero is true), else 'true'/'false' in any case.
      const asInt = parseIntText(text);
      if (asInt !== undefined) return ok(asInt !== 0n);
      const word = text.trim().toLowerCase();
      if (word === 'true' || word === 'false') return ok(word === 'true');
      return fail('is invalid');
    }
    case 'TINYINT':
    case 'SMALLINT':
    case 'INT':
    case 'BIGINT':
    case 'LARGEINT': {
      const asInt = parseIntText(text);
      if (asInt === undefined) return fail('is invalid');
      return fitInt(asInt, type.base) ? ok(intValue(asInt, type.base)) : fail('is out of range');
    }
    case 'FLOAT':
    case 'DOUBLE': {
      const parsed = parseFloatText(text);
      return parsed === undefined ? fail('is invalid') : ok(toFloat(parsed, type.base));
    }
    case 'DECIMAL':
      return castDecimal(text, type.precision ?? 38, type.scale ?? 0) ?? fail('is not a DECIMAL in range');
    case 'DATE': {
      const parts = parseDateTime(text, true);
      return parts ? ok(formatDate(parts)) : fail('is not a DATE');
    }
    case 'DATETIME': {
      const parts = parseDateTime(text, false);
      return parts ? ok(formatDateTime(parts)) : fail('is not a DATETIME');
    }
    case 'VARBINARY':
      // cast_expr.cpp: VARCHAR → VARBINARY copies the bytes (no hex decoding).
      return ok(Buffer.from(text, 'utf8'));
    case 'CHAR':
    case 'VARCHAR':
    case 'STRING':
      return ok(text);
    case 'JSON':
      // cast string→JSON parses the text as JSON.
      try {
        return ok(jsonText(parseJson(text)));
      } catch {
        return fail('is not JSON');
      }
    default:
      return fail('can not be cast');
  }
}

/**
 * DecimalV3Cast::from_string (runtime/decimalv3.h; be/test/runtime/decimalv3_test.cpp
 * testStringDecimal128CastWithRounding: "360.005000" into DECIMAL(10,2) is 360.01): extra fractional digits
 * round half up (away from zero for negatives); too many integer digits for the precision fails.
 */
function castDecimal(text: string, precision: number, scale: number): Stage | undefined {
  const match = /^([-+]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) return undefined;
  const negative = match[1] === '-';
  const fraction = match[3] ?? '';
  let digits = BigInt(`${match[2] || '0'}${fraction.slice(0, scale).padEnd(scale, '0')}`);
  if ((fraction[scale] ?? '0') >= '5') digits += 1n;
  if (digits >= 10n ** BigInt(precision)) return undefined;
  const plain = digits.toString().padStart(scale + 1, '0');
  const integer = plain.slice(0, plain.length - scale);
  const out = scale > 0 ? `${integer}.${plain.slice(plain.length - scale)}` : integer;
  return ok(negative && digits !== 0n ? `-${out}` : out);
}

interface DateParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  micro: number;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (year: number) => year % 4 === 0 && (year % 100 !== 0 || (year % 400 === 0 && year !== 0));
const daysIn = (year: number, month: number) => (month === 2 && isLeap(year) ? 29 : DAYS[month - 1]!);
const digit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isSpace = (c: string | undefined) => c !== undefined && ' \t\n\v\f\r'.includes(c);
const isPunct = (c: string | undefined) => c !== undefined && /^[!-/:-@[-`{-~]$/.test(c);

/**
 * types/date_value.cpp + types/timestamp_value.cpp `from_string` → util `date::from_string_to_date` /
 * `date::from_string_to_datetime`: a fixed "YYYY-MM-DD[ HH:MM:SS]" fast path, else the lenient
 * `date::from_string` scan, which reads digit groups split by punctuation, allows a space only after the day
 * and after the seconds' fraction, and stops at the first character that is neither — so anything after a
 * valid date is ignored ("0044-03-15 BC" is 0044-03-15, "2024-01-01 10:00:00+02" is 10:00:00). Then
 * `date::check` / `timestamp::check`: year ≤ 9999, a real month/day, hour < 24, minute/second < 60.
 */
export function parseDateTime(text: string, dateOnly: boolean): DateParts | undefined {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text[start])) start++;
  while (start < end && isSpace(text[end - 1])) end--;
  const s = text.slice(start, end);
  let parts: DateParts | undefined;
  if (s.length === 10) parts = fixedDate(s) ?? lenient(text);
  else if (!dateOnly && s.length >= 19 && digit(s[9])) {
    let time: number | undefined;
    if (s[10] === 'T' && digit(s[11]) && s.length === 19) time = 11;
    else if ([...s.slice(10, s.length - 8)].every(isSpace)) time = s.length - 8;
    parts = (time === undefined ? undefined : fixedDateTime(s, time)) ?? lenient(text);
  } else parts = lenient(text);
  if (!parts) return undefined;
  const { year, month, day, hour, minute, second, micro } = parts;
  if (year > 9999 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (!dateOnly && (hour > 23 || minute > 59 || second > 59 || micro > 999_999)) return undefined;
  return parts;
}

function fixedDate(s: string): DateParts | undefined {
  const ok =
    [0, 1, 2, 3, 5, 6, 8, 9].every((i) => digit(s[i])) && !digit(s[4]) && !digit(s[7]) && s.length >= 10;
  if (!ok) return undefined;
  const year = Number(s.slice(0, 4));
  const month = Number(s.slice(5, 7));
  const day = Number(s.slice(8, 10));
  if (month > 12 || month < 1 || day > daysIn(year, month)) return undefined;
  return { year, month, day, hour: 0, minute: 0, second: 0, micro: 0 };
}

function fixedDateTime(s: string, time: number): DateParts | undefined {
  const date = fixedDate(s.slice(0, 10));
  const t = s.slice(time);
  if (!date || ![0, 1, 3, 4, 6, 7].every((i) => digit(t[i])) || digit(t[2]) || digit(t[5])) return undefined;
  const [hour, minute, second] = [t.slice(0, 2), t.slice(3, 5), t.slice(6, 8)].map(Number) as [
    number,
    number,
    number,
  ];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  return { ...date, hour, minute, second };
}

/** util `date::from_string`, re-written: the MySQL-compatible scan (see parseDateTime). */
function lenient(text: string): DateParts | undefined {
  const spaceAllowed = new Set([2, 6]);
  const maxParts = 8;
  const end = text.length;
  let p = 0;
  while (p < end && isSpace(text[p])) p++;
  if (p === end || !digit(text[p])) return undefined;
  let q = p;
  while (q < end && (digit(text[q]) || text[q] === 'T')) q++;
  const run = q - p;
  let yearLength = 4;
  let compact = false;
  if (q === end || text[q] === '.') {
    yearLength = run === 4 || run === 8 || run >= 14 ? 4 : 2;
    compact = true;
  }
  const values: number[] = [];
  const lengths: number[] = [];
  let field = 0;
  let fieldLength = yearLength;
  while (p < end && digit(text[p]) && field < maxParts - 1) {
    const from = p;
    let value = 0;
    const toDelimiter = !compact && field !== 6;
    while (p < end && digit(text[p]) && (toDelimiter || fieldLength-- > 0))
      value = value * 10 + Number(text[p++]);
    if (value > 999_999) return undefined;
    values[field] = value;
    lengths[field] = p - from;
    fieldLength = 2;
    if (p === end) {
      field++;
      break;
    }
    if (field === 2 && text[p] === 'T') {
      p++;
      field++;
      continue;
    }
    if (field === 5) {
      if (text[p] === '.') {
        p++;
        fieldLength = 6;
      } else if (digit(text[p])) {
        field++;
        break;
      }
      field++;
      continue;
    }
    while (p < end && (isPunct(text[p]) || isSpace(text[p]))) {
      if (isSpace(text[p]) && !spaceAllowed.has(field)) return undefined;
      p++;
    }
    field++;
  }
  if (field < 3) return undefined;
  if (!compact) yearLength = lengths[0]!;
  let year = values[0]!;
  if (yearLength === 2) year += year < 70 ? 2000 : 1900;
  let micro = values[6] ?? 0;
  if (micro && (lengths[6] ?? 0) < 6) micro *= 10 ** (6 - (lengths[6] ?? 0));
  return {
    year,
    month: values[1] ?? 0,
    day: values[2] ?? 0,
    hour: values[3] ?? 0,
    minute: values[4] ?? 0,
    second: values[5] ?? 0,
    micro,
  };
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

function formatDate({ year, month, day }: DateParts): string {
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

function formatDateTime(parts: DateParts): string {
  const base = `${formatDate(parts)} ${pad(parts.hour)}:${pad(parts.minute)}:${pad(parts.second)}`;
  return parts.micro ? `${base}.${pad(parts.micro, 6)}` : base;
}

/**
 * hex_decode_binary(str) as StarRocks documents it (docs/en/sql-reference/sql-functions/string-functions/
 * hex_decode_binary.md; the BE source was not in the index): NULL stays NULL; an empty string, an odd number
 * of characters or a character outside [0-9a-fA-F] gives an empty binary; else the decoded bytes.
 */
export function hexDecodeBinary(value: unknown): Buffer | null {
  if (value === null || value === undefined) return null;
  const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
  if (text.length === 0 || text.length % 2 === 1 || !/^[0-9a-fA-F]*$/.test(text)) return Buffer.alloc(0);
  return Buffer.from(text, 'hex');
}

/** The stored value's text in messages (a Buffer as its bytes). */
export function display(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
