// Text-format values (pgoutput `t` columns and COPY text fields) → the JSON-ready decodings documented in
// change-event.ts. Every connection Sluice opens sets DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres,
// extra_float_digits=3 and bytea_output=hex (see connection.ts), so dates and timestamps already arrive in
// the documented shape and only a few types need work here.
import type { ColumnValue, PgColumnType } from '../../change-event.ts';

/** Turns one non-NULL text value into its decoding. Chosen once per column, called per value. */
export type ValueDecoder = (text: string) => ColumnValue;

const identity: ValueDecoder = (text) => text;

const decodeBool: ValueDecoder = (text) => text === 't';

const decodeInteger: ValueDecoder = (text) => Number(text);

/** float4/float8: a number, or PostgreSQL's spelling of NaN, Infinity and -Infinity. */
const decodeFloat: ValueDecoder = (text) => {
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
};

/** bytea with bytea_output=hex: `\x0a1b…` → `0a1b…`. */
const decodeBytea: ValueDecoder = (text) => (text.startsWith('\\x') ? text.slice(2) : text);

const scalarDecoders: Record<string, ValueDecoder> = {
  bool: decodeBool,
  int2: decodeInteger,
  int4: decodeInteger,
  oid: decodeInteger,
  float4: decodeFloat,
  float8: decodeFloat,
  bytea: decodeBytea,
};

/** The decoder for a column of `type` (domains already resolved to their base type). */
export function decoderFor(type: PgColumnType): ValueDecoder {
  if (type.kind === 'array' && type.element) {
    const element = decoderFor(type.element);
    // box is the only built-in type whose array delimiter is `;`.
    const delimiter = type.element.name === 'box' ? 0x3b : 0x2c;
    return (text) => parseArray(text, element, delimiter);
  }
  if (type.kind === 'base') return scalarDecoders[type.name] ?? identity;
  return identity;
}

/**
 * Parses PostgreSQL's array output (`{1,2,NULL}`, `{{"a b","c\"d"},{e,f}}`, `[0:1]={x,y}`) into nested
 * arrays, decoding each element with `element`. Unquoted `NULL` is null; quoted `"NULL"` is the string.
 */
export function parseArray(text: string, element: ValueDecoder, delimiter = 0x2c): ColumnValue[] {
  let position = 0;
  if (text.charCodeAt(0) === 0x5b /* [ */) {
    position = text.indexOf('=') + 1;
    if (position === 0) throw new SyntaxError('malformed array: dimension decoration without "="');
  }
  if (text.charCodeAt(position) !== 0x7b /* { */) throw new SyntaxError('malformed array: no "{"');

  function parseLevel(): ColumnValue[] {
    position++; // past `{`
    const items: ColumnValue[] = [];
    if (text.charCodeAt(position) === 0x7d /* } */) {
      position++;
      return items;
    }
    for (;;) {
      const code = text.charCodeAt(position);
      if (code === 0x7b) {
        items.push(parseLevel());
      } else if (code === 0x22 /* " */) {
        position++;
        let value = '';
        let start = position;
        for (;;) {
          const c = text.charCodeAt(position);
          if (Number.isNaN(c)) throw new SyntaxError('malformed array: unterminated quoted element');
          if (c === 0x5c /* \ */) {
            value += text.slice(start, position);
            position++;
            start = position;
            position++;
          } else if (c === 0x22) {
            value += text.slice(start, position);
            position++;
            break;
          } else {
            position++;
          }
        }
        items.push(element(value));
      } else {
        const start = position;
        let hasEscape = false;
        for (;;) {
          const c = text.charCodeAt(position);
          if (c === delimiter || c === 0x7d) break;
          if (Number.isNaN(c)) throw new SyntaxError('malformed array: unterminated');
          if (c === 0x5c) {
            hasEscape = true;
            position++;
          }
          position++;
        }
        const raw = text.slice(start, position);
        if (!hasEscape && raw.length === 4 && raw.toUpperCase() === 'NULL') items.push(null);
        else items.push(element(hasEscape ? raw.replace(/\\(.)/gs, '$1') : raw));
      }
      const next = text.charCodeAt(position);
      position++;
      if (next === 0x7d) return items;
      if (next !== delimiter) throw new SyntaxError('malformed array: expected a delimiter');
    }
  }

  const result = parseLevel();
  if (position !== text.length) throw new SyntaxError('malformed array: trailing characters');
  return result;
}
