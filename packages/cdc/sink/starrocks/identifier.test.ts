import { type StarRocksEmulator, startStarRocksEmulator } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ColumnSchema, PgColumnType, TableSchema } from '../../change-event.ts';
import { checkIdentifier, qualifiedTable, quoteIdentifier } from './identifier.ts';
import { stringLiteral } from './schema.ts';
import { StarRocksError } from './starrocks-error.ts';
import { createStarRocksSink } from './starrocks-sink.ts';

const int4: PgColumnType = { oid: 23, name: 'int4', modifier: -1, kind: 'base' };
const column = (name: string): ColumnSchema => ({ name, type: int4, nullable: false });

const hostile = [
  "Robert'); DROP TABLE students;--",
  'back`tick',
  'double"quote',
  "single'quote",
  'naïve',
  'Straße',
  '表',
  'space name',
  'semi;colon',
  'dot.ted',
  'new\nline',
  '1starts_with_digit',
  '',
  'x'.repeat(65),
];

describe('StarRocks identifiers', () => {
  it('are always backtick-quoted with embedded backticks doubled', () => {
    expect(quoteIdentifier('orders')).toBe('`orders`');
    expect(quoteIdentifier('we`ird')).toBe('`we``ird`');
    expect(quoteIdentifier('a` ; drop database x; --')).toBe('`a`` ; drop database x; --`');
    expect(qualifiedTable('db', 't`x')).toBe('`db`.`t``x`');
    expect(() => quoteIdentifier('a\0b')).toThrow(/NUL/);
    expect(() => quoteIdentifier('')).toThrow(/empty/);
  });

  it('quote string literals for information_schema lookups', () => {
    expect(stringLiteral("it's \\ here")).toBe("'it''s \\\\ here'");
  });

  it.each(hostile)('refuses the table name %j with a message showing it and the rule', (name) => {
    const error = (() => {
      try {
        checkIdentifier('table', name);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(StarRocksError);
    expect((error as StarRocksError).kind).toBe('operator');
    const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
    expect((error as StarRocksError).message).toContain(shown);
    expect((error as StarRocksError).message).toMatch(/letters A-Z\/a-z, digits and underscores/);
  });

  it('accepts plain names, and columns that start with an underscore', () => {
    expect(checkIdentifier('table', 'Orders_2024')).toBe('Orders_2024');
    expect(checkIdentifier('column', '_private')).toBe('_private');
    expect(() => checkIdentifier('table', '_private')).toThrow(StarRocksError);
  });

  it("refuses a column named like StarRocks' __op load field", () => {
    expect(() => checkIdentifier('column', '__OP')).toThrow(/__op/);
  });
});

describe('hostile names reaching the sink', () => {
  let emulator: StarRocksEmulator;
  beforeAll(async () => {
    emulator = await startStarRocksEmulator();
  });
  afterAll(() => emulator?.stop());

  const sink = () =>
    createStarRocksSink({
      datasource: {
        name: 'emulated',
        host: '127.0.0.1',
        queryPort: emulator.mysqlPort,
        httpPort: emulator.fePort,
        user: 'root',
        password: '',
        database: 'hostile',
      },
      minLoadIntervalMs: 0,
    });

  it.each(hostile.filter((name) => name !== ''))(
    'refuses the table %j before any SQL is sent',
    async (name) => {
      const target = sink();
      const schema: TableSchema = {
        table: { schema: 'public', name },
        columns: [column('id')],
        primaryKey: ['id'],
      };
      await expect(target.ensureTable(schema)).rejects.toMatchObject({ kind: 'operator' });
      await target.close();
      expect(emulator.statements.some((statement) => name.length > 0 && statement.includes(name))).toBe(
        false,
      );
    },
  );

  it('refuses a hostile column name, naming the column and the table', async () => {
    const target = sink();
    const schema: TableSchema = {
      table: { schema: 'public', name: 'ok' },
      columns: [column('id'), column('x`) engine=evil')],
      primaryKey: ['id'],
    };
    const error = await target.ensureTable(schema).catch((caught: unknown) => caught);
    await target.close();
    expect((error as Error).message).toContain('"x`) engine=evil"');
    expect((error as Error).message).toContain('table public.ok');
  });

  it('refuses columns that differ only in case', async () => {
    const target = sink();
    const schema: TableSchema = {
      table: { schema: 'public', name: 'cased' },
      columns: [column('id'), column('Name'), column('name')],
      primaryKey: ['id'],
    };
    await expect(target.ensureTable(schema)).rejects.toThrow(/"Name" and "name" differ only in case/);
    await target.close();
  });

  it('refuses two source tables that map to one StarRocks table', async () => {
    const target = sink();
    await target.ensureTable({
      table: { schema: 'public', name: 'a_b' },
      columns: [column('id')],
      primaryKey: ['id'],
    });
    await expect(
      target.ensureTable({ table: { schema: 'a', name: 'b' }, columns: [column('id')], primaryKey: ['id'] }),
    ).rejects.toThrow(/both map to StarRocks table "a_b"/);
    await target.close();
  });
});
