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
import { formatDate, formatDateTime, parseDateTime } from './date-parse.ts';
import { type JsonNode, minify, parseJson } from './json-body.ts';
import type { SqlType } from './sql-parser.ts';

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
