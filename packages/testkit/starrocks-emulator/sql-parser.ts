// The SQL subset the StarRocks emulator's MySQL port understands: the DDL the sink issues, information_schema
// lookups and simple SELECTs for verification. Anything else is a syntax error, so a sink that starts
// issuing something new fails here first instead of silently "working".

export interface SqlType {
  /** Upper-case base name: BOOLEAN, INT, VARCHAR, DECIMAL, ARRAY… */
  base: string;
  length?: number;
  precision?: number;
  scale?: number;
  element?: SqlType;
}

export interface ColumnDefinition {
  name: string;
  type: SqlType;
  /** `NOT NULL` given. */
  notNull: boolean;
  defaultValue: string | null | undefined;
}

export interface TableName {
  database: string | undefined;
  table: string;
}

export type Condition = { column: string; value: string | number | null };

export type SelectItem =
  | { kind: 'star' }
  | { kind: 'column'; name: string; alias: string }
  | { kind: 'count'; alias: string }
  | { kind: 'function'; name: string; alias: string };

export type Statement =
  | { kind: 'create-database'; name: string; ifNotExists: boolean }
  | { kind: 'drop-database'; name: string; ifExists: boolean }
  | {
      kind: 'create-table';
      name: TableName;
      ifNotExists: boolean;
      columns: ColumnDefinition[];
      keyType: 'PRIMARY' | 'DUPLICATE' | 'UNIQUE' | 'AGGREGATE' | undefined;
      keys: string[];
      hash: string[] | undefined;
      buckets: number | undefined;
      properties: Record<string, string>;
    }
  | { kind: 'drop-table'; name: TableName; ifExists: boolean }
  | { kind: 'add-columns'; name: TableName; columns: ColumnDefinition[]; after: string | undefined }
  | { kind: 'drop-column'; name: TableName; column: string }
  | { kind: 'truncate'; name: TableName }
  | { kind: 'use'; database: string }
  | {
      kind: 'select';
      items: SelectItem[];
      from: TableName | undefined;
      where: Condition[];
      orderBy: { column: string; descending: boolean }[];
      limit: number | undefined;
    };

type Token =
  | { type: 'word'; text: string; upper: string }
  | { type: 'quoted'; text: string }
  | { type: 'string'; text: string }
  | { type: 'number'; text: string }
  | { type: 'punct'; text: string };

export class SqlSyntaxError extends Error {
  override readonly name = 'SqlSyntaxError';
}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (c === '`') {
      let text = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw new SqlSyntaxError('unterminated quoted identifier');
        if (sql[i] === '`') {
          if (sql[i + 1] === '`') {
            text += '`';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += sql[i++];
      }
      tokens.push({ type: 'quoted', text });
    } else if (c === "'" || c === '"') {
      let text = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw new SqlSyntaxError('unterminated string');
        const d = sql[i]!;
        if (d === '\\') {
          const next = sql[i + 1] ?? '';
          text += next === 'n' ? '\n' : next === 't' ? '\t' : next === '0' ? '\0' : next;
          i += 2;
          continue;
        }
        if (d === c) {
          if (sql[i + 1] === c) {
            text += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += d;
        i++;
      }
      tokens.push({ type: 'string', text });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      const match = /^-?[0-9]+(\.[0-9]+)?/.exec(sql.slice(i))!;
      tokens.push({ type: 'number', text: match[0] });
      i += match[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const match = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))!;
      tokens.push({ type: 'word', text: match[0], upper: match[0].toUpperCase() });
      i += match[0].length;
    } else if ('(),.=<>*;'.includes(c)) {
      tokens.push({ type: 'punct', text: c });
      i++;
    } else {
      throw new SqlSyntaxError(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  while (tokens.at(-1)?.type === 'punct' && tokens.at(-1)?.text === ';') tokens.pop();
  return tokens;
}

class Parser {
  private position = 0;
  private readonly tokens: Token[];
  constructor(tokens: Token[]) {
    this.tokens = tokens;
  }

  peek(offset = 0): Token | undefined {
    return this.tokens[this.position + offset];
  }
  done(): boolean {
    return this.position >= this.tokens.length;
  }
  isWord(word: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token?.type === 'word' && token.upper === word;
  }
  isPunct(text: string): boolean {
    const token = this.peek();
    return token?.type === 'punct' && token.text === text;
  }
  acceptWord(...words: string[]): boolean {
    if (!words.every((word, i) => this.isWord(word, i))) return false;
    this.position += words.length;
    return true;
  }
  expectWord(...words: string[]): void {
    if (!this.acceptWord(...words)) throw this.error(words.join(' '));
  }
  acceptPunct(text: string): boolean {
    if (!this.isPunct(text)) return false;
    this.position++;
    return true;
  }
  expectPunct(text: string): void {
    if (!this.acceptPunct(text)) throw this.error(`'${text}'`);
  }
  error(expected: string): SqlSyntaxError {
    const token = this.peek();
    const found = token ? JSON.stringify(token.text) : 'end of statement';
    return new SqlSyntaxError(`expected ${expected} but found ${found}`);
  }
  identifier(): string {
    const token = this.peek();
    if (token?.type === 'quoted' || token?.type === 'word') {
      this.position++;
      return token.text;
    }
    throw this.error('an identifier');
  }
  string(): string {
    const token = this.peek();
    if (token?.type !== 'string') throw this.error('a string');
    this.position++;
    return token.text;
  }
  number(): number {
    const token = this.peek();
    if (token?.type !== 'number') throw this.error('a number');
    this.position++;
    return Number(token.text);
  }
  literal(): string | number | null {
    const token = this.peek();
    if (token?.type === 'string') return this.string();
    if (token?.type === 'number') return this.number();
    if (this.acceptWord('NULL')) return null;
    if (this.acceptWord('TRUE')) return 1;
    if (this.acceptWord('FALSE')) return 0;
    throw this.error('a literal');
  }
  tableName(): TableName {
    const first = this.identifier();
    if (this.acceptPunct('.')) return { database: first, table: this.identifier() };
    return { database: undefined, table: first };
  }
  identifierList(): string[] {
    this.expectPunct('(');
    const names = [this.identifier()];
    while (this.acceptPunct(',')) names.push(this.identifier());
    this.expectPunct(')');
    return names;
  }

  type(): SqlType {
    const token = this.peek();
    if (token?.type !== 'word') throw this.error('a type');
    this.position++;
    const base = token.upper === 'INTEGER' ? 'INT' : token.upper;
    if (base === 'ARRAY') {
      this.expectPunct('<');
      const element = this.type();
      this.expectPunct('>');
      return { base, element };
    }
    if (this.acceptPunct('(')) {
      const first = this.number();
      const second = this.acceptPunct(',') ? this.number() : undefined;
      this.expectPunct(')');
      if (base === 'DECIMAL' || base.startsWith('DECIMAL')) {
        return { base: 'DECIMAL', precision: first, scale: second ?? 0 };
      }
      return { base, length: first };
    }
    return { base };
  }

  columnDefinition(): ColumnDefinition {
    const name = this.identifier();
    const type = this.type();
    let notNull = false;
    let defaultValue: string | null | undefined;
    for (;;) {
      if (this.acceptWord('NOT', 'NULL')) notNull = true;
      else if (this.acceptWord('NULL')) notNull = false;
      else if (this.acceptWord('DEFAULT')) {
        const value = this.literal();
        defaultValue = value === null ? null : String(value);
      } else if (this.acceptWord('COMMENT')) this.string();
      else break;
    }
    return { name, type, notNull, defaultValue };
  }

  statement(): Statement {
    if (this.acceptWord('CREATE', 'DATABASE')) {
      const ifNotExists = this.acceptWord('IF', 'NOT', 'EXISTS');
      return { kind: 'create-database', name: this.identifier(), ifNotExists };
    }
    if (this.acceptWord('DROP', 'DATABASE')) {
      const ifExists = this.acceptWord('IF', 'EXISTS');
      const name = this.identifier();
      this.acceptWord('FORCE');
      return { kind: 'drop-database', name, ifExists };
    }
    if (this.acceptWord('CREATE', 'TABLE')) return this.createTable();
    if (this.acceptWord('DROP', 'TABLE')) {
      const ifExists = this.acceptWord('IF', 'EXISTS');
      const name = this.tableName();
      this.acceptWord('FORCE');
      return { kind: 'drop-table', name, ifExists };
    }
    if (this.acceptWord('ALTER', 'TABLE')) return this.alterTable();
    if (this.acceptWord('TRUNCATE')) {
      this.acceptWord('TABLE');
      return { kind: 'truncate', name: this.tableName() };
    }
    if (this.acceptWord('USE')) return { kind: 'use', database: this.identifier() };
    if (this.acceptWord('SELECT')) return this.select();
    throw this.error('a statement this emulator supports');
  }

  createTable(): Statement {
    const ifNotExists = this.acceptWord('IF', 'NOT', 'EXISTS');
    const name = this.tableName();
    this.expectPunct('(');
    const columns = [this.columnDefinition()];
    while (this.acceptPunct(',')) columns.push(this.columnDefinition());
    this.expectPunct(')');
    if (this.acceptWord('ENGINE')) {
      this.expectPunct('=');
      this.identifier();
    }
    let keyType: 'PRIMARY' | 'DUPLICATE' | 'UNIQUE' | 'AGGREGATE' | undefined;
    let keys: string[] = [];
    for (const kind of ['PRIMARY', 'DUPLICATE', 'UNIQUE', 'AGGREGATE'] as const) {
      if (this.acceptWord(kind, 'KEY')) {
        keyType = kind;
        keys = this.identifierList();
      }
    }
    if (this.acceptWord('COMMENT')) this.string();
    let hash: string[] | undefined;
    let buckets: number | undefined;
    if (this.acceptWord('DISTRIBUTED', 'BY')) {
      if (this.acceptWord('HASH')) hash = this.identifierList();
      else this.expectWord('RANDOM');
      if (this.acceptWord('BUCKETS')) buckets = this.number();
    }
    if (this.acceptWord('ORDER', 'BY')) this.identifierList();
    const properties: Record<string, string> = {};
    if (this.acceptWord('PROPERTIES')) {
      this.expectPunct('(');
      do {
        const key = this.string();
        this.expectPunct('=');
        properties[key] = this.string();
      } while (this.acceptPunct(','));
      this.expectPunct(')');
    }
    if (!this.done()) throw this.error('end of statement');
    return { kind: 'create-table', name, ifNotExists, columns, keyType, keys, hash, buckets, properties };
  }

  alterTable(): Statement {
    const name = this.tableName();
    if (this.acceptWord('ADD', 'COLUMN')) {
      // StarRocks is reported to reject `ADD COLUMN IF NOT EXISTS`; the emulator does too.
      if (this.isWord('IF')) throw new SqlSyntaxError('ADD COLUMN IF NOT EXISTS is not supported');
      const columns: ColumnDefinition[] = [];
      if (this.acceptPunct('(')) {
        do columns.push(this.columnDefinition());
        while (this.acceptPunct(','));
        this.expectPunct(')');
      } else columns.push(this.columnDefinition());
      if (this.isWord('KEY'))
        throw new SqlSyntaxError('adding a key column to a Primary Key table is not supported');
      const after = this.acceptWord('AFTER') ? this.identifier() : undefined;
      if (!this.done()) throw this.error('end of statement');
      return { kind: 'add-columns', name, columns, after };
    }
    if (this.acceptWord('DROP', 'COLUMN')) {
      const column = this.identifier();
      if (!this.done()) throw this.error('end of statement');
      return { kind: 'drop-column', name, column };
    }
    throw this.error('ADD COLUMN or DROP COLUMN');
  }

  select(): Statement {
    const items: SelectItem[] = [];
    do items.push(this.selectItem());
    while (this.acceptPunct(','));
    const from = this.acceptWord('FROM') ? this.tableName() : undefined;
    const where: Condition[] = [];
    if (this.acceptWord('WHERE')) {
      do {
        const column = this.identifier();
        this.expectPunct('=');
        where.push({ column, value: this.literal() });
      } while (this.acceptWord('AND'));
    }
    const orderBy: { column: string; descending: boolean }[] = [];
    if (this.acceptWord('ORDER', 'BY')) {
      do {
        const column = this.identifier();
        const descending = this.acceptWord('DESC');
        if (!descending) this.acceptWord('ASC');
        orderBy.push({ column, descending });
      } while (this.acceptPunct(','));
    }
    const limit = this.acceptWord('LIMIT') ? this.number() : undefined;
    if (!this.done()) throw this.error('end of statement');
    return { kind: 'select', items, from, where, orderBy, limit };
  }

  selectItem(): SelectItem {
    if (this.acceptPunct('*')) return { kind: 'star' };
    const alias = (fallback: string): string => (this.acceptWord('AS') ? this.identifier() : fallback);
    const token = this.peek();
    if (token?.type === 'word' && this.peek(1)?.type === 'punct' && this.peek(1)?.text === '(') {
      this.position += 2;
      if (token.upper === 'COUNT') {
        this.expectPunct('*');
        this.expectPunct(')');
        return { kind: 'count', alias: alias('count(*)') };
      }
      this.expectPunct(')');
      return { kind: 'function', name: token.text.toLowerCase(), alias: alias(`${token.text}()`) };
    }
    const name = this.identifier();
    return { kind: 'column', name, alias: alias(name) };
  }
}

export function parseStatement(sql: string): Statement {
  const parser = new Parser(tokenize(sql));
  if (parser.done()) throw new SqlSyntaxError('empty statement');
  return parser.statement();
}

/** The type as StarRocks prints it in DDL and information_schema (lower-cased there). */
export function formatType(type: SqlType): string {
  if (type.base === 'ARRAY') return `ARRAY<${formatType(type.element!)}>`;
  if (type.base === 'DECIMAL') return `DECIMAL(${type.precision},${type.scale})`;
  if (type.length !== undefined) return `${type.base}(${type.length})`;
  return type.base;
}
