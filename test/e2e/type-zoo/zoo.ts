// The type zoo: one PostgreSQL table with a column per type (most nullable), the edge values each row set
// puts in them, and how each column must land in StarRocks (the oracle kind, written from the documented
// normalisation, not from the sink's code). Values are SQL expressions, so PostgreSQL itself parses them.

/** Scalar comparison rules (README "Types" normalisation). */
export type ScalarKind =
  /** bool → BOOLEAN: equal. */
  | 'bool'
  /** int2/int4/int8/oid/domain over int4 → integer types: equal. */
  | 'int'
  /** float4 → FLOAT: equal IEEE value after Math.fround, -0/NaN/±Infinity included. */
  | 'float4'
  /** float8 → DOUBLE: equal IEEE value, -0/NaN/±Infinity included. */
  | 'float8'
  /** numeric(p ≤ 38, s) → DECIMAL(p, s): equal decimal value. */
  | 'decimal'
  /** Anything loaded as VARCHAR holding PostgreSQL's own text: byte-equal. */
  | 'text'
  /** bytea → VARBINARY: byte-equal. */
  | 'bytes'
  /** date → DATE: equal calendar date. */
  | 'date'
  /** timestamp → DATETIME, timestamptz → DATETIME holding UTC wall-clock time: equal, microseconds kept. */
  | 'datetime'
  /** json/jsonb → JSON: equal as parsed JSON, numbers exact. */
  | 'json';

export type Oracle =
  | { kind: ScalarKind; sinkType: RegExp }
  /** One-dimensional array → ARRAY<T>, element-wise, NULL elements kept. */
  | { kind: 'array'; element: ScalarKind; sinkType: RegExp }
  /** json[]/jsonb[] → JSON array, element-wise (a NULL element is JSON null). */
  | { kind: 'json-array'; sinkType: RegExp }
  /** A CLAMP column: representable values equal, the others the nearest range end. */
  | { kind: 'clamp'; element: 'date' | 'datetime'; sinkType: RegExp }
  /** A NULL-policy column: representable values equal, the others NULL. */
  | { kind: 'nulled'; element: 'date' | 'datetime'; sinkType: RegExp };

export type Choice = { target?: 'text'; policy?: 'null' | 'clamp' | 'fail' };

export interface ZooColumn {
  name: string;
  /** PostgreSQL type as written in the DDL. */
  type: string;
  oracle: Oracle;
  choice?: Choice;
}

const VARCHAR = /^(varchar(\(\d+\))?|string|char\(\d+\))$/i;
const text = { kind: 'text', sinkType: VARCHAR } as const;
const s = (kind: ScalarKind, sinkType: RegExp): Oracle => ({ kind, sinkType });

export const ZOO_TABLE = 'zoo';

/** Created before the table: an enum, a domain with a check, a composite. */
export const ZOO_TYPES_DDL = `
  create type zoo_mood as enum ('sad', 'ok', 'très 😀 ''quoted'' "label"', '${'😀'.repeat(15)}abc');
  create domain zoo_posint as int4 check (value > 0);
  create type zoo_pair as (x int4, y text);`;

export const ZOO_COLUMNS: ZooColumn[] = [
  { name: 'c_bool', type: 'bool', oracle: s('bool', /^boolean$/i) },
  { name: 'c_int2', type: 'int2', oracle: s('int', /^smallint$/i) },
  { name: 'c_int4', type: 'int4', oracle: s('int', /^int$/i) },
  { name: 'c_int8', type: 'int8', oracle: s('int', /^bigint$/i) },
  { name: 'c_oid', type: 'oid', oracle: s('int', /^(bigint|largeint)$/i) },
  { name: 'c_float4', type: 'float4', oracle: s('float4', /^float$/i) },
  { name: 'c_float8', type: 'float8', oracle: s('float8', /^double$/i) },
  { name: 'c_num10_2', type: 'numeric(10,2)', oracle: s('decimal', /^decimal\(10, ?2\)$/i) },
  { name: 'c_num38_10', type: 'numeric(38,10)', oracle: s('decimal', /^decimal\(38, ?10\)$/i) },
  { name: 'c_num', type: 'numeric', oracle: text },
  { name: 'c_num50_5', type: 'numeric(50,5)', oracle: text },
  { name: 'c_money', type: 'money', oracle: text },
  { name: 'c_char5', type: 'char(5)', oracle: text },
  { name: 'c_varchar10', type: 'varchar(10)', oracle: text },
  { name: 'c_text', type: 'text', oracle: text },
  { name: 'c_qchar', type: '"char"', oracle: text },
  { name: 'c_name', type: 'name', oracle: text },
  { name: 'c_bytea', type: 'bytea', oracle: s('bytes', /^varbinary(\(\d+\))?$/i) },
  { name: 'c_date', type: 'date', oracle: s('date', /^date$/i) },
  { name: 'c_timestamp', type: 'timestamp', oracle: s('datetime', /^datetime$/i) },
  { name: 'c_timestamptz', type: 'timestamptz', oracle: s('datetime', /^datetime$/i) },
  { name: 'c_time', type: 'time', oracle: text },
  { name: 'c_timetz', type: 'timetz', oracle: text },
  { name: 'c_interval', type: 'interval', oracle: text },
  { name: 'c_json', type: 'json', oracle: s('json', /^json$/i) },
  { name: 'c_jsonb', type: 'jsonb', oracle: s('json', /^json$/i) },
  { name: 'c_uuid', type: 'uuid', oracle: text },
  { name: 'c_inet', type: 'inet', oracle: text },
  { name: 'c_cidr', type: 'cidr', oracle: text },
  { name: 'c_macaddr', type: 'macaddr', oracle: text },
  { name: 'c_macaddr8', type: 'macaddr8', oracle: text },
  { name: 'c_bit8', type: 'bit(8)', oracle: text },
  { name: 'c_varbit', type: 'varbit', oracle: text },
  { name: 'c_enum', type: 'zoo_mood', oracle: text },
  { name: 'c_domain', type: 'zoo_posint', oracle: s('int', /^int$/i) },
  { name: 'c_composite', type: 'zoo_pair', oracle: text },
  { name: 'c_int4range', type: 'int4range', oracle: text },
  { name: 'c_tsrange', type: 'tsrange', oracle: text },
  { name: 'c_numrange', type: 'numrange', oracle: text },
  { name: 'c_int4multirange', type: 'int4multirange', oracle: text },
  { name: 'c_tsvector', type: 'tsvector', oracle: text },
  { name: 'c_tsquery', type: 'tsquery', oracle: text },
  { name: 'c_xml', type: 'xml', oracle: text },
  { name: 'c_point', type: 'point', oracle: text },
  { name: 'c_box', type: 'box', oracle: text },
  { name: 'c_pg_lsn', type: 'pg_lsn', oracle: text },
  {
    name: 'c_int4_arr',
    type: 'int4[]',
    oracle: { kind: 'array', element: 'int', sinkType: /^array<int>$/i },
  },
  {
    name: 'c_text_arr',
    type: 'text[]',
    oracle: { kind: 'array', element: 'text', sinkType: /^array<(varchar(\(\d+\))?|string)>$/i },
  },
  {
    // Unconstrained numeric elements: VARCHAR holding PostgreSQL's text (NaN, Infinity, trailing zeros).
    name: 'c_numeric_arr',
    type: 'numeric[]',
    oracle: { kind: 'array', element: 'text', sinkType: /^array<(varchar(\(\d+\))?|string)>$/i },
  },
  {
    name: 'c_date_arr',
    type: 'date[]',
    oracle: { kind: 'array', element: 'date', sinkType: /^array<date>$/i },
  },
  {
    name: 'c_timestamptz_arr',
    type: 'timestamptz[]',
    oracle: { kind: 'array', element: 'datetime', sinkType: /^array<datetime>$/i },
  },
  { name: 'c_jsonb_arr', type: 'jsonb[]', oracle: { kind: 'json-array', sinkType: /^json$/i } },
  {
    name: 'c_bool_arr',
    type: 'bool[]',
    oracle: { kind: 'array', element: 'bool', sinkType: /^array<boolean>$/i },
  },
  {
    name: 'c_float8_arr',
    type: 'float8[]',
    oracle: { kind: 'array', element: 'float8', sinkType: /^array<double>$/i },
  },
  // Per-column choices: values with no exact StarRocks form.
  { name: 'c_int4_2d', type: 'int4[]', oracle: text, choice: { target: 'text' } },
  { name: 'c_date_text', type: 'date', oracle: text, choice: { target: 'text' } },
  { name: 'c_ts_text', type: 'timestamptz', oracle: text, choice: { target: 'text' } },
  { name: 'c_json_text', type: 'json', oracle: text, choice: { target: 'text' } },
  { name: 'c_jsonb_text', type: 'jsonb', oracle: text, choice: { target: 'text' } },
  { name: 'c_num_nan_text', type: 'numeric(10,2)', oracle: text, choice: { target: 'text' } },
  {
    name: 'c_date_clamp',
    type: 'date',
    oracle: { kind: 'clamp', element: 'date', sinkType: /^date$/i },
    choice: { policy: 'clamp' },
  },
  {
    name: 'c_ts_clamp',
    type: 'timestamp',
    oracle: { kind: 'clamp', element: 'datetime', sinkType: /^datetime$/i },
    choice: { policy: 'clamp' },
  },
  {
    name: 'c_date_null',
    type: 'date',
    oracle: { kind: 'nulled', element: 'date', sinkType: /^date$/i },
    choice: { policy: 'null' },
  },
  {
    name: 'c_tstz_null',
    type: 'timestamptz',
    oracle: { kind: 'nulled', element: 'datetime', sinkType: /^datetime$/i },
    choice: { policy: 'null' },
  },
  // TOAST: stored out of line, uncompressed (random hex), left unchanged by updates and key changes.
  { name: 'c_toast', type: 'text', oracle: text },
  { name: 'c_toast_jsonb', type: 'jsonb', oracle: s('json', /^json$/i) },
];

/** Added by ALTER TABLE on the populated table while streaming. */
export const ADDED_COLUMNS: ZooColumn[] = [
  { name: 'd', type: 'int not null default 42', oracle: s('int', /^int$/i) },
  { name: 'e', type: `text not null default 'it''s a "default" \\ with a quote'`, oracle: text },
];

export const ZOO_DDL = `
  create table ${ZOO_TABLE} (
    id int4 primary key,
    ${ZOO_COLUMNS.map((c) => `${c.name} ${c.type}`).join(',\n    ')}
  );
  alter table ${ZOO_TABLE} alter column c_toast set storage external;
  alter table ${ZOO_TABLE} alter column c_toast_jsonb set storage external;`;

const FOUR_BYTE = '😀';
const CONTROLS = `E'ctl:\\x01\\x1f\\x7f:end'`;

/** Edge-value row sets: column → SQL expression (absent columns are NULL). */
export const VALUE_SETS: Record<string, string>[] = [
  // 0: maxima (float4's largest and the jsonb doubles beyond uint64 are in zoo_extremes), 4-byte characters
  // at the length limits.
  {
    c_bool: 'true',
    c_int2: '32767',
    c_int4: '2147483647',
    c_int8: '9223372036854775807',
    c_oid: '4294967295',
    c_float4: `'3.4028e38'`,
    c_float8: `'1.7976931348623157e308'`,
    c_num10_2: '99999999.99',
    c_num38_10: `'9999999999999999999999999999.9999999999'`,
    c_num: `repeat('9', 1000)::numeric`,
    c_num50_5: `'123456789012345678901234567890123456789012345.12345'`,
    c_money: `'92233720368547758.07'`,
    c_char5: `repeat('𝄞', 5)`,
    c_varchar10: `repeat('${FOUR_BYTE}', 10)`,
    c_text: `'😀𝄞' || U&'\\2028\\2029' || 'after separators'`,
    c_qchar: `'z'`,
    c_name: `repeat('${FOUR_BYTE}', 15) || 'abc'`,
    c_bytea: `(select string_agg(set_byte('\\x00'::bytea, 0, g), ''::bytea order by g) from generate_series(0, 255) g)`,
    c_date: `'9999-12-31'`,
    c_timestamp: `'9999-12-31 23:59:59.999999'`,
    c_timestamptz: `'9999-12-31 23:59:59.999999+00'`,
    c_time: `'24:00:00'`,
    c_timetz: `'24:00:00-15:59'`,
    c_interval: `'178000000 years 11 mons 30 days 23:59:59.999999'`,
    c_json: `'{"a": [1, 2.5, -3e-5, true, null], "b": {"c": "😀\\u2028\\ud834\\udd1e"}, "e": {}}'`,
    c_jsonb: `'{"i64max": 9223372036854775807, "i64min": -9223372036854775808, "u64max": 18446744073709551615, "s": "\\u0001\\u001f\\u007f 😀 \\u2028\\u2029 \\ud834\\udd1e", "nested": [[], {}, [null]]}'`,
    c_uuid: `'ffffffff-ffff-ffff-ffff-ffffffffffff'`,
    c_inet: `'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/127'`,
    c_cidr: `'2001:db8::/32'`,
    c_macaddr: `'ff:ff:ff:ff:ff:ff'`,
    c_macaddr8: `'ff:ff:ff:ff:ff:ff:ff:ff'`,
    c_bit8: `B'11111111'`,
    c_varbit: `B'1010101010101010101'`,
    c_enum: `'${FOUR_BYTE.repeat(15)}abc'`,
    c_domain: '2147483647',
    c_composite: `row(2147483647, 'a "quoted", (paren) \\ backslash')::zoo_pair`,
    c_int4range: `'[1,2147483647)'`,
    c_tsrange: `'[2024-01-01 00:00:00.000001,infinity)'`,
    c_numrange: `'(-1000.5,1e30]'`,
    c_int4multirange: `'{[1,3), [5,7), [10,11)}'`,
    c_tsvector: `'a:1A b:2B,3 😀:4 ''quoted word'':5'`,
    c_tsquery: `'fat & (rat | !cat) <-> 😀'`,
    c_xml: `'<a b="1">😀&amp;<![CDATA[x]]></a>'`,
    c_point: `'(1.7976931348623157e308,-0)'`,
    c_box: `'(1,2),(-3,-4)'`,
    c_pg_lsn: `'FFFFFFFF/FFFFFFFF'`,
    c_int4_arr: `'{2147483647,-2147483648,NULL}'`,
    c_text_arr: `array['😀𝄞', '', NULL, 'a,b', '"q"', U&'\\2028', 'NULL', ${CONTROLS}]`,
    c_numeric_arr: `'{NaN,Infinity,-Infinity,1.50,NULL}'`,
    c_date_arr: `'{0001-01-01,9999-12-31,NULL}'`,
    c_timestamptz_arr: `array['2024-06-01 12:00:00.5+02'::timestamptz, NULL, '9999-12-31 23:59:59.999999+00']`,
    c_jsonb_arr: `array['{"a": 1}'::jsonb, NULL, '[]', '"s"', '2.5']`,
    c_bool_arr: `'{t,f,NULL}'`,
    c_float8_arr: `'{NaN,Infinity,-Infinity,-0,5e-324,NULL}'`,
    c_int4_2d: `'{{1,2},{3,NULL}}'`,
    c_date_text: `'0044-03-15 BC'`,
    c_ts_text: `'294276-12-31 23:59:59.999999+00'`,
    c_json_text: `'{"b":1,  "a":2, "a": 3, "n": 123456789012345678901234567890, "x": 0.1000000000000000055511151231257827}'`,
    c_jsonb_text: `'{"n": 123456789012345678901234567890, "x": 0.1000000000000000055511151231257827}'`,
    c_num_nan_text: `'NaN'`,
    c_date_clamp: `'infinity'`,
    c_ts_clamp: `'infinity'`,
    c_date_null: `'infinity'`,
    c_tstz_null: `'10000-01-01 00:00:00+00'`,
  },
  // 1: minima and empties.
  {
    c_bool: 'false',
    c_int2: '-32768',
    c_int4: '-2147483648',
    c_int8: '-9223372036854775808',
    c_oid: '0',
    c_float4: `'-3.4028e38'`,
    c_float8: `'-1.7976931348623157e308'`,
    c_num10_2: '-99999999.99',
    c_num38_10: `'-9999999999999999999999999999.9999999999'`,
    c_num: `('-' || repeat('1', 500) || '.' || repeat('2', 500))::numeric`,
    c_num50_5: `'-0.00001'`,
    c_money: `'-92233720368547758.08'`,
    c_char5: `'ab'`,
    c_varchar10: `''`,
    c_text: `''`,
    c_qchar: `'\\377'`,
    c_name: `''`,
    c_bytea: `'\\x'`,
    c_date: `'0001-01-01'`,
    c_timestamp: `'0001-01-01 00:00:00'`,
    c_timestamptz: `'0001-01-01 00:00:00+00'`,
    c_time: `'00:00:00'`,
    c_timetz: `'00:00:00+15:59'`,
    c_interval: `'-178000000 years'`,
    c_json: `'[]'`,
    c_jsonb: `'""'`,
    c_uuid: `'00000000-0000-0000-0000-000000000000'`,
    c_inet: `'0.0.0.0/0'`,
    c_cidr: `'0.0.0.0/0'`,
    c_macaddr: `'00:00:00:00:00:00'`,
    c_macaddr8: `'00:00:00:00:00:00:00:00'`,
    c_bit8: `B'00000000'`,
    c_varbit: `B''`,
    c_enum: `'sad'`,
    c_domain: '1',
    c_composite: `row(NULL, NULL)::zoo_pair`,
    c_int4range: `'empty'`,
    c_tsrange: `'(,)'`,
    c_numrange: `'empty'`,
    c_int4multirange: `'{}'`,
    c_tsvector: `''`,
    c_tsquery: `''`,
    c_xml: `'<x/>'`,
    c_point: `'(NaN,-Infinity)'`,
    c_box: `'(0,0),(0,0)'`,
    c_pg_lsn: `'0/0'`,
    c_int4_arr: `'{}'`,
    c_text_arr: `'{}'`,
    c_numeric_arr: `'{}'`,
    c_date_arr: `'{}'`,
    c_timestamptz_arr: `'{}'`,
    c_jsonb_arr: `'{}'`,
    c_bool_arr: `'{}'`,
    c_float8_arr: `'{}'`,
    c_int4_2d: `'{{{1}},{{2}}}'`,
    c_date_text: `'-infinity'`,
    c_ts_text: `'4713-01-01 00:00:00+00 BC'`,
    c_json_text: `' null '`,
    c_jsonb_text: `'null'`,
    c_num_nan_text: `'0.00'`,
    c_date_clamp: `'-infinity'`,
    c_ts_clamp: `'0044-03-15 10:00:00 BC'`,
    c_date_null: `'0044-03-15 BC'`,
    c_tstz_null: `'-infinity'`,
  },
  // 2: -0, control characters, representable values in the choice columns.
  {
    c_float4: `'-0'`,
    c_float8: `'-0'`,
    c_num: `'NaN'`,
    c_text: CONTROLS,
    c_varchar10: `E'\\x01\\x1f\\x7f'`,
    c_char5: `E'\\x01 \\x7f'`,
    c_json: `'{"ctl": "\\u0001\\u001f\\u007f", "k": -0.5, "big": 18446744073709551615}'`,
    c_jsonb: `'[0.1, -2.5e-7, 12345678901234567]'`,
    c_date: `'2000-02-29'`,
    c_timestamp: `'1970-01-01 00:00:00.000001'`,
    c_timestamptz: `'2024-03-10 02:30:00.123456+05:30'`,
    c_composite: `row(NULL, '')::zoo_pair`,
    c_int4_2d: `'{1,2}'`,
    c_date_text: `'10000-01-01'`,
    c_ts_text: `'infinity'`,
    c_date_clamp: `'2024-02-29'`,
    c_ts_clamp: `'2024-02-29 12:34:56.789'`,
    c_date_null: `'1999-12-31'`,
    c_tstz_null: `'2024-02-29 23:59:59.999999-01'`,
    c_num_nan_text: `'-12.50'`,
  },
  // 3..5: NaN and infinities in floats; other texts.
  {
    c_float4: `'NaN'`,
    c_float8: `'Infinity'`,
    c_num: `'Infinity'`,
    c_text: `E'tab\\there\\r\\nnewline \\\\ backslash "dq" ''sq'' \\u00e9'`,
    c_json: `'"\\ud83d\\ude00 escaped surrogates"'`,
    c_jsonb: `'{"": "empty key", "ключ": "значение", "e\\u0301": 0}'`,
  },
  {
    c_float4: `'Infinity'`,
    c_float8: `'-Infinity'`,
    c_num: `'-Infinity'`,
    c_text: `U&'\\FEFF bom, \\FFFF noncharacter, e\\0301 combining'`,
    c_json: `'123'`,
    c_jsonb: `'true'`,
  },
  {
    c_float4: `'-Infinity'`,
    c_float8: `'NaN'`,
    c_num: `'0.000'`,
    c_float8_arr: `'{0.1,-0,1e-300}'`,
    c_json: `'-0.5e-3'`,
  },
  // 6: subnormals and 0.1.
  {
    c_float4: `'1e-45'`,
    c_float8: `'5e-324'`,
    c_num: `('0.' || repeat('0', 998) || '1')::numeric`,
    c_num10_2: '0.01',
    c_num38_10: `'-0.0000000001'`,
  },
  // 7: float4 0.1 and a float8 that needs 17 digits.
  { c_float4: `'0.1'`, c_float8: `'0.30000000000000004'` },
  // 8: every column NULL.
  {},
];

/** Columns every value set writes to, at least once. */
export function coveredColumns(): Set<string> {
  return new Set(VALUE_SETS.flatMap((set) => Object.keys(set)));
}

/** An INSERT of value set `set` under key `id`, with optional overrides. */
export function insertValueSet(id: number, set: Record<string, string>, extra: Record<string, string> = {}) {
  const values = { ...set, ...extra };
  const columns = Object.keys(values);
  return `insert into ${ZOO_TABLE} (id${columns.map((c) => `, ${c}`).join('')}) values (${id}${columns
    .map((c) => `, ${values[c]}`)
    .join('')})`;
}

/** TOAST values: incompressible random hex, stored out of line. */
export const TOAST_VALUES = {
  c_toast: `(select string_agg(md5(random()::text || g::text), '') from generate_series(1, 700) g)`,
  c_toast_jsonb: `jsonb_build_object('h', (select string_agg(md5(random()::text || g::text), '') from generate_series(1, 400) g), 'n', 1)`,
};

/**
 * Extremes that have an exact StarRocks form but need care in the encoding, in a job of their own so the
 * zoo's other values are checked even while these fail: float4's largest finite values (PostgreSQL's
 * shortest text 3.4028235e+38 is above FLT_MAX as a decimal), its smallest subnormal, and jsonb numbers
 * that PostgreSQL prints as integers beyond uint64 (1e300, the largest double) or as 300+ fraction digits
 * (the smallest double): each is exactly a double.
 */
export const EXTREMES_TABLE = 'zoo_extremes';
export const EXTREMES_COLUMNS: ZooColumn[] = ZOO_COLUMNS.filter((c) =>
  ['c_float4', 'c_float8', 'c_jsonb', 'c_float8_arr'].includes(c.name),
);
export const EXTREMES_DDL = `
  create table ${EXTREMES_TABLE} (id int4 primary key, ${EXTREMES_COLUMNS.map((c) => `${c.name} ${c.type}`).join(', ')})`;
export const EXTREME_SETS: Record<string, string>[] = [
  { c_float4: `'3.4028235e38'`, c_jsonb: `'[1e300, -1.7976931348623157e308]'` },
  { c_float4: `'-3.4028235e38'`, c_jsonb: `'{"dmin": 5e-324, "dmax": 1.7976931348623157e308}'` },
  { c_float4: `'1e-45'`, c_float8: `'-5e-324'`, c_jsonb: `'[1e19, 1e20, -1e20, 2.5e-300]'` },
  { c_float4: `'1.1754944e-38'`, c_float8_arr: `'{1.7976931348623157e308,-5e-324}'`, c_jsonb: `'1e300'` },
];

export function insertInto(table: string, id: number, values: Record<string, string>) {
  const columns = Object.keys(values);
  return `insert into ${table} (id${columns.map((c) => `, ${c}`).join('')}) values (${id}${columns
    .map((c) => `, ${values[c]}`)
    .join('')})`;
}
