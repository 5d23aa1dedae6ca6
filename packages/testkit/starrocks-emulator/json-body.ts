// A Stream Load's JSON body as StarRocks' reader (simdjson) sees it: number tokens kept as written, so
// int64, uint64 and double stay apart, and duplicate object keys kept (simdjson does not merge them).

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
